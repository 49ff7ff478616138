import LHTTPProtocol
import NIOCore

/// History kept outside this node and shared by every node of the cluster (JetStream): the store assigns
/// the positions, so every call is asynchronous and none waits on the event loop.
///
/// The gateway hands it every publication to a channel that ``keeps(_:)`` history, every subscribe with
/// `since:` and every `GET /history`; channels without history stay on the broker's plain path.
public protocol SharedHistory: Sendable {
    /// Whether `channel` keeps history.
    func keeps(_ channel: String) -> Bool

    /// Stores `payload` for each channel of `channels` with history and fans it out to every node in the
    /// store's order; the channels without history get it as any publication. Completes with each
    /// channel's new position (nil where there is none: no history, or the store was unreachable and the
    /// publication went out live only). - Parameter idempotencyKey: a repeat within the store's window
    /// is stored and delivered once, and answered with the first one's positions. - Throws: at once, before
    /// anything is stored or delivered, when the publication cannot go to the cluster (too large).
    func publish(_ payload: ByteBuffer, to channels: [String], idempotencyKey: String?) throws(GatewayError) -> EventLoopFuture<ChannelHistory.Published>

    /// Recovers `subscriber` from its positions: `join` (which puts it in the hub for the requested
    /// channels) runs once the live feed is held back for it; the publications after each position and one
    /// `subscribed` answer per channel then reach the connection before any live publication of those
    /// channels that came in meanwhile (sent once, after them). - Returns: `join`'s refusal (nothing
    /// happens then).
    func recover(_ requests: [RecoveryRequest], for subscriber: Subscriber, joining join: () -> GatewayError?) -> GatewayError?

    /// A channel's retained publications for `GET /history` (nil: the channel keeps no history).
    func read(_ channel: String, since: HistoryPosition?, limit: Int) -> EventLoopFuture<HistoryRead?>
}
