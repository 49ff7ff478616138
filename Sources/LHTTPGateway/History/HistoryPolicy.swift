import LHTTPProtocol
import NIOCore

/// How much of one channel's stream is kept: resolved per channel from `history:` and the `channels:` list.
public struct HistoryPolicy: Sendable, Hashable {
    /// Messages kept (0: no history, the channel is on the plain fan-out path).
    public var size: Int
    /// How long a message is kept; nil: until `size` or the node-wide byte cap pushes it out.
    public var ttl: TimeAmount?

    public init(size: Int, ttl: TimeAmount? = nil) {
        precondition(size >= 0, "history size must not be negative")
        self.size = size
        self.ttl = ttl.flatMap { $0 > .zero ? $0 : nil }
    }

    /// No history.
    public static let none = HistoryPolicy(size: 0)

    /// Whether the channel keeps anything.
    public var isEnabled: Bool { self.size > 0 }
}

/// One retained publication of a channel.
public struct HistoryEntry: Sendable, Equatable {
    /// Its offset in the channel's stream.
    public var offset: UInt64
    /// The offset of the channel's publication before it (0 for the first).
    public var prev: UInt64
    /// The serialized LHTTP message as delivered (with its `seq` and `prev` headers).
    public var payload: ByteBuffer

    public init(offset: UInt64, prev: UInt64, payload: ByteBuffer) {
        self.offset = offset
        self.prev = prev
        self.payload = payload
    }
}

/// What a read of a channel's history found.
public struct HistoryRead: Sendable, Equatable {
    /// The channel's stream and its newest offset (`stream:<epoch>:<top>`).
    public var top: HistoryPosition
    /// The retained publications asked for, oldest first.
    public var entries: [HistoryEntry]
    /// True when nothing between the position asked from and the first entry returned is missing (the
    /// client's state plus `entries` is the whole stream up to the last entry returned).
    public var recovered: Bool

    public init(top: HistoryPosition, entries: [HistoryEntry], recovered: Bool) {
        self.top = top
        self.entries = entries
        self.recovered = recovered
    }
}
