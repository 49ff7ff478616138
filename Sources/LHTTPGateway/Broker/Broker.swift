import NIOCore

/// Carries publications between nodes. The hub never knows which broker it has.
///
/// The in-memory ``LocalBroker`` is the default (one node); a cluster broker delivers locally at once,
/// forwards to the other nodes, and feeds their publications to the hub.
public protocol Broker: Sendable {
    /// Fans a serialized LHTTP message out to the subscribers of `channels` on every node.
    /// - Returns: the number of local connections it was delivered to.
    /// - Throws: when the message cannot go to every node (too large for the cluster); nothing was delivered then.
    func publish(_ payload: ByteBuffer, to channels: [String]) throws(GatewayError) -> Int
    /// The same, on a node that keeps history: publications reach every local connection in call order (the
    /// history lock's order), even across loops, and nothing is written while the lock is held: every loop,
    /// the caller's included, gets one task per publication, queued in call order (``Hub/deliver(_:to:queued:)``).
    func publishInOrder(_ payload: ByteBuffer, to channels: [String]) throws(GatewayError) -> Int
    /// Local interest changed: `added` channels got their first local subscriber, `removed` lost their last.
    ///
    /// Calls come from every event loop and may arrive out of order: a broker compares with
    /// ``Hub/subscriberCount(of:)`` rather than trusting the deltas.
    func interest(added: [String], removed: [String])
    /// The link to the other nodes, as a section of `/healthz`; nil for a single node.
    var health: HealthReport? { get }
    /// The cluster's history, when the broker keeps it (JetStream); nil: history, if any, is this node's.
    var sharedHistory: (any SharedHistory)? { get }
    /// Records the broker's own gauges (called when `/metrics` is scraped).
    func recordGauges()
}

extension Broker {
    /// A broker that does not keep history hands over as for any publication (a cluster with history is
    /// refused by the configuration until its broker keeps the order itself).
    public func publishInOrder(_ payload: ByteBuffer, to channels: [String]) throws(GatewayError) -> Int {
        try self.publish(payload, to: channels)
    }

    public var health: HealthReport? { nil }
    public var sharedHistory: (any SharedHistory)? { nil }
    public func recordGauges() {}
}

/// The one-node broker: publications go straight to the local hub.
public struct LocalBroker: Broker {
    public let hub: Hub

    public init(hub: Hub) { self.hub = hub }

    public func publish(_ payload: ByteBuffer, to channels: [String]) throws(GatewayError) -> Int {
        self.hub.deliver(payload, to: channels)
    }

    public func publishInOrder(_ payload: ByteBuffer, to channels: [String]) throws(GatewayError) -> Int {
        self.hub.deliver(payload, to: channels, queued: true)
    }

    public func interest(added: [String], removed: [String]) {}
}
