/// A connection as hooks, processors and the app's webhooks see it: a snapshot, safe to send anywhere.
public struct ConnectionInfo: Sendable, Equatable {
    public var id: ConnectionID
    /// `ip:port` of the peer (empty when unknown).
    public var remoteAddress: String
    /// The app's per-connection values (a webhook answer's `meta`), sent with the connection's later events.
    public var meta: [String: String]
    /// The channels the connection is subscribed to.
    public var subscriptions: Set<String>
    /// Who the connection is (its verified token); nil: no token.
    public var identity: ConnectionIdentity?

    public init(
        id: ConnectionID, remoteAddress: String = "", meta: [String: String] = [:], subscriptions: Set<String> = [], identity: ConnectionIdentity? = nil
    ) {
        self.id = id
        self.remoteAddress = remoteAddress
        self.meta = meta
        self.subscriptions = subscriptions
        self.identity = identity
    }

    /// The token's user; empty: anonymous.
    public var user: String { self.identity?.user ?? "" }
}
