import Foundation
import LHTTPConfig
import LHTTPGateway
import LHTTPProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// The cluster's history (`cluster.history: jetstream`): one JetStream stream every node shares, holding
/// each channel with history on its own subject, `<prefix>.h.<channel>`.
///
/// - A publication is stored once per channel with history (the body is the node's signed envelope), and
///   the stream assigns the offsets. Its RePublish copy (`<prefix>.r.<channel>`, with `Nats-Sequence` and
///   `Nats-Last-Sequence`) is what every node delivers, the publishing one included, so every node delivers
///   a channel in the stream's order and stamps the same `seq` and `prev`.
/// - A publication to several channels with history reaches a node once per channel; a node with
///   subscribers on several of them waits for all their copies and delivers one frame with every position
///   (``JetStreamJoiner``).
/// - Recovery reads the stream (direct get by subject, one message at a time: nats-server 2.9 has no batched
///   form) while the connection's live copies of those channels are held back; then the replay, the
///   `subscribed` answers and what was held back (minus what the replay had) go out in that order.
/// - When JetStream does not answer, a publication still goes out live through the plain cluster path,
///   without positions, and a recovery answers `recovered:false`; nothing waits longer than
///   `cluster.jetstream.timeout_ms`.
public final class JetStreamHistory: SharedHistory {
    public let policies: HistoryPolicies
    public let js: JetStream
    let streamName: String
    /// The stream this node makes sure of (from the configuration).
    public let streamConfig: JetStreamStreamConfig
    private let prefix: String
    private let hub: Hub
    private let filter: NATSInboundFilter
    private let logger: Logger
    /// The node's envelope origin and signer (the broker's).
    private let origin: String
    private let signer: NATSEnvelopeSigner?
    private let sequence = Atomic<UInt64>(0)
    private let state = NIOLockedValueBox(State())
    private let joiner: NIOLoopBoundBox<JetStreamJoiner>

    struct State {
        /// The stream's epoch, once it is known (nil: JetStream has not answered yet).
        var epoch: String?
        /// Connections being recovered → what of the live feed is held back for them.
        var recovering: [ConnectionID: Recovery] = [:]
        var checking = false
        var lastCheck = NIODeadline.uptimeNanoseconds(0)
        var checker: RepeatedTask?
        /// Calls waiting for the stream's first answer (a node just started, or the link just back).
        var epochWaiters: [EventLoopPromise<String?>] = []
    }

    /// A connection's recovery in progress: the channels read from the stream, and the live frames that
    /// arrived meanwhile with their positions.
    struct Recovery {
        var channels: Set<String>
        var held: [(positions: [String: UInt64], frame: ByteBuffer)] = []
    }

    init(
        policies: HistoryPolicies, history: HistoryConfig, cluster: ClusterConfig, idempotencyWindowS: Double, client: NATSClient, hub: Hub,
        filter: NATSInboundFilter, origin: String, signer: NATSEnvelopeSigner?, logger: Logger
    ) {
        self.policies = policies
        self.js = JetStream(client: client, timeout: .milliseconds(Int64(cluster.jetstream.timeoutMs)))
        self.streamName = cluster.jetstream.stream
        self.prefix = cluster.subjectPrefix
        self.hub = hub
        self.filter = filter
        self.logger = logger
        self.origin = origin
        self.signer = signer
        let (perSubject, maxAgeNs) = Self.streamLimits(policies: policies, history: history)
        self.streamConfig = JetStreamStreamConfig(
            name: cluster.jetstream.stream, subjects: ["\(cluster.subjectPrefix).h.>"], maxMsgsPerSubject: perSubject, maxAge: maxAgeNs,
            maxBytes: Int64(history.maxBytes), storage: cluster.jetstream.storage, numReplicas: cluster.jetstream.replicas,
            duplicateWindow: Int64(max(idempotencyWindowS, 1) * 1_000_000_000),
            republish: .init(src: "\(cluster.subjectPrefix).h.>", dest: "\(cluster.subjectPrefix).r.>")
        )
        self.joiner = .makeBoxSendingValue(JetStreamJoiner(), eventLoop: client.eventLoop)
    }

    /// The stream's per-subject count and age: the largest any channel asks for (each channel's own is
    /// applied when it is read).
    static func streamLimits(policies: HistoryPolicies, history: HistoryConfig) -> (perSubject: Int, maxAgeNs: Int64) {
        let all = policies.allPolicies.filter(\.isEnabled)
        let size = all.map(\.size).max() ?? max(history.size, 1)
        // One channel kept forever means no stream-wide age.
        let ttls = all.map(\.ttl)
        let maxAge: Int64 = ttls.contains(where: { $0 == nil }) ? 0 : (ttls.compactMap { $0?.nanoseconds }.max() ?? 0)
        return (size, maxAge)
    }

    public func keeps(_ channel: String) -> Bool { self.policies.policy(for: channel).isEnabled }

    /// The stream's epoch (nil until JetStream answered).
    public var epoch: String? { self.state.withLockedValue { $0.epoch } }

    func historySubject(_ channel: String) -> String { "\(self.prefix).h.\(NATSSubject.encode(channel))" }
    func republishSubject(_ channel: String) -> String { "\(self.prefix).r.\(NATSSubject.encode(channel))" }

    // MARK: The stream

    /// Makes sure the stream exists as configured, now and every `interval` (a stream lost with a
    /// memory-storage nats-server restart is made again, under a new epoch).
    /// Until the stream is first known it is asked for every 100 ms (a node starting with NATS is ready
    /// as soon as JetStream answers).
    func start(interval: TimeAmount = .seconds(2)) {
        let task = self.js.client.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(100)) { [weak self] task in
            guard let self else {
                task.cancel()
                return
            }
            self.checkStream(interval: interval)
        }
        self.state.withLockedValue { $0.checker = task }
    }

    /// Stops checking the stream (the broker is shutting down).
    func stop() {
        self.state.withLockedValue { state in
            state.checker?.cancel()
            state.checker = nil
        }
        let joiner = self.joiner
        self.js.client.eventLoop.execute {
            joiner.value.timer?.cancel()
            joiner.value.timer = nil
        }
    }

    func checkStream(interval: TimeAmount) {
        guard self.js.client.currentStatus.state == .connected else { return }
        let now = NIODeadline.now()
        let alreadyChecking = self.state.withLockedValue { state in
            if state.checking || (state.epoch != nil && now - state.lastCheck < interval) { return true }
            state.checking = true
            state.lastCheck = now
            return false
        }
        guard !alreadyChecking else { return }
        let config = self.streamConfig
        let js = self.js
        Task {
            defer { self.state.withLockedValue { $0.checking = false } }
            do {
                let info = try await js.ensureStream(config)
                let epoch = Self.epoch(name: config.name, created: info.created)
                let (previous, waiters) = self.state.withLockedValue { state in
                    defer {
                        state.epoch = epoch
                        state.epochWaiters = []
                    }
                    return (state.epoch, state.epochWaiters)
                }
                for waiter in waiters { waiter.succeed(epoch) }
                if previous != epoch {
                    self.logger.info("JetStream history stream ready", metadata: ["lhttp.stream": "\(config.name)", "lhttp.epoch": "\(epoch)"])
                }
            } catch {
                self.logger.warning("JetStream history stream unavailable", metadata: ["lhttp.stream": "\(config.name)", "lhttp.error": "\(error)"])
                // Whoever waits for the first answer has it: none.
                let waiters = self.state.withLockedValue { state in
                    defer { state.epochWaiters = [] }
                    return state.epochWaiters
                }
                for waiter in waiters { waiter.succeed(nil) }
            }
        }
    }

    /// A token for the stream's identity: another stream of the same name (deleted and made again) has
    /// another creation time, so another epoch.
    static func epoch(name: String, created: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(name)|\(created)".utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return "js" + String(hash, radix: 36)
    }

    /// The stream's epoch, waiting up to `cluster.jetstream.timeout_ms` for a first answer when it is not
    /// known yet (a node that just started is asked by its clients before JetStream answered it); nil
    /// when JetStream stays silent.
    func epochWithin() -> EventLoopFuture<String?> {
        let eventLoop = self.js.client.eventLoop
        let promise = eventLoop.makePromise(of: String?.self)
        let known = self.state.withLockedValue { state -> String? in
            if state.epoch == nil { state.epochWaiters.append(promise) }
            return state.epoch
        }
        if let known {
            promise.succeed(known)
            return promise.futureResult
        }
        let timer = eventLoop.scheduleTask(in: self.js.timeout) {
            let waiting = self.state.withLockedValue { state -> Bool in
                guard let index = state.epochWaiters.firstIndex(where: { $0.futureResult === promise.futureResult }) else { return false }
                state.epochWaiters.remove(at: index)
                return true
            }
            if waiting { promise.succeed(nil) }
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        return promise.futureResult
    }

    // MARK: Publishing

    public func publish(_ payload: ByteBuffer, to channels: [String], idempotencyKey: String?) throws(GatewayError) -> EventLoopFuture<ChannelHistory.Published> {
        let eventLoop = self.js.client.eventLoop
        var seen = Set<String>()
        let channels = channels.filter { seen.insert($0).inserted }
        let kept = channels.filter(self.keeps)
        let plain = channels.filter { !self.keeps($0) }
        let envelope = self.envelope(payload, channels)
        // Room for the headers of a stored message (its id, JetStream's own on the RePublish copy).
        guard envelope.readableBytes + 512 <= self.js.client.maxPayload else {
            throw .publicationTooLarge(size: envelope.readableBytes, limit: self.js.client.maxPayload)
        }
        if let epoch = self.epoch {
            return self.store(payload, envelope: envelope, channels: channels, kept: kept, plain: plain, idempotencyKey: idempotencyKey, epoch: epoch)
        }
        return self.epochWithin().flatMap { epoch in
            guard let epoch else {
                // JetStream never answered: live only.
                let deliveries = self.publishPlain(payload, envelope: envelope, channels)
                return eventLoop.makeSucceededFuture(ChannelHistory.Published(deliveries: deliveries, positions: channels.map { _ in nil }))
            }
            return self.store(payload, envelope: envelope, channels: channels, kept: kept, plain: plain, idempotencyKey: idempotencyKey, epoch: epoch)
        }
    }

    private func store(
        _ payload: ByteBuffer, envelope: ByteBuffer, channels: [String], kept: [String], plain: [String], idempotencyKey: String?, epoch: String
    ) -> EventLoopFuture<ChannelHistory.Published> {
        let eventLoop = self.js.client.eventLoop
        // The stored copies first, back to back (a node joining them gets them close together).
        let stores = kept.map { channel in
            self.js.publish(envelope, to: self.historySubject(channel), messageID: idempotencyKey.map { "\($0):\(channel)" })
        }
        // The channels without history: live now, minus the connections that get a stored copy.
        let plainDeliveries = plain.isEmpty ? 0 : self.publishPlain(payload, envelope: envelope, plain, excluding: kept)
        return EventLoopFuture.whenAllComplete(stores, on: eventLoop).map { results in
            var positions: [String: HistoryPosition] = [:]
            var replayed = true
            var failures = 0
            for (channel, result) in zip(kept, results) {
                switch result {
                case .success(let ack):
                    positions[channel] = HistoryPosition(epoch: epoch, offset: ack.seq)
                    if ack.duplicate != true { replayed = false }
                case .failure(let error):
                    failures += 1
                    replayed = false
                    self.logger.warning("publication not stored in JetStream", metadata: ["lhttp.channel": "\(channel)", "lhttp.error": "\(error)"])
                }
            }
            var deliveries = plainDeliveries
            if failures == kept.count, !kept.isEmpty {
                // Nothing stored (JetStream unreachable): live through the plain path, every channel.
                deliveries = self.publishPlain(payload, envelope: envelope, kept)
            }
            return ChannelHistory.Published(
                deliveries: deliveries + self.localCount(kept.filter { positions[$0] != nil }),
                positions: channels.map { positions[$0] }, replayed: !kept.isEmpty && replayed
            )
        }
    }

    /// The signed envelope of a publication (its own sequence: the joiner tells publications apart by
    /// origin and sequence).
    private func envelope(_ payload: ByteBuffer, _ channels: [String]) -> ByteBuffer {
        NATSEnvelope.encode(
            origin: self.origin, sequence: self.sequence.add(1, ordering: .relaxed).newValue, channels: channels, message: payload,
            signer: self.signer, timestampMs: self.signer == nil ? 0 : NATSBroker.wallClockMs(), allocator: ByteBufferAllocator()
        )
    }

    /// The plain cluster path for `channels` (the ones without history of a mixed publication, or every
    /// channel when JetStream did not answer): this node's subscribers that are on none of `excluded` (they
    /// get the stored copy), and the other nodes on the channels' plain subjects (which exclude the same way).
    private func publishPlain(_ payload: ByteBuffer, envelope: ByteBuffer, _ channels: [String], excluding excluded: [String] = []) -> Int {
        let local = self.hub.deliver(payload, to: channels, excluding: excluded, except: [])
        do {
            try self.js.client.publish(envelope, to: channels.map { NATSSubject.channel($0, prefix: self.prefix) })
        } catch {
            self.logger.error("publication not sent to NATS", metadata: ["lhttp.error": "\(error)"])
        }
        return local
    }

    /// Connections of this node on `channels` (the stored copies' local deliveries, counted when stored).
    private func localCount(_ channels: [String]) -> Int {
        channels.reduce(0) { $0 + self.hub.subscriberCount(of: $1) }
    }

    // MARK: Live copies (on the client's loop)

    /// A RePublish copy of channel `channel` (on the client's loop).
    func receiveRepublished(_ message: NATSMessage, channel: String) -> NATSRejection? {
        guard let offset = message.headers?["Nats-Sequence"].flatMap(UInt64.init),
              let prev = message.headers?["Nats-Last-Sequence"].flatMap(UInt64.init)
        else { return .malformed }
        switch self.filter.stored(message.payload, on: channel, live: true, nowMs: NATSBroker.wallClockMs) {
        case .rejected(let reason):
            return reason
        case .accepted(let envelope, let parsed):
            guard let epoch = self.epoch else {
                // Stored, but this node has not heard from the stream yet (it just started): delivered without
                // positions rather than lost; its clients' next recovery tells them where they stand.
                self.hub.deliver(envelope.message, to: [channel], excluding: [], except: [])
                return nil
            }
            // The channels this node waits for: those of the publication with history and subscribers here.
            let wanted = envelope.channels.filter { self.keeps($0) && self.hub.subscriberCount(of: $0) > 0 }
            let ready = self.joiner.value.add(
                key: "\(envelope.origin) \(envelope.sequence)", channel: channel, position: .init(offset: offset, prev: prev),
                message: parsed, channels: envelope.channels, wanted: Set(wanted), now: .now()
            )
            self.deliver(ready, epoch: epoch)
            self.scheduleJoinTimeout()
            return nil
        }
    }

    private var joinTimeout: Scheduled<Void>? {
        get { self.joiner.value.timer }
        set { self.joiner.value.timer = newValue }
    }

    /// A publication whose other copies do not come (not stored) is delivered with what came, after
    /// ``JetStreamJoiner/patience``.
    private func scheduleJoinTimeout() {
        guard self.joinTimeout == nil, let due = self.joiner.value.oldestWaiting else { return }
        let eventLoop = self.js.client.eventLoop
        self.joinTimeout = eventLoop.assumeIsolated().scheduleTask(deadline: due + JetStreamJoiner.patience) { [self] in
            self.joinTimeout = nil
            guard let epoch = self.epoch else { return }
            self.deliver(self.joiner.value.flush(olderThan: .now() - JetStreamJoiner.patience), epoch: epoch)
            self.scheduleJoinTimeout()
        }
    }

    /// Stamps and delivers publications whose copies are all here, in the stream's order.
    private func deliver(_ ready: [JetStreamJoiner.Joined], epoch: String) {
        for publication in ready {
            guard let frame = self.stamped(publication.message, channels: publication.channels, positions: publication.positions, epoch: epoch) else {
                continue
            }
            // Every channel this node has a copy of; a connection on several of them gets it once.
            let targets = publication.channels.filter { publication.positions[$0] != nil }
            let except = self.hold(frame, positions: publication.positions.mapValues(\.offset), channels: targets)
            self.hub.deliver(frame, to: targets, excluding: [], except: except)
        }
    }

    /// Keeps `frame` for the connections being recovered on one of `channels`. - Returns: their ids.
    private func hold(_ frame: ByteBuffer, positions: [String: UInt64], channels: [String]) -> Set<ConnectionID> {
        self.state.withLockedValue { state in
            guard !state.recovering.isEmpty else { return [] }
            var held = Set<ConnectionID>()
            for (id, recovery) in state.recovering where channels.contains(where: recovery.channels.contains) {
                state.recovering[id]!.held.append((positions, frame))
                held.insert(id)
            }
            return held
        }
    }

    /// The message with `seq` and `prev` for every channel of its list (`-` where this node has no
    /// position: no history there, or a copy it did not wait for).
    func stamped(_ message: LHTTPMessage, channels: [String], positions: [String: JetStreamJoiner.Position], epoch: String) -> ByteBuffer? {
        var message = message
        let seq = channels.map { positions[$0].map { "\(epoch):\($0.offset)" } ?? "-" }
        let prev = channels.map { positions[$0].map { String($0.prev) } ?? "-" }
        message.headers.remove(name: ChannelHistory.seqHeader)
        message.headers.remove(name: ChannelHistory.prevHeader)
        message.headers.add(name: ChannelHistory.seqHeader, value: seq.joined(separator: " "))
        message.headers.add(name: ChannelHistory.prevHeader, value: prev.joined(separator: " "))
        return try? message.serialized()
    }

    // MARK: Recovery

    public func recover(_ requests: [RecoveryRequest], for subscriber: Subscriber, joining join: () -> GatewayError?) -> GatewayError? {
        let channels = Set(requests.map(\.channel).filter(self.keeps))
        // Held back from before the join: no live copy can slip past the replay.
        self.state.withLockedValue { $0.recovering[subscriber.id] = Recovery(channels: channels) }
        if let refusal = join() {
            _ = self.state.withLockedValue { $0.recovering.removeValue(forKey: subscriber.id) }
            return refusal
        }
        let eventLoop = self.js.client.eventLoop
        let reads = requests.map { request -> EventLoopFuture<ChannelRead> in
            guard self.keeps(request.channel) else { return eventLoop.makeSucceededFuture(ChannelRead(channel: request.channel, read: nil)) }
            return self.readForRecovery(request.channel, since: request.position)
                .map { ChannelRead(channel: request.channel, read: $0?.read, replayed: $0?.replayed ?? []) }
                .recover { error in
                    self.logger.warning("recovery from JetStream failed", metadata: ["lhttp.channel": "\(request.channel)", "lhttp.error": "\(error)"])
                    return ChannelRead(channel: request.channel, read: nil)
                }
        }
        EventLoopFuture.whenAllSucceed(reads, on: eventLoop).whenSuccess { reads in
            // On the client's loop: no live copy is being delivered while the held ones are taken.
            self.finishRecovery(reads, for: subscriber)
        }
        return nil
    }

    struct ChannelRead {
        var channel: String
        var read: HistoryRead?
        var replayed: [Replayed] = []
    }

    private func finishRecovery(_ reads: [ChannelRead], for subscriber: Subscriber) {
        let held = self.state.withLockedValue { $0.recovering.removeValue(forKey: subscriber.id)?.held ?? [] }
        // The replay: each publication once, with the positions of every recovered channel that holds it,
        // where it first appears; a channel's `subscribed` answer after its own replay.
        enum Item {
            case publication(Int)
            case answer(ByteBuffer)
        }
        var publications: [(replayed: Replayed, positions: [String: JetStreamJoiner.Position])] = []
        var index: [String: Int] = [:]
        var items: [Item] = []
        var replayedUpTo: [String: UInt64] = [:]
        for channelRead in reads {
            var missed = 0
            for replayed in channelRead.replayed {
                if let known = index[replayed.key] {
                    publications[known].positions[channelRead.channel] = replayed.position
                } else {
                    index[replayed.key] = publications.count
                    items.append(.publication(publications.count))
                    publications.append((replayed, [channelRead.channel: replayed.position]))
                    missed += 1
                }
            }
            // The read went up to the top it saw.
            if let read = channelRead.read { replayedUpTo[channelRead.channel] = read.top.offset }
            if let answer = ChannelHistory.subscribedAnswer(channel: channelRead.channel, read: channelRead.read, missed: missed) {
                items.append(.answer(answer))
            }
        }
        var frames: [ByteBuffer] = []
        // The stream the reads saw (one stream holds every channel).
        let epoch = reads.lazy.compactMap { $0.read?.top.epoch }.first ?? "-"
        for item in items {
            switch item {
            case .answer(let answer):
                frames.append(answer)
            case .publication(let number):
                let (replayed, positions) = publications[number]
                if let frame = self.stamped(replayed.message, channels: replayed.channels, positions: positions, epoch: epoch) { frames.append(frame) }
            }
        }
        // What came live meanwhile, unless the replay had it (every stored channel at or below what was read).
        for (positions, frame) in held {
            let replayed = positions.allSatisfy { channel, offset in replayedUpTo[channel].map { offset <= $0 } ?? false }
            if !replayed { frames.append(frame) }
        }
        let hub = self.hub
        let channels = reads.map(\.channel)
        hub.send(frames, to: subscriber) { channels.contains { hub.contains(subscriber, in: $0) } }
    }

    /// What a subscribe with `since` gets for one channel: the retained publications after the position,
    /// stamped, and whether nothing is missing.
    func readForRecovery(_ channel: String, since: HistoryPosition?) -> EventLoopFuture<(read: HistoryRead, replayed: [Replayed])?> {
        let eventLoop = self.js.client.eventLoop
        return self.epochWithin().flatMap { epoch in
            guard let epoch else { return eventLoop.makeSucceededFuture(nil) }
            return self.readForRecovery(channel, since: since, epoch: epoch)
        }
    }

    private func readForRecovery(_ channel: String, since: HistoryPosition?, epoch: String) -> EventLoopFuture<(read: HistoryRead, replayed: [Replayed])?> {
        let eventLoop = self.js.client.eventLoop
        let subject = self.historySubject(channel)
        let policy = self.policies.policy(for: channel)
        return self.js.lastMessage(on: subject, stream: self.streamName).flatMap { last in
            let top = HistoryPosition(epoch: epoch, offset: last?.sequence ?? 0)
            let nothing = (read: HistoryRead(top: top, entries: [], recovered: true), replayed: [Replayed]())
            guard let since else { return eventLoop.makeSucceededFuture(nothing) }
            let sameStream = since.epoch == epoch && since.offset <= top.offset
            if sameStream, since.offset == top.offset { return eventLoop.makeSucceededFuture(nothing) }
            let from = sameStream ? since.offset : 0
            // The replay is stamped when it goes out (a publication two channels hold, once with both).
            return self.readRange(channel, subject: subject, from: from, upTo: top.offset, policy: policy).map { replayed, startRetained in
                (HistoryRead(top: top, entries: [], recovered: sameStream && startRetained), replayed)
            }
        }
    }

    /// The channel's retained publications after `from` up to `top`, at most the channel's own size (the
    /// newest), none older than its own TTL; and whether `from` itself is still retained (then nothing
    /// after it is missing: the stream drops a subject's oldest first).
    private func readRange(
        _ channel: String, subject: String, from: UInt64, upTo top: UInt64, policy: HistoryPolicy
    ) -> EventLoopFuture<(replayed: [Replayed], startRetained: Bool)> {
        let oldest = policy.ttl.map { Date().addingTimeInterval(-Double($0.nanoseconds) / 1e9) }
        let start = RangeRead(startRetained: from == 0, next: from == 0 ? 1 : from)
        return self.step(start, subject: subject, from: from, top: top, size: policy.size, oldest: oldest).map { read in
            var replayed: [Replayed] = []
            var dropped = read.dropped
            var prev = from
            for message in read.stored {
                switch self.filter.stored(message.payload, on: channel, live: false, nowMs: NATSBroker.wallClockMs) {
                case .accepted(let envelope, let parsed):
                    let position = JetStreamJoiner.Position(offset: message.sequence, prev: prev)
                    replayed.append(Replayed(key: "\(envelope.origin) \(envelope.sequence)", message: parsed, channels: envelope.channels, position: position))
                case .rejected:
                    dropped = true  // not ours to send (a stranger's bytes on our subject)
                }
                prev = message.sequence
            }
            return (replayed, read.startRetained && !dropped)
        }
    }

    /// A publication read back for a recovery, before it is stamped (a publication two recovered channels
    /// hold goes out once, with both positions).
    struct Replayed {
        var key: String
        var message: LHTTPMessage
        var channels: [String]
        var position: JetStreamJoiner.Position
    }

    /// A read of one channel's range in progress.
    struct RangeRead: Sendable {
        var stored: [JetStreamStoredMessage] = []
        var startRetained: Bool
        var dropped = false
        var next: UInt64
    }

    /// Reads the next message of the range, then the one after it, until the top (one direct get each).
    private func step(_ read: RangeRead, subject: String, from: UInt64, top: UInt64, size: Int, oldest: Date?) -> EventLoopFuture<RangeRead> {
        self.js.message(on: subject, from: read.next, stream: self.streamName).flatMap { message in
            var read = read
            guard let message, message.sequence <= top else { return self.js.client.eventLoop.makeSucceededFuture(read) }
            if message.sequence == from, from > 0 {
                read.startRetained = true
            } else if let oldest, let stamp = message.headers["Nats-Time-Stamp"].flatMap(Self.parseTimestamp), stamp < oldest {
                read.dropped = true  // expired for this channel (the stream keeps the longest TTL)
            } else {
                read.stored.append(message)
                if read.stored.count > size {
                    read.stored.removeFirst()
                    read.dropped = true
                }
            }
            read.next = message.sequence + 1
            return self.step(read, subject: subject, from: from, top: top, size: size, oldest: oldest)
        }
    }

    public func read(_ channel: String, since: HistoryPosition?, limit: Int) -> EventLoopFuture<HistoryRead?> {
        let eventLoop = self.js.client.eventLoop
        guard self.keeps(channel) else { return eventLoop.makeSucceededFuture(nil) }
        return self.epochWithin().flatMap { epoch in
            guard let epoch else { return eventLoop.makeFailedFuture(NATSError.notConnected) }
            return self.read(channel, since: since, limit: limit, epoch: epoch)
        }
    }

    private func read(_ channel: String, since: HistoryPosition?, limit: Int, epoch: String) -> EventLoopFuture<HistoryRead?> {
        let subject = self.historySubject(channel)
        // Without `since`, the newest `limit`: the read keeps only that many.
        var policy = self.policies.policy(for: channel)
        if since == nil { policy.size = min(policy.size, limit) }
        let chosen = policy
        return self.js.lastMessage(on: subject, stream: self.streamName).flatMap { last in
            let policy = chosen
            let top = HistoryPosition(epoch: epoch, offset: last?.sequence ?? 0)
            let sameStream = since.map { $0.epoch == epoch && $0.offset <= top.offset } ?? false
            let from = sameStream ? since!.offset : 0
            return self.readRange(channel, subject: subject, from: from, upTo: top.offset, policy: policy).map { replayed, startRetained in
                let entries = replayed.prefix(limit).compactMap { replayed in
                    self.stamped(replayed.message, channels: replayed.channels, positions: [channel: replayed.position], epoch: epoch)
                        .map { HistoryEntry(offset: replayed.position.offset, prev: replayed.position.prev, payload: $0) }
                }
                return HistoryRead(top: top, entries: entries, recovered: since == nil || (sameStream && startRetained))
            }
        }
    }

    /// `2026-12-04T01:33:18.497595076Z` (JetStream's `Nats-Time-Stamp`).
    static func parseTimestamp(_ text: String) -> Date? {
        let parts = text.split(separator: ".", maxSplits: 1)
        let formatter = ISO8601DateFormatter()
        guard parts.count == 2 else { return formatter.date(from: text) }
        guard let whole = formatter.date(from: String(parts[0]) + "Z") else { return nil }
        let digits = parts[1].prefix { $0.isNumber }
        let fraction = Double("0." + digits) ?? 0
        return whole.addingTimeInterval(fraction)
    }
}
