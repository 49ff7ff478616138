import LHTTPProtocol
import NIOCore

/// History as the gateway uses it: which channels keep it, the store, the clock, and the wire format of
/// positions (`seq`, `prev`) and of the `subscribed` answer.
///
/// A publication to channels with history gets `seq:<epoch>:<offset> ...` and `prev:<offset> ...`, one
/// per channel of its `publish:` list in that order (`-` for a channel without history); the server owns
/// those two headers on such a publication (a publisher's own are replaced). A publication to channels
/// without history is untouched (an app's own `seq` header there is the app's).
public final class ChannelHistory: Sendable {
    /// The header a delivery's positions are in.
    public static let seqHeader = "seq"
    /// The header with each channel's previous offset.
    public static let prevHeader = "prev"
    /// The subscribe header asking for recovery.
    public static let sinceHeader = "since"
    /// The command of the answer to a subscribe with `since:`.
    public static let subscribedCommand = "subscribed"

    public let store: MemoryHistory
    public let policies: HistoryPolicies
    private let parser: LHTTPParser
    private let now: @Sendable () -> NIODeadline

    /// - Parameter now: the clock of TTLs (tests pass their own).
    public init(store: MemoryHistory, policies: HistoryPolicies, limits: LHTTPLimits = .default, now: @escaping @Sendable () -> NIODeadline = { .now() }) {
        self.store = store
        self.policies = policies
        self.parser = LHTTPParser(limits: limits)
        self.now = now
    }

    /// What a publication with history did.
    public struct Published: Sendable, Equatable {
        /// Local deliveries.
        public var deliveries: Int
        /// Each channel's new position, in the publication's channel order (nil: no history there).
        public var positions: [HistoryPosition?]
        /// A repeat of an `Idempotency-Key` the cluster's store had seen: nothing new was stored or sent.
        public var replayed = false

        public init(deliveries: Int, positions: [HistoryPosition?], replayed: Bool = false) {
            self.deliveries = deliveries
            self.positions = positions
            self.replayed = replayed
        }
    }

    /// Publishes `payload` to `channels` when one of them keeps history: stamps the positions, hands it to
    /// `deliver` in offset order, keeps it. - Returns: nil when no channel keeps history (the caller
    /// publishes as usual).
    /// - Parameter only: keep it in these channels only (nil: every channel of `channels` with history); the
    ///   others get `-` (a cluster node with `cluster.history: memory` keeps another node's publication in
    ///   the channels it has subscribers on).
    public func publish(
        _ payload: ByteBuffer,
        to channels: [String],
        only: Set<String>? = nil,
        deliver: (ByteBuffer) throws(GatewayError) -> Int
    ) throws(GatewayError) -> Published? {
        let policies = channels.map { only?.contains($0) == false ? HistoryPolicy.none : self.policies.policy(for: $0) }
        guard policies.contains(where: \.isEnabled) else { return nil }
        // Parsed lists are free of repeats; one given in code might not be, and a channel must get one offset.
        guard Set(channels).count == channels.count else {
            var seen = Set<String>()
            return try self.publish(payload, to: channels.filter { seen.insert($0).inserted }, only: only, deliver: deliver)
        }
        var message: LHTTPMessage
        do {
            message = try self.parser.parse(payload)
        } catch {
            throw .protocolError(error)
        }
        let kept = zip(channels, policies).filter { $0.1.isEnabled }.map { (channel: $0.0, policy: $0.1) }
        let (deliveries, positions) = try self.store.append(to: kept, now: self.now()) { (positions) throws(GatewayError) -> (payload: ByteBuffer, delivered: Int) in
            var next = positions.makeIterator()
            var seq: [String] = []
            var prev: [String] = []
            for policy in policies {
                if policy.isEnabled, let position = next.next() {
                    seq.append(position.position.description)
                    prev.append(String(position.prev))
                } else {
                    seq.append("-")
                    prev.append("-")
                }
            }
            message.headers.remove(name: Self.seqHeader)
            message.headers.remove(name: Self.prevHeader)
            message.headers.add(name: Self.seqHeader, value: seq.joined(separator: " "))
            message.headers.add(name: Self.prevHeader, value: prev.joined(separator: " "))
            let stamped: ByteBuffer
            do throws(LHTTPProtocolError) {
                stamped = try message.serialized()
            } catch {
                throw .protocolError(error)
            }
            return (stamped, try deliver(stamped))
        }
        var next = positions.makeIterator()
        return Published(deliveries: deliveries, positions: policies.map { $0.isEnabled ? next.next()?.position : nil })
    }

    /// Whether `channel` keeps history.
    public func keeps(_ channel: String) -> Bool { self.policies.policy(for: channel).isEnabled }

    /// Forgets `channels` (nil: all): their next publication starts a new epoch (``MemoryHistory/reset(_:)``).
    public func reset(_ channels: [String]?) { self.store.reset(channels) }

    /// Joins channels with recovery: `join` runs atomically with the reads (see
    /// ``MemoryHistory/recover(_:now:joining:)``), then the replayed publications (a publication two channels
    /// hold, once) and one `subscribed` answer per channel, in `since` order, are returned to be sent to the
    /// connection before anything published later.
    func recover(
        _ since: [(channel: String, position: HistoryPosition?)],
        joining join: () -> GatewayError?
    ) -> (refusal: GatewayError?, frames: [ByteBuffer]) {
        let requests = since.map { (channel: $0.channel, since: $0.position, policy: self.policies.policy(for: $0.channel)) }
        let withHistory = requests.filter { $0.policy.isEnabled }
        let (refusal, reads) = self.store.recover(withHistory, now: self.now(), joining: join)
        guard refusal == nil else { return (refusal, []) }
        // The requests' channels are distinct (fresh subscriptions).
        let readsByChannel = Dictionary(uniqueKeysWithValues: zip(withHistory.map(\.channel), reads))
        // A publication two recovered channels hold goes out once; with one channel there is nothing to compare.
        var sent: Set<ByteBuffer>? = withHistory.count > 1 ? [] : nil
        var frames: [ByteBuffer] = []
        for request in requests {
            let read = readsByChannel[request.channel]
            var missed = 0
            for entry in read?.entries ?? [] where sent?.insert(entry.payload).inserted ?? true {
                frames.append(entry.payload)
                missed += 1
            }
            if let answer = Self.subscribedAnswer(channel: request.channel, read: read, missed: missed) { frames.append(answer) }
        }
        return (nil, frames)
    }

    /// `LHTTP/1.0 subscribed`: `channel`, then `stream`, `recovered` and `missed` from `read`; without a read
    /// (the channel keeps no history) `recovered:false`, `missed:0` and no `stream`, so the client learns it.
    public static func subscribedAnswer(channel: String, read: HistoryRead?, missed: Int) -> ByteBuffer? {
        var answer: LHTTPHeaders = ["channel": channel]
        if let read { answer.add(name: "stream", value: read.top.description) }
        answer.add(name: "recovered", value: read?.recovered == true ? "true" : "false")
        answer.add(name: "missed", value: String(missed))
        return try? LHTTPMessage(command: Self.subscribedCommand, headers: answer).serialized()
    }

    /// A channel's retained publications for `GET /history`: the first `limit` after `since`, or without it
    /// the newest `limit`, oldest first. - Returns: nil when the channel keeps no history.
    public func read(_ channel: String, since: HistoryPosition?, limit: Int) -> HistoryRead? {
        let policy = self.policies.policy(for: channel)
        guard policy.isEnabled else { return nil }
        if let since { return self.store.read(channel, after: since, limit: limit, policy: policy, now: self.now()) }
        return self.store.newest(channel, limit: limit, policy: policy, now: self.now())
    }

    /// Drops expired messages and idle records (the application's timer).
    public func sweep() { self.store.sweep(now: self.now()) }
}
