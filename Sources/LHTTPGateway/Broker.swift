import NIOCore

/// Carries publications between nodes. The hub never knows which broker it has.
///
/// The in-memory ``LocalBroker`` is the default (one node); a cluster broker (NATS) delivers locally at
/// once, forwards to the other nodes, and feeds their publications to the hub.
public protocol Broker: Sendable {
    /// Fans a serialized LHTTP message out to the subscribers of `channels` on every node.
    /// - Returns: the number of local connections it was delivered to.
    func publish(_ payload: ByteBuffer, to channels: [String]) -> Int
    /// Local interest changed: `added` channels got their first local subscriber, `removed` lost their last.
    func interest(added: [String], removed: [String])
}

/// The one-node broker: publications go straight to the local hub.
public struct LocalBroker: Broker {
    public let hub: Hub

    public init(hub: Hub) { self.hub = hub }

    public func publish(_ payload: ByteBuffer, to channels: [String]) -> Int {
        self.hub.deliver(payload, to: channels)
    }

    public func interest(added: [String], removed: [String]) {}
}
