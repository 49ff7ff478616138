import LHTTPGateway
import NIOCore
import NIOWebSocket

/// One websocket connection, as one plain struct: the RFC 6455 layer (``WebSocketStateMachine``), the
/// LHTTP session (``SessionStateMachine``), the outbound buffer and the keep-alive clock.
///
/// Events in — frame received, decoding failed, route answered, upstream completed, keep-alive tick,
/// writability changed, close requested, close timed out, channel gone — and ``ConnectionAction``s out;
/// the handler executes them and asks ``next(_:)`` for more until ``ConnectionAction/none``. Times are
/// passed in (the event loop's clock), so tests drive them.
struct ConnectionStateMachine {
    /// Keep-alive periods (`websocket.ping_interval_s`, `websocket.idle_timeout_s`).
    struct KeepAlive {
        var pingInterval: TimeAmount
        var idleTimeout: TimeAmount
    }

    /// What follows an action the handler executes first.
    private enum Deferred {
        case finishSession(CloseCode)
    }

    // The fields a delivery reads (the websocket's state, the writer) come first, next to each other: a
    // publication to 1000 connections touches as few cache lines of each as it can.
    private(set) var websocket: WebSocketStateMachine
    /// The connection's outbound path (what is held, when it is flushed).
    private(set) var outbound: OutboundWriter
    private(set) var session: SessionStateMachine
    private var deferred: Deferred?
    private(set) var lastReceived: NIODeadline
    private(set) var lastPing: NIODeadline
    /// The close code sent or received, once known.
    private(set) var closeCode: CloseCode?
    /// Complete messages received since the last ``takeReceivedCount()`` (counted per read, not per message).
    private var received = 0

    /// Whether reads are held back: the session's upstream calls are at their cap. Never once our close
    /// frame went out (the peer's answer must be read) or the peer's came in.
    var isReadingPaused: Bool { self.websocket.isOpen && self.session.isReadingPaused }

    /// - Parameter writeCoalescing: the longest a delivery to a busy connection waits (`websocket.write_coalescing_us`).
    init(session: SessionStateMachine, maxMessageBytes: Int, writeCoalescing: TimeAmount = .zero, now: NIODeadline) {
        self.outbound = OutboundWriter(maxDelay: writeCoalescing)
        self.websocket = WebSocketStateMachine(maxMessageBytes: maxMessageBytes)
        self.session = session
        self.lastReceived = now
        self.lastPing = now
    }

    // MARK: Events

    /// The connection opened at `now`; `actions` are what the connect hook asked for.
    mutating func opened(actions: [AppAction], now: NIODeadline) -> ConnectionAction {
        self.lastReceived = now
        self.lastPing = now
        return self.lift(self.session.opened(actions: actions))
    }

    /// A frame arrived (payload still masked).
    mutating func frameReceived(_ frame: WebSocketFrame, now: NIODeadline) -> ConnectionAction {
        self.lastReceived = now
        switch self.websocket.received(frame) {
        case .none:
            return .none
        case .message(let payload):
            self.received += 1
            return self.lift(self.session.messageReceived(payload, now: now))
        case .pong(let payload):
            return .writeControl(WebSocketFrameBytes.frame(opcode: WebSocketFrameBytes.pongOpcode, payload: payload))
        case .fail(let code, let reason):
            return self.closeRequested(code, reason: reason)
        case .peerClosed(let code):
            self.closeCode = code
            self.deferred = .finishSession(code)
            return .answerClose(code)
        case .closeAcknowledged:
            return .closeChannel
        }
    }

    /// NIO's frame decoder threw. - Returns: nil for I/O errors (just close the channel).
    mutating func decodingFailed(_ error: any Error) -> ConnectionAction? {
        guard let result = self.websocket.decodingFailed(error) else { return nil }
        guard case .fail(let code, let reason) = result else { return ConnectionAction.none }
        return self.closeRequested(code, reason: reason)
    }

    mutating func routeAnswered(_ answer: RouteAnswer) -> ConnectionAction {
        self.lift(self.session.routeAnswered(answer))
    }

    mutating func tokenVerified(_ result: Result<ConnectionIdentity, TokenRefusal>) -> ConnectionAction {
        self.lift(self.session.tokenVerified(result))
    }

    mutating func tokenExpired(generation: UInt32, grace: Double) -> ConnectionAction {
        self.lift(self.session.tokenExpired(generation: generation, grace: grace))
    }

    mutating func refreshGraceEnded(generation: UInt32) -> ConnectionAction {
        self.lift(self.session.refreshGraceEnded(generation: generation))
    }

    mutating func upstreamCompleted(_ error: GatewayError?) -> ConnectionAction {
        self.lift(self.session.upstreamCompleted(error))
    }

    /// The loop's keep-alive sweep: ping a quiet connection, close (4009) a silent one. A connection whose
    /// reading is paused is not silent: the server stopped listening, not the client. Nor is the time the
    /// loop itself was `stalled` (not run): the client's frames of that time are still unread.
    mutating func keepAliveTick(now: NIODeadline, stalled: TimeAmount = .zero, _ keepAlive: KeepAlive) -> ConnectionAction {
        guard self.websocket.isOpen else { return .none }
        if self.isReadingPaused {
            self.lastReceived = now
            return .none
        }
        if stalled > .zero {
            self.lastReceived = min(now, self.lastReceived + stalled)
        }
        let quiet = now - self.lastReceived
        if quiet >= keepAlive.idleTimeout {
            return self.closeRequested(.idleTimeout, reason: "idle timeout")
        }
        guard quiet >= keepAlive.pingInterval, now - self.lastPing >= keepAlive.pingInterval else { return .none }
        self.lastPing = now
        return .writeControl(WebSocketFrameBytes.frame(opcode: WebSocketFrameBytes.pingOpcode, payload: ByteBuffer()))
    }

    mutating func writabilityChanged(isWritable: Bool) {
        self.outbound.isWritable = isWritable
    }

    /// The server closes the connection (drain 1001, slow consumer 4008, idle 4009, protocol errors, the
    /// app's `close`): a close frame, then the session ends at once (its subscriptions are released and its
    /// close hooks run now, not when the peer finally goes away).
    mutating func closeRequested(_ code: CloseCode, reason: String) -> ConnectionAction {
        // The last line of defence for the wire rule: 1005, 1006, 1015 and unassigned codes are never sent,
        // whoever asked (the app's answers are checked when read; a processor could build any code).
        let code = code.isValidOnTheWire ? code : .internalError
        guard self.websocket.closing(code) else { return .none }
        self.closeCode = code
        self.deferred = .finishSession(code)
        return .sendClose(code, reason: reason)
    }

    /// The close handshake did not end within the close timeout.
    mutating func closeTimedOut() -> ConnectionAction {
        .reset
    }

    /// The channel is gone (closed by either side, or reset).
    mutating func channelInactive() -> ConnectionAction {
        self.deferred = nil
        return self.lift(self.session.finish(code: self.closeCode ?? .abnormal))
    }

    /// The next action, after reporting the outcome of the previous one.
    mutating func next(_ outcome: StepOutcome = .done) -> ConnectionAction {
        if let deferred = self.deferred {
            self.deferred = nil
            switch deferred {
            case .finishSession(let code):
                return self.lift(self.session.finish(code: code))
            }
        }
        return self.lift(self.session.next(outcome))
    }

    // MARK: Outbound

    /// What to do with a frame for this client (a publication or a reply).
    enum OutboundDecision: Equatable {
        /// The connection is closing: nothing more goes out.
        case drop
        /// The writer's step: hand frames to the channel, ask for a flush, or close with 4008.
        case step(OutboundWriter.Step)
    }

    /// A frame for this client; `now` is read only when it asks for a flush.
    mutating func outboundFrame(_ frame: ByteBuffer, now: @autoclosure () -> NIODeadline) -> OutboundDecision {
        guard self.websocket.isOpen else { return .drop }
        return .step(self.outbound.enqueue(frame, now: now()))
    }

    /// The flush asked for is due.
    mutating func flushOutbound(now: NIODeadline) -> OutboundWriter.Flush {
        self.outbound.flush(now: now)
    }

    /// What is held, to write before a control frame that is flushed at once.
    mutating func takeOutbound() -> ByteBuffer? {
        self.outbound.takeForImmediateFlush()
    }

    /// Messages received since the last call.
    mutating func takeReceivedCount() -> Int {
        defer { self.received = 0 }
        return self.received
    }

    // MARK: Session actions

    /// Passes the session's action on, handling the ones that concern the connection itself.
    private mutating func lift(_ action: SessionAction) -> ConnectionAction {
        switch action {
        case .close(let code, let reason):
            return self.closeRequested(code, reason: reason)
        case .none:
            return .none
        default:
            return .session(action)
        }
    }
}

/// What the connection handler does for its ``ConnectionStateMachine``.
enum ConnectionAction: Equatable {
    case none
    /// A session action, carried out through the gateway (subscribe, publish, reply, route, ...).
    case session(SessionAction)
    /// Write a control frame (pong, ping) after what is pending, and flush.
    case writeControl(ByteBuffer)
    /// Write our close frame after what is pending; half-close once it is out; arm the close timer; issue
    /// a read held back while reading was paused (the peer's close must be read).
    case sendClose(CloseCode, reason: String)
    /// The peer closed first: answer with its code, close once written; arm the close timer.
    case answerClose(CloseCode)
    /// The handshake is complete: close the channel.
    case closeChannel
    /// Drop the connection with a TCP reset (SO_LINGER 0): its close frame did not go out in time, and
    /// whatever it still holds in the kernel is released at once instead of lingering in FIN-WAIT.
    case reset
}
