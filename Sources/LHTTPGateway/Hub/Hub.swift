import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// Counts the hub keeps so callers (health, metrics, tests) can see channels come and go.
public struct HubStats: Sendable, Equatable {
    /// Channels with at least one local subscriber.
    public var channels: Int
    /// (connection, channel) pairs.
    public var subscriptions: Int

    public init(channels: Int, subscriptions: Int) {
        self.channels = channels
        self.subscriptions = subscriptions
    }
}

/// The local channel registry and the fan-out path.
///
/// Channels are sharded by name hash, a lock per shard; subscribers are grouped by event loop.
/// A delivery encodes the websocket frame once, collects targets under the shard locks, releases
/// them, then runs one `execute` per event loop that writes the same buffer to each connection.
public final class Hub: Sendable {
    private let shards: [NIOLockedValueBox<Shard>]
    /// Channels with at least one subscriber, across shards (kept exact under the shard locks).
    private let channelCount = Atomic<Int>(0)
    private let slots = NIOLockedValueBox<[LoopSlot]>([])
    private let allocator = ByteBufferAllocator()

    public init(shardCount: Int = 64) {
        precondition(shardCount > 0)
        self.shards = (0..<shardCount).map { _ in NIOLockedValueBox(Shard()) }
    }

    /// The delivery slot of `eventLoop`, created on first use.
    func slot(for eventLoop: any EventLoop) -> LoopSlot {
        self.slots.withLockedValue { slots in
            if let slot = slots.first(where: { $0.eventLoop === eventLoop }) { return slot }
            let slot = LoopSlot(index: slots.count, eventLoop: eventLoop)
            slots.append(slot)
            return slot
        }
    }

    /// Adds `subscriber` to `channels`, all or none: when a channel would be created beyond `maxChannels`,
    /// the ones added by this call are removed again and nil is returned.
    /// - Returns: the channels that had no subscriber before, or nil when refused.
    func add(_ subscriber: Subscriber, to channels: [String], maxChannels: Int = .max) -> [String]? {
        var created: [String] = []
        for (index, channel) in channels.enumerated() {
            let outcome = self.shard(for: channel).withLockedValue { shard -> Bool? in
                if shard.channels[channel] == nil {
                    // Reserve the slot first so concurrent subscribes on other shards cannot overshoot.
                    guard self.channelCount.add(1, ordering: .relaxed).newValue <= maxChannels else {
                        self.channelCount.subtract(1, ordering: .relaxed)
                        return nil
                    }
                }
                return shard.add(subscriber, to: channel)
            }
            guard let isNew = outcome else {
                let emptied = self.remove(subscriber, from: channels[..<index])
                precondition(Set(emptied).isSubset(of: created), "rollback emptied a channel this call did not create")
                return nil
            }
            if isNew { created.append(channel) }
        }
        return created
    }

    /// Channels with at least one local subscriber.
    public var channelTotal: Int { self.channelCount.load(ordering: .relaxed) }

    /// Removes `subscriber` from `channels`. - Returns: the channels left with no subscriber.
    func remove(_ subscriber: Subscriber, from channels: some Sequence<String>) -> [String] {
        var emptied: [String] = []
        for channel in channels {
            let isGone = self.shard(for: channel).withLockedValue { shard in
                let isGone = shard.remove(subscriber, from: channel)
                if isGone { self.channelCount.subtract(1, ordering: .relaxed) }
                return isGone
            }
            if isGone { emptied.append(channel) }
        }
        return emptied
    }

    /// Delivers a serialized LHTTP message to every local subscriber of `channels`, once per connection.
    /// - Returns: the number of connections it was sent to.
    /// - Parameter queued: hand the frame over through each loop's task queue, the caller's own loop
    ///   included, so that deliveries made in one order (under the history lock) reach every connection in
    ///   that order: a frame handed over inline on the caller's loop would overtake one another loop queued
    ///   there a moment before.
    @discardableResult
    public func deliver(_ payload: ByteBuffer, to channels: [String], queued: Bool = false) -> Int {
        let perLoop = channels.count == 1 ? self.subscribers(of: channels[0]) : self.collectDistinct(channels)
        return self.send(payload, to: perLoop, queued: queued)
    }

    /// Delivers a serialized LHTTP message to the local subscribers of `channel` that are subscribed to
    /// none of `excluded`: the cluster's copy of a multi-channel publication on `channel`'s subject, the
    /// connections also on a channel listed earlier getting that channel's copy instead. With nothing
    /// excluded (a single-channel publication) it costs what ``deliver(_:to:)`` costs for one channel.
    /// - Returns: the number of connections it was sent to.
    @discardableResult
    public func deliver(_ payload: ByteBuffer, to channel: String, excluding excluded: ArraySlice<String>) -> Int {
        var perLoop = self.subscribers(of: channel)
        if !excluded.isEmpty, !perLoop.isEmpty { self.remove(subscribersOf: excluded, from: &perLoop) }
        return self.send(payload, to: perLoop)
    }

    /// Delivers to the subscribers of `channels` (once per connection) that are on none of `excluded` and
    /// are not in `except`, always through each loop's task queue: the cluster's history path, where a
    /// connection still being recovered gets its copy later, from the recovery, and deliveries made on the
    /// NATS loop must stay behind a replay queued there before them.
    /// - Returns: the number of connections it was sent to.
    @discardableResult
    public func deliver(_ payload: ByteBuffer, to channels: [String], excluding excluded: [String], except: Set<ConnectionID>) -> Int {
        var perLoop = channels.count == 1 ? self.subscribers(of: channels[0]) : self.collectDistinct(channels)
        if !excluded.isEmpty, !perLoop.isEmpty { self.remove(subscribersOf: excluded[...], from: &perLoop) }
        if !except.isEmpty {
            for index in perLoop.indices { perLoop[index].removeAll { except.contains($0.id) } }
        }
        return self.send(payload, to: perLoop, queued: true)
    }

    /// Hands `payloads` to one connection in order, through its loop's task queue; on that loop each is
    /// sent only if `stillWanted` says so (a connection that left the channel meanwhile gets nothing).
    public func send(_ payloads: [ByteBuffer], to subscriber: Subscriber, if stillWanted: @escaping @Sendable () -> Bool = { true }) {
        guard !payloads.isEmpty else { return }
        let frames = payloads.map { WebSocketFrameBytes.message($0, allocator: self.allocator) }
        subscriber.slot.eventLoop.execute {
            guard stillWanted() else { return }
            for frame in frames { subscriber.slot.deliver(frame, to: [subscriber]) }
        }
    }

    /// Whether `subscriber` is on `channel`.
    public func contains(_ subscriber: Subscriber, in channel: String) -> Bool {
        self.shard(for: channel).withLockedValue { shard in
            guard let entry = shard.channels[channel], subscriber.slot.index < entry.byLoop.count else { return false }
            return entry.byLoop[subscriber.slot.index].contains(subscriber.id)
        }
    }

    /// A snapshot of `channel`'s subscribers, per loop slot (copy-on-write: no copy of the lists).
    private func subscribers(of channel: String) -> [ContiguousArray<Subscriber>] {
        self.shard(for: channel).withLockedValue { shard in shard.channels[channel]?.byLoop.map(\.items) ?? [] }
    }

    /// Removes from `perLoop` the connections subscribed to any of `channels`. Each channel's lists are
    /// taken under its shard lock (a copy-on-write snapshot) and compared outside it.
    private func remove(subscribersOf channels: ArraySlice<String>, from perLoop: inout [ContiguousArray<Subscriber>]) {
        for channel in channels {
            guard let lists = self.shard(for: channel).withLockedValue({ $0.channels[channel]?.byLoop }) else { continue }
            var remaining = 0
            for index in perLoop.indices {
                if index < lists.count, !perLoop[index].isEmpty, !lists[index].items.isEmpty {
                    let other = lists[index]
                    perLoop[index].removeAll { other.contains($0.id) }
                }
                remaining += perLoop[index].count
            }
            if remaining == 0 { return }
        }
    }

    /// Encodes the frame once and writes it to every target, one `execute` per loop.
    private func send(_ payload: ByteBuffer, to perLoop: [ContiguousArray<Subscriber>], queued: Bool = false) -> Int {
        var total = 0
        for list in perLoop { total += list.count }
        guard total > 0 else { return 0 }

        let frame = WebSocketFrameBytes.message(payload, allocator: self.allocator)
        for list in perLoop where !list.isEmpty {
            let slot = list[0].slot
            if !queued, slot.eventLoop.inEventLoop {
                slot.deliver(frame, to: list)
            } else {
                slot.eventLoop.execute { slot.deliver(frame, to: list) }
            }
        }
        return total
    }

    /// Targets of a multi-channel publish: a connection on several of the channels counts once.
    private func collectDistinct(_ channels: [String]) -> [ContiguousArray<Subscriber>] {
        var perLoop: [ContiguousArray<Subscriber>] = []
        var seen = Set<ConnectionID>()
        for channel in channels {
            self.shard(for: channel).withLockedValue { shard in
                guard let entry = shard.channels[channel] else { return }
                while perLoop.count < entry.byLoop.count { perLoop.append([]) }
                for (index, list) in entry.byLoop.enumerated() {
                    for subscriber in list.items where seen.insert(subscriber.id).inserted {
                        perLoop[index].append(subscriber)
                    }
                }
            }
        }
        return perLoop
    }

    /// Current counts, summed over the shards.
    public var stats: HubStats {
        var stats = HubStats(channels: 0, subscriptions: 0)
        for shard in self.shards {
            shard.withLockedValue { shard in
                stats.channels += shard.channels.count
                stats.subscriptions += shard.subscriptions
            }
        }
        return stats
    }

    /// Number of local subscribers of `channel`.
    public func subscriberCount(of channel: String) -> Int {
        self.shard(for: channel).withLockedValue { $0.channels[channel]?.count ?? 0 }
    }

    private func shard(for channel: String) -> NIOLockedValueBox<Shard> {
        var hasher = Hasher()
        hasher.combine(channel)
        let index = Int(UInt(bitPattern: hasher.finalize()) % UInt(self.shards.count))
        return self.shards[index]
    }
}

/// One shard of the registry: channel → subscribers grouped by loop slot index.
struct Shard {
    var channels: [String: ChannelEntry] = [:]
    var subscriptions = 0

    /// - Returns: whether the channel was created.
    mutating func add(_ subscriber: Subscriber, to channel: String) -> Bool {
        var created = false
        var entry = self.channels.removeValue(forKey: channel) ?? { created = true; return ChannelEntry() }()
        if entry.add(subscriber) { self.subscriptions += 1 }
        self.channels[channel] = entry
        return created
    }

    /// - Returns: whether the channel is now gone.
    mutating func remove(_ subscriber: Subscriber, from channel: String) -> Bool {
        guard var entry = self.channels.removeValue(forKey: channel) else { return false }
        if entry.remove(subscriber) { self.subscriptions -= 1 }
        if entry.count == 0 { return true }
        self.channels[channel] = entry
        return false
    }
}

/// The subscribers of one channel, one list per event loop.
struct ChannelEntry {
    var byLoop: [SubscriberList] = []
    var count = 0

    mutating func add(_ subscriber: Subscriber) -> Bool {
        let index = subscriber.slot.index
        while self.byLoop.count <= index { self.byLoop.append(SubscriberList()) }
        guard self.byLoop[index].add(subscriber) else { return false }
        self.count += 1
        return true
    }

    mutating func remove(_ subscriber: Subscriber) -> Bool {
        let index = subscriber.slot.index
        guard index < self.byLoop.count, self.byLoop[index].remove(subscriber) else { return false }
        self.count -= 1
        return true
    }
}

/// An array of subscribers with O(1) removal (swap with last). Publishers take `items` as a
/// copy-on-write snapshot, so a delivery never holds the lock.
///
/// The id → index map exists only for lists longer than ``indexThreshold``: most channels have a few
/// subscribers, where a linear scan is as fast and a dictionary per channel is memory for nothing.
struct SubscriberList {
    static let indexThreshold = 16
    var items: ContiguousArray<Subscriber> = []
    var positions: [ConnectionID: Int]?

    func contains(_ id: ConnectionID) -> Bool { self.position(of: id) != nil }

    private func position(of id: ConnectionID) -> Int? {
        if let positions = self.positions { return positions[id] }
        return self.items.firstIndex { $0.id == id }
    }

    mutating func add(_ subscriber: Subscriber) -> Bool {
        guard self.position(of: subscriber.id) == nil else { return false }
        self.items.append(subscriber)
        if self.positions != nil {
            self.positions![subscriber.id] = self.items.count - 1
        } else if self.items.count > Self.indexThreshold {
            self.positions = Dictionary(uniqueKeysWithValues: self.items.enumerated().map { ($1.id, $0) })
        }
        return true
    }

    mutating func remove(_ subscriber: Subscriber) -> Bool {
        guard let position = self.position(of: subscriber.id) else { return false }
        self.positions?[subscriber.id] = nil
        let last = self.items.removeLast()
        if position < self.items.count {
            self.items[position] = last
            self.positions?[last.id] = position
        }
        return true
    }
}
