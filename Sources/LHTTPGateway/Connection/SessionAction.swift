import LHTTPProtocol
import NIOCore

/// What a connection's ``SessionStateMachine`` asks its handler to do. The handler executes it and asks
/// the machine for the next one (``SessionStateMachine/next(_:)``) until ``none``.
public enum SessionAction: Sendable, Equatable {
    /// Nothing more to do until the next event.
    case none
    /// Send a serialized LHTTP message to this connection.
    case send(ByteBuffer)
    /// Send an error reply to this connection (the handler counts and logs it: ``Gateway/reply(to:with:)``).
    case sendError(GatewayError)
    /// Join the hub's `channels` (only channels the connection is not in yet). Report a refusal (the
    /// node's channel cap) with `next(.refused(error))`.
    case subscribe([String])
    /// Join the hub's channels and recover each from its position (a subscribe with `since:`): the replayed
    /// publications and a `subscribed` answer per channel go to this connection before any later delivery.
    /// Report a refusal as for ``subscribe(_:)``.
    case subscribeRecovering([RecoveryRequest])
    /// Leave the hub's `channels` (only channels the connection is in).
    case unsubscribe([String])
    /// Publish through the broker. Report a refusal (too large for the cluster) with `next(.refused(error))`.
    case publish(ByteBuffer, channels: [String], source: PublicationSource)
    /// Start an upstream call; its completion is the ``SessionStateMachine/upstreamCompleted(_:)`` event.
    case callUpstream(UpstreamCall)
    /// Ask the app; its answer is the ``SessionStateMachine/routeAnswered(_:)`` event.
    case route(RouteRequest)
    /// Log a refusal nobody is waiting for (a publication the app's answer asked for).
    case warn(String, GatewayError)
    /// Close the connection (a webhook's `close` action); the websocket layer then reports
    /// ``SessionStateMachine/finish(code:)``.
    case close(CloseCode, reason: String)
    /// Verify a new token (a `refresh`); its outcome is the ``SessionStateMachine/tokenVerified(_:)`` event.
    case verifyToken(String)
    /// Answer the connection with who is on `channel` (allowed: the session checked), later, in order.
    case queryPresence(String)
    /// Stop reading from the socket: the connection's upstream calls are at their cap.
    case pauseReading
    /// Read again.
    case resumeReading
    /// The connection is over: release its subscriptions and tell the observers (``Gateway/release(_:subscriber:)``).
    case release(ConnectionSummary)
}

/// The outcome of the last ``SessionAction/subscribe(_:)`` or ``SessionAction/publish(_:channels:source:)``.
public enum StepOutcome: Sendable, Equatable {
    case done
    case refused(GatewayError)
}

/// A connection at its end, for the hub and the observers.
public struct ConnectionSummary: Sendable, Equatable {
    public var connection: ConnectionInfo
    /// The close code sent or received; 1006 when the connection just vanished.
    public var code: CloseCode
}

extension RouteRequest: Equatable {
    public static func == (lhs: RouteRequest, rhs: RouteRequest) -> Bool {
        lhs.message == rhs.message && lhs.parts == rhs.parts && lhs.subscribe == rhs.subscribe && lhs.connection == rhs.connection
    }
}

/// One channel of a subscribe with `since:`: where the client was (nil: `-`, it only wants the position).
public struct RecoveryRequest: Sendable, Hashable {
    public var channel: String
    public var position: HistoryPosition?

    public init(channel: String, position: HistoryPosition?) {
        self.channel = channel
        self.position = position
    }
}
