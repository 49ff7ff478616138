import LHTTPProtocol
import NIOCore

/// Puts a publication to several channels with history back together on one node: the stream holds one
/// copy per channel, and a connection on several of them must get the publication once, with every
/// channel's position. Lives on the NATS client's loop; fed the RePublish copies in the stream's order.
///
/// A publication waits until the copies of every channel this node has subscribers on are here, and
/// everything after it waits behind it (a channel's publications stay in the stream's order). A copy that
/// never comes (its store failed) stops the wait after ``patience``; at most ``maxWaiting`` wait at once.
struct JetStreamJoiner {
    /// A publication's place in one channel.
    struct Position: Equatable, Sendable {
        var offset: UInt64
        var prev: UInt64
    }

    /// A publication ready to deliver: the channels it has copies of here, with their positions.
    struct Joined {
        var message: LHTTPMessage
        /// Its whole `publish:` list (the order of `seq` and `prev`).
        var channels: [String]
        var positions: [String: Position]
    }

    private struct Waiting {
        var joined: Joined
        var wanted: Set<String>
        var since: NIODeadline
        var isComplete: Bool { self.wanted.allSatisfy { self.joined.positions[$0] != nil } }
    }

    static let patience = TimeAmount.milliseconds(500)
    static let maxWaiting = 10_000

    private var order: [String] = []
    private var head = 0
    private var waiting: [String: Waiting] = [:]
    /// The pending patience check (kept by the owner).
    var timer: Scheduled<Void>?

    /// A copy arrived. - Parameter wanted: the channels of the publication this node has subscribers on
    /// with history. - Returns: what is ready, in order.
    mutating func add(
        key: String, channel: String, position: Position, message: LHTTPMessage, channels: [String], wanted: Set<String>, now: NIODeadline
    ) -> [Joined] {
        if var entry = self.waiting[key] {
            entry.joined.positions[channel] = position
            self.waiting[key] = entry
        } else {
            let entry = Waiting(joined: Joined(message: message, channels: channels, positions: [channel: position]), wanted: wanted, since: now)
            // The common case: nothing waits and this one needs no other copy.
            if self.head == self.order.count, entry.isComplete { return [entry.joined] }
            self.waiting[key] = entry
            self.order.append(key)
        }
        var ready: [Joined] = []
        if self.order.count - self.head > Self.maxWaiting, let first = self.popHead() { ready.append(first) }
        ready += self.popComplete()
        return ready
    }

    /// Delivers, incomplete, what has waited since before `cutoff`, and what is then complete behind it.
    mutating func flush(olderThan cutoff: NIODeadline) -> [Joined] {
        var ready: [Joined] = []
        while self.head < self.order.count, let entry = self.waiting[self.order[self.head]], entry.since < cutoff || entry.isComplete {
            if let first = self.popHead() { ready.append(first) }
        }
        return ready
    }

    /// When the oldest waiting publication arrived (nil: none waits).
    var oldestWaiting: NIODeadline? {
        guard self.head < self.order.count else { return nil }
        return self.waiting[self.order[self.head]]?.since
    }

    private mutating func popComplete() -> [Joined] {
        var ready: [Joined] = []
        while self.head < self.order.count, self.waiting[self.order[self.head]]?.isComplete ?? true {
            if let first = self.popHead() { ready.append(first) }
        }
        return ready
    }

    private mutating func popHead() -> Joined? {
        guard self.head < self.order.count else { return nil }
        let key = self.order[self.head]
        self.head += 1
        if self.head > 1024, self.head * 2 > self.order.count {
            self.order.removeFirst(self.head)
            self.head = 0
        }
        return self.waiting.removeValue(forKey: key)?.joined
    }
}
