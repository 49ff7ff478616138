import NIOCore

/// Carries presence between nodes (the NATS broker implements it): each node shares its own members per
/// channel; every node keeps the union and computes join/leave for its own subscribers.
public protocol PresenceLink: Sendable {
    /// Sends `update` to the other nodes (called on the presence loop; fire and forget).
    func send(_ update: PresenceUpdate)
}

/// One presence message between nodes.
public struct PresenceUpdate: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        /// The node is alive; `seq` is its last `state`'s (a receiver that saw less asks for a sync).
        case alive
        /// The node's members of `channels` now (each replaces what the receivers had from it there).
        case state
        /// Asks the nodes (`target`, or all when nil) to send their whole state.
        case sync
        /// Part of a whole state (answering a sync): `syncID` ties the parts, `last` ends them; channels
        /// of the node no part listed are gone.
        case full
    }

    /// One node's members of one channel.
    public struct Channel: Sendable, Codable, Equatable {
        /// Nil past the member cap (counts only).
        public var members: [PresenceMember]?
        public var clients: Int
        /// Distinct users (with `members` nil: the count only).
        public var users: Int

        public init(members: [PresenceMember]?, clients: Int, users: Int) {
            self.members = members
            self.clients = clients
            self.users = users
        }
    }

    public var kind: Kind
    /// The sender (`node#nonce`).
    public var node: String
    /// `state` messages sent by the node so far (each `state` counts one).
    public var seq: UInt64
    public var channels: [String: Channel]?
    public var target: String?
    public var syncID: UInt64?
    public var last: Bool?
    /// Milliseconds since 1970 when sent (a replayed message is refused by the link).
    public var ts: Int64

    public init(
        kind: Kind, node: String, seq: UInt64, channels: [String: Channel]? = nil, target: String? = nil, syncID: UInt64? = nil, last: Bool? = nil,
        ts: Int64 = 0
    ) {
        self.kind = kind
        self.node = node
        self.seq = seq
        self.channels = channels
        self.target = target
        self.syncID = syncID
        self.last = last
        self.ts = ts
    }
}

/// Told of presence changes this node caused (the `presence` webhook): in a cluster each change is
/// reported by the node whose connection made it, once.
public protocol PresenceObserver: Sendable {
    /// Called on the presence loop (`eventLoop`); must not block.
    func presenceChanged(_ event: PresenceEvent, on eventLoop: any EventLoop)
}

/// A channel's first connection anywhere came or its last went, or a user's first connection came or
/// (after the grace) its last went.
public struct PresenceEvent: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case channelOccupied = "channel_occupied"
        case channelVacated = "channel_vacated"
        case memberAdded = "member_added"
        case memberRemoved = "member_removed"
    }

    public var kind: Kind
    public var channel: String
    /// The connection that caused it (its user and info).
    public var member: PresenceMember

    public init(kind: Kind, channel: String, member: PresenceMember) {
        self.kind = kind
        self.channel = channel
        self.member = member
    }
}
