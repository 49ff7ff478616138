import LHTTPProtocol
import NIOCore

/// Sends chosen messages to the app before the gateway applies them (the webhook routes and the
/// subscribe hook).
///
/// While a routed message waits for its answer, the connection's later messages wait behind it (in order,
/// bounded), so the app sees a connection's events in order and their effects happen in order.
public protocol MessageRouter: Sendable {
    /// Whether a message with `command` goes to the app first, when `channels` are the channels of its
    /// subscribe list that only the subscribe hook may allow. Called on the connection's loop for every
    /// message: must be a cheap look-up.
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
    /// The channels of its `subscribe` header (parsed once) that only the subscribe hook may allow
    /// (`subscribe: hook` in their channel options).
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
    /// Apply the message's own headers (subscribe, publish, unsubscribe, upstream) — of the channels the
    /// subscribe hook was asked about, only `subscribe` when given (the others are left out); its publish
    /// list as `publish` says — then `actions`.
    case proceed(subscribe: [String]?, actions: [AppAction], publish: OwnPublication = .asClient)
    /// Do not apply the message; the sender gets `error` as an error reply.
    case stop(GatewayError)
}

/// What becomes of a routed message's own `publish:` list.
public enum OwnPublication: Sendable, Equatable {
    /// Published as any client's message: the channels' options decide (only the subscribe hook was asked).
    case asClient
    /// The app's webhook said so (`"relay": true`): published to every channel of the list, as the app's own.
    case byApp
    /// The app's webhook did not ask for it: a routed message belongs to the app, its list is not applied.
    case withheld
}
