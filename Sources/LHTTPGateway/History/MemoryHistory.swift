import LHTTPProtocol
import NIOConcurrencyHelpers
import NIOCore

/// The one-node history store: a bounded ring of publications per channel, lost on restart (every channel
/// starts a new epoch then).
///
/// Bounds: each channel keeps at most its policy's `size` messages, none older than its `ttl`, and all
/// channels together at most `maxBytes` (payload bytes plus ``recordBytes`` per channel record); past the cap
/// the node's oldest publications are dropped first. A channel whose messages are all gone keeps its epoch and
/// top offset (so offsets only grow) until it has been idle for `metaTTL`; then its record is dropped, and the
/// next publication there starts a new epoch. Times are passed in (`now`), never read here.
///
/// One lock for the whole store: every operation is O(1) amortized except ``sweep(now:)`` (O(channels)),
/// and no caller writes to a channel while holding it.
public final class MemoryHistory: Sendable {
    /// What a channel's record costs against `maxBytes` besides its name and payloads.
    public static let recordBytes = 128

    /// The node-wide cap on retained bytes.
    public let maxBytes: Int
    /// How long an empty channel record is kept after its last publication or read.
    public let metaTTL: TimeAmount
    private let state: NIOLockedValueBox<State>

    public init(maxBytes: Int, metaTTL: TimeAmount = .hours(1)) {
        precondition(maxBytes > 0, "history.max_bytes must be positive")
        self.maxBytes = maxBytes
        self.metaTTL = metaTTL
        self.state = NIOLockedValueBox(State())
    }

    /// Appends one publication to every channel of `channels` (each with history), atomically: the offsets
    /// are assigned, `publish` builds the payload from them (the message with its `seq` and `prev` headers, in
    /// `channels` order) and hands it over for delivery, and that one payload is kept in each channel. Under
    /// the store's lock, so publications reach every connection's queue in offset order (`publish` must only
    /// queue work, never write to a socket). When `publish` throws, nothing is kept and no offset is used.
    /// - Returns: what `publish` returned and each channel's new position and previous offset, in `channels` order.
    public func append<Failure: Error, Delivered>(
        to channels: [(channel: String, policy: HistoryPolicy)],
        now: NIODeadline,
        publish: ([(position: HistoryPosition, prev: UInt64)]) throws(Failure) -> (payload: ByteBuffer, delivered: Delivered)
    ) throws(Failure) -> (delivered: Delivered, positions: [(position: HistoryPosition, prev: UInt64)]) {
        // The lock's closure rethrows untyped errors: carry the typed one out as a Result.
        let result = self.state.withLockedValue { state -> Result<(Delivered, [(position: HistoryPosition, prev: UInt64)]), Failure> in
            let positions = channels.map { state.next(in: $0.channel, policy: $0.policy, now: now) }
            let published: (payload: ByteBuffer, delivered: Delivered)
            do throws(Failure) {
                published = try publish(positions)
            } catch {
                return .failure(error)
            }
            for (channel, _) in channels { state.store(published.payload, in: channel, now: now) }
            state.enforce(maxBytes: self.maxBytes)
            return .success((published.delivered, positions))
        }
        return try result.get()
    }

    /// A subscription with recovery, atomically with respect to every publication: `join` (the hub's
    /// subscribe) runs and each channel is read under the store's lock, so a publication is either in a
    /// read or delivered live after it, never both, never neither. A request without a position (`since:-`)
    /// reads only the channel's top.
    public func recover<Joined>(
        _ requests: [(channel: String, since: HistoryPosition?, policy: HistoryPolicy)],
        now: NIODeadline,
        joining join: () -> Joined
    ) -> (joined: Joined, reads: [HistoryRead]) {
        self.state.withLockedValue { state in
            let joined = join()
            let reads = requests.map { request -> HistoryRead in
                let stream = state.touch(request.channel, policy: request.policy, now: now)
                guard let since = request.since else { return HistoryRead(top: stream.top, entries: [], recovered: true) }
                return stream.read(after: since, limit: .max)
            }
            state.enforce(maxBytes: self.maxBytes)
            return (joined, reads)
        }
    }

    /// The channel's current stream position (`stream:` of a `subscribed` answer); creates the channel's
    /// record when it has none, so a client that starts from here keeps a valid position.
    public func top(of channel: String, policy: HistoryPolicy, now: NIODeadline) -> HistoryPosition {
        self.state.withLockedValue { state in
            let top = state.touch(channel, policy: policy, now: now).top
            state.enforce(maxBytes: self.maxBytes)
            return top
        }
    }

    /// Everything retained after `position` (a client's `since:`), oldest first, at most `limit` entries.
    /// A position from another epoch, or above the top, gets everything retained and `recovered: false`.
    public func read(_ channel: String, after position: HistoryPosition, limit: Int = .max, policy: HistoryPolicy, now: NIODeadline) -> HistoryRead {
        self.state.withLockedValue { state in
            let stream = state.touch(channel, policy: policy, now: now)
            let read = stream.read(after: position, limit: limit)
            state.enforce(maxBytes: self.maxBytes)
            return read
        }
    }

    /// The newest `limit` retained publications, oldest first (`GET /history` without `since`).
    public func newest(_ channel: String, limit: Int, policy: HistoryPolicy, now: NIODeadline) -> HistoryRead {
        self.state.withLockedValue { state in
            let stream = state.touch(channel, policy: policy, now: now)
            let read = stream.newest(limit: limit)
            state.enforce(maxBytes: self.maxBytes)
            return read
        }
    }

    /// Forgets `channels` (nil: every channel): their records and messages go, and each one's next
    /// publication starts a new epoch, so no position from before is taken as continuous with what follows
    /// (a cluster node that stopped hearing a channel, `cluster.history: memory`).
    public func reset(_ channels: [String]?) {
        self.state.withLockedValue { state in state.reset(channels) }
    }

    /// Drops expired messages everywhere and the records of channels idle and empty for `metaTTL`.
    /// The application calls it from a timer; reads and appends expire their own channel as they go.
    public func sweep(now: NIODeadline) {
        self.state.withLockedValue { state in state.sweep(now: now, metaTTL: self.metaTTL) }
    }

    /// The age-order records kept for the byte cap, live and stale (tests: they stay bounded).
    var ageRecordCount: Int { self.state.withLockedValue { $0.appends.count } }

    /// Counts for `/metrics` and tests.
    public var stats: MemoryHistoryStats {
        self.state.withLockedValue { state in
            MemoryHistoryStats(channels: state.streams.count, messages: state.messageCount, bytes: state.bytes)
        }
    }
}

/// What the memory store holds.
public struct MemoryHistoryStats: Sendable, Equatable {
    /// Channel records (with or without retained messages).
    public var channels: Int
    /// Retained publications, over all channels.
    public var messages: Int
    /// Bytes counted against `history.max_bytes`.
    public var bytes: Int
}

extension MemoryHistory {
    /// Everything behind the lock.
    fileprivate struct State {
        var streams: [String: ChannelStream] = [:]
        /// Every append, in order: the node-wide age order the byte cap drops from. A record whose entry is
        /// already gone (size, ttl) is stale and skipped; compacted when stale ones dominate.
        var appends = CircularBuffer<(channel: String, offset: UInt64)>()
        var messageCount = 0
        var bytes = 0
        var generator = SystemRandomNumberGenerator()

        /// The position the channel's next publication gets (its record created when missing).
        mutating func next(in channel: String, policy: HistoryPolicy, now: NIODeadline) -> (position: HistoryPosition, prev: UInt64) {
            self.touchRecord(channel, policy: policy, now: now)
            let top = self.streams[channel]!.top
            return (HistoryPosition(epoch: top.epoch, offset: top.offset + 1), top.offset)
        }

        /// Keeps `payload` as the channel's next publication (the one ``next(in:policy:now:)`` announced).
        mutating func store(_ payload: ByteBuffer, in channel: String, now: NIODeadline) {
            let removed = self.streams[channel]!.append(payload, now: now)
            self.account(addedMessages: 1, addedBytes: payload.readableBytes, removed: removed)
            self.appends.append((channel, self.streams[channel]!.top.offset))
        }

        /// The channel's record, created (with a new epoch) when missing; expired messages dropped.
        mutating func touch(_ channel: String, policy: HistoryPolicy, now: NIODeadline) -> ChannelStream {
            self.touchRecord(channel, policy: policy, now: now)
            return self.streams[channel]!
        }

        private mutating func touchRecord(_ channel: String, policy: HistoryPolicy, now: NIODeadline) {
            if self.streams[channel] == nil {
                let epoch = HistoryPosition.newEpoch(using: &self.generator)
                self.streams[channel] = ChannelStream(epoch: epoch, policy: policy, now: now)
                self.bytes += MemoryHistory.recordBytes + channel.utf8.count
            }
            let removed = self.streams[channel]!.touch(now: now)
            self.account(removed: removed)
        }

        private mutating func account(addedMessages: Int = 0, addedBytes: Int = 0, removed: (count: Int, bytes: Int)) {
            self.messageCount += addedMessages - removed.count
            self.bytes += addedBytes - removed.bytes
        }

        /// Drops the node's oldest publications, then (only records left) the longest-idle empty records,
        /// until the total fits `maxBytes`.
        mutating func enforce(maxBytes: Int) {
            while self.bytes > maxBytes, let oldest = self.appends.popFirst() {
                guard var stream = self.streams[oldest.channel], let first = stream.firstOffset, first == oldest.offset else { continue }
                let removed = stream.dropFirst()
                self.streams[oldest.channel] = stream
                self.account(removed: removed)
            }
            if self.bytes > maxBytes { self.dropIdleRecords(until: maxBytes) }
            self.compactAppendsIfStale()
        }

        /// The cap is exceeded by records alone: drop empty records, longest idle first, and half of them at
        /// once beyond what is needed, so a flood of one-message channels costs O(1) amortized per append.
        private mutating func dropIdleRecords(until maxBytes: Int) {
            let empty = self.streams.filter { $0.value.isEmpty }.sorted { $0.value.lastActive < $1.value.lastActive }
            var toDrop = empty.count / 2
            for (channel, _) in empty where self.bytes > maxBytes || toDrop > 0 {
                self.streams[channel] = nil
                self.bytes -= MemoryHistory.recordBytes + channel.utf8.count
                toDrop -= 1
            }
        }

        private mutating func compactAppendsIfStale() {
            guard self.appends.count > 2 * self.messageCount + 1024 else { return }
            var live = CircularBuffer<(channel: String, offset: UInt64)>(initialCapacity: self.messageCount)
            for record in self.appends {
                if let stream = self.streams[record.channel], stream.holds(record.offset) { live.append(record) }
            }
            self.appends = live
        }

        mutating func reset(_ channels: [String]?) {
            for channel in channels ?? Array(self.streams.keys) {
                guard let stream = self.streams.removeValue(forKey: channel) else { continue }
                self.account(removed: stream.retainedTotals)
                self.bytes -= MemoryHistory.recordBytes + channel.utf8.count
            }
            // Their age records are stale now (skipped, compacted with the others).
            self.compactAppendsIfStale()
        }

        mutating func sweep(now: NIODeadline, metaTTL: TimeAmount) {
            for channel in Array(self.streams.keys) {
                let removed = self.streams[channel]!.touch(now: now, refresh: false)
                self.account(removed: removed)
                let stream = self.streams[channel]!
                if stream.isEmpty, stream.lastActive + metaTTL <= now {
                    self.streams[channel] = nil
                    self.bytes -= MemoryHistory.recordBytes + channel.utf8.count
                }
            }
            self.compactAppendsIfStale()
        }
    }
}
