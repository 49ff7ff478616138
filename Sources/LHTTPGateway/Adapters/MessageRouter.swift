import LHTTPProtocol
import NIOCore

/// Sends chosen messages to the app before the gateway applies them (the webhook routes and the
/// subscribe hook).
///
/// While a routed message waits for its answer, the connection's later messages wait behind it (in order,
/// bounded), so the app sees a connection's events in order and their effects happen in order.
public protocol MessageRouter: Sendable {
    /// Whether a message with `command` that subscribes to `channels` goes to the app first. Called on the
    /// connection's loop for every message: must be a cheap look-up.
    func routes(command: String, subscribing channels: [String]) -> Bool
    /// Asks the app. `completion` runs exactly once, on `eventLoop`, and never before `route` returned.
    func route(_ request: RouteRequest, on eventLoop: any EventLoop, completion: @escaping @Sendable (RouteAnswer) -> Void)
}

/// A message on its way to the app.
public struct RouteRequest: Sendable {
    /// The message as processors left it.
    public var message: LHTTPMessage
    /// Its multipart parts, if any.
    public var parts: [LHTTPPart]
    /// The channels of its `subscribe` header (parsed once), for the subscribe hook.
    public var subscribe: [String]
    public var connection: ConnectionInfo

    public init(message: LHTTPMessage, parts: [LHTTPPart], subscribe: [String], connection: ConnectionInfo) {
        self.message = message
        self.parts = parts
        self.subscribe = subscribe
        self.connection = connection
    }
}

/// What to do with a routed message once the app answered.
public enum RouteAnswer: Sendable, Equatable {
    /// Apply the message's own headers (subscribe, publish, unsubscribe, upstream) — its subscribe list
    /// narrowed to `subscribe` when given (channels the subscribe hook refused are left out) — then
    /// `actions`.
    case proceed(subscribe: [String]?, actions: [AppAction])
    /// Do not apply the message; the sender gets `error` as an error reply.
    case stop(GatewayError)
}
