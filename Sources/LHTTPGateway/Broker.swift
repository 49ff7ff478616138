import NIOCore

/// Carries publications between nodes. The hub never knows which broker it has.
///
/// The in-memory ``LocalBroker`` is the default (one node); a cluster broker (NATS) delivers locally at
/// once, forwards to the other nodes, and feeds their publications to the hub.
public protocol Broker: Sendable {
    /// Fans a serialized LHTTP message out to the subscribers of `channels` on every node.
    /// - Returns: the number of local connections it was delivered to.
    /// - Throws: when the message cannot go to every node (too large for the cluster); nothing was delivered then.
    func publish(_ payload: ByteBuffer, to channels: [String]) throws(GatewayError) -> Int
    /// Local interest changed: `added` channels got their first local subscriber, `removed` lost their last.
    ///
    /// Calls come from every event loop and may arrive out of order: a broker compares with
    /// ``Hub/subscriberCount(of:)`` rather than trusting the deltas.
    func interest(added: [String], removed: [String])
    /// The link to the other nodes, for `/healthz`; nil for a single node.
    var health: BrokerHealth? { get }
}

extension Broker {
    public var health: BrokerHealth? { nil }
}

/// What a cluster broker reports about its link (see ``Broker/health``).
public struct BrokerHealth: Sendable, Equatable {
    /// Whether publications currently reach the other nodes.
    public var isConnected: Bool
    /// A one-word state (`connecting`, `connected`, `disconnected`, `closed`).
    public var state: String
    /// The server of the current or last link, without credentials.
    public var server: String
    public var nodeID: String
    /// Channels this node currently receives from the cluster (one subscription each).
    public var channels: Int
    /// Successful connections so far (reconnects = connections - 1).
    public var connections: Int
    /// Publications dropped because the link was down longer than its buffer lasted.
    public var droppedMessages: Int
    /// Bytes waiting for the link.
    public var pendingBytes: Int

    public init(isConnected: Bool, state: String, server: String, nodeID: String, channels: Int, connections: Int, droppedMessages: Int, pendingBytes: Int) {
        self.isConnected = isConnected
        self.state = state
        self.server = server
        self.nodeID = nodeID
        self.channels = channels
        self.connections = connections
        self.droppedMessages = droppedMessages
        self.pendingBytes = pendingBytes
    }
}

/// The one-node broker: publications go straight to the local hub.
public struct LocalBroker: Broker {
    public let hub: Hub

    public init(hub: Hub) { self.hub = hub }

    public func publish(_ payload: ByteBuffer, to channels: [String]) throws(GatewayError) -> Int {
        self.hub.deliver(payload, to: channels)
    }

    public func interest(added: [String], removed: [String]) {}
}
