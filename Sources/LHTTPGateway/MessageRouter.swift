import LHTTPProtocol

/// Sends chosen messages to the app before the gateway applies them (the webhook routes).
///
/// While a routed message waits for its answer, the connection's later messages wait behind it (in order,
/// bounded), so the app sees a connection's events in order and their effects happen in order.
public protocol MessageRouter: Sendable {
    /// Whether `message` goes to the app first. Called on the session's loop.
    func routes(_ message: LHTTPMessage) -> Bool
    /// Calls the app. `completion` must be called exactly once, on the session's event loop.
    func route(_ message: LHTTPMessage, parts: [LHTTPPart], session: Session, completion: @escaping (RouteDecision) -> Void)
}

/// What to do with a routed message once the app answered.
public enum RouteDecision {
    /// Apply the message's own headers (subscribe, publish, unsubscribe, upstream) — of `rewrite` when
    /// given (e.g. without refused channels) — then `then` (the answer's actions), on the session's loop.
    case proceed(rewrite: LHTTPMessage? = nil, then: (Session) -> Void)
    /// Do not apply the message; send `reply` (an error reply) to the sender.
    case stop(reply: LHTTPMessage)
}
