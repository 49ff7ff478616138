import NIOCore

/// One thing the app asked for in an answer (a webhook's JSON, the connect hook's acceptance).
///
/// Data, not a closure: the connection's state machine turns a list of these into its actions, in order,
/// and tests can compare them. The webhook contract's order is reply, publish, subscribe, unsubscribe,
/// meta, close; adapters list them in that order.
public enum AppAction: Sendable, Equatable {
    /// A serialized LHTTP message for the connection.
    case reply(ByteBuffer)
    /// A serialized LHTTP message to fan out to `channels` (source `webhook`). Refused publications are
    /// logged, not reported to the client: it did not ask for them.
    case publish(ByteBuffer, channels: [String])
    /// Join `channels` (a refusal by the caps is sent to the client as an error reply).
    case subscribe([String])
    case unsubscribe([String])
    /// Replace the connection's meta.
    case setMeta([String: String])
    /// End the connection with a code that may be sent (``CloseCode/init(sending:)`` checked it).
    case close(CloseCode, reason: String)
    /// Send the client an error reply (e.g. the channels a subscribe hook refused).
    case error(GatewayError)
}
