import LHTTPProtocol
import NIOCore

/// One channel's record in the memory store: its epoch, its top offset and the ring of what it retains.
/// A plain struct; ``MemoryHistory`` keeps it behind its lock and counts what it removes.
struct ChannelStream {
    private struct Retained {
        var offset: UInt64
        var payload: ByteBuffer
        var storedAt: NIODeadline
    }

    /// What an operation removed: messages and their payload bytes, for the store's totals.
    typealias Removed = (count: Int, bytes: Int)

    let epoch: String
    let policy: HistoryPolicy
    /// The last offset given out (0: none yet).
    private(set) var topOffset: UInt64 = 0
    /// The last publication or read here (for the record's meta TTL).
    private(set) var lastActive: NIODeadline
    private var retained = CircularBuffer<Retained>()

    init(epoch: String, policy: HistoryPolicy, now: NIODeadline) {
        self.epoch = epoch
        self.policy = policy
        self.lastActive = now
    }

    var top: HistoryPosition { HistoryPosition(epoch: self.epoch, offset: self.topOffset) }

    /// Everything it retains (what dropping the record removes).
    var retainedTotals: Removed {
        (self.retained.count, self.retained.reduce(0) { $0 + $1.payload.readableBytes })
    }
    var isEmpty: Bool { self.retained.isEmpty }
    var firstOffset: UInt64? { self.retained.first?.offset }

    /// Whether `offset` is still retained (offsets are contiguous on one node).
    func holds(_ offset: UInt64) -> Bool {
        guard let first = self.firstOffset else { return false }
        return offset >= first && offset <= self.topOffset
    }

    /// Drops what has outlived the TTL; `refresh` marks the record active (a read or a publication).
    mutating func touch(now: NIODeadline, refresh: Bool = true) -> Removed {
        if refresh { self.lastActive = now }
        guard let ttl = self.policy.ttl else { return (0, 0) }
        var removed: Removed = (0, 0)
        while let first = self.retained.first, first.storedAt + ttl <= now {
            removed.count += 1
            removed.bytes += first.payload.readableBytes
            self.retained.removeFirst()
        }
        return removed
    }

    /// Keeps `payload` under the next offset; the oldest goes when the ring is over `policy.size`.
    mutating func append(_ payload: ByteBuffer, now: NIODeadline) -> Removed {
        self.topOffset += 1
        self.lastActive = now
        self.retained.append(Retained(offset: self.topOffset, payload: payload, storedAt: now))
        var removed: Removed = (0, 0)
        while self.retained.count > self.policy.size {
            removed.count += 1
            removed.bytes += self.retained.removeFirst().payload.readableBytes
        }
        return removed
    }

    /// Drops the oldest retained publication (the node-wide byte cap).
    mutating func dropFirst() -> Removed {
        guard let first = self.retained.popFirst() else { return (0, 0) }
        return (1, first.payload.readableBytes)
    }

    /// What follows `position`: see ``MemoryHistory/read(_:after:limit:policy:now:)``.
    func read(after position: HistoryPosition, limit: Int) -> HistoryRead {
        let sameStream = position.epoch == self.epoch && position.offset <= self.topOffset
        let from = sameStream ? position.offset : 0
        var entries: [HistoryEntry] = []
        for item in self.retained where item.offset > from {
            guard entries.count < limit else { break }
            entries.append(self.entry(item))
        }
        // Nothing missing: the client is at the top, or the first thing after its position is still here.
        let firstWanted = from + 1
        let recovered = sameStream && (from == self.topOffset || (self.firstOffset.map { $0 <= firstWanted } ?? false))
        return HistoryRead(top: self.top, entries: entries, recovered: recovered)
    }

    /// The newest `limit` retained publications, oldest first.
    func newest(limit: Int) -> HistoryRead {
        let skip = max(0, self.retained.count - max(0, limit))
        let entries = self.retained.dropFirst(skip).map { self.entry($0) }
        return HistoryRead(top: self.top, entries: entries, recovered: true)
    }

    private func entry(_ item: Retained) -> HistoryEntry {
        HistoryEntry(offset: item.offset, prev: item.offset - 1, payload: item.payload)
    }
}
