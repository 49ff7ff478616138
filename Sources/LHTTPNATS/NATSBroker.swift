import CoreMetrics
import Foundation
import LHTTPConfig
import LHTTPGateway
import LHTTPProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// The cluster broker: channels shared by every lhttpd node connected to the same NATS.
///
/// - Local subscribers get a local publication at once, from the hub, without a NATS round trip.
/// - The node holds one NATS subscription per channel that has local subscribers (not per
///   connection), and drops it when the last local subscriber leaves.
/// - A publication goes to NATS once per channel subject in a ``NATSEnvelope`` (signed with
///   `cluster.secret` when set), unless it would send more than `cluster.max_fanout_bytes` in all.
/// - A copy received on channel `c`'s subject goes to the subscribers of `c` only, once checked by
///   ``NATSInboundFilter``; a connection also on a channel listed before `c` gets that channel's copy
///   instead, so it gets the publication once. Its own publications are ignored (the client also asks
///   the server not to echo them).
/// - Channel names become subjects through ``NATSSubject``: no name can reach another channel's
///   subject or a wildcard.
public final class NATSBroker: Broker {
    public let hub: Hub
    public let client: NATSClient
    /// This node's id (configured, or random at start).
    public let nodeID: String
    /// `nodeID#nonce`: tells this process's publications apart even from a node with the same id.
    public let origin: String
    /// Presence shared with the other nodes (``share(_:)``), and its subscription.
    private let presence = NIOLockedValueBox<(presence: Presence, link: NATSPresenceLink)?>(nil)
    private let maxEnvelopeAgeMs: Int64
    private let prefix: String
    private let signer: NATSEnvelopeSigner?
    private let filter: NATSInboundFilter
    /// `cluster.max_fanout_bytes` (0: no cap).
    private let maxFanoutBytes: Int
    private let sequence = Atomic<UInt64>(0)
    private let interestCount = Atomic<Int>(0)
    private let rejections = NIOLockedValueBox(NATSRejectionLog())
    private let rejectionCounters: [NATSRejection: Counter]
    private let allocator = ByteBufferAllocator()
    private let state: NIOLoopBoundBox<LoopState>
    private let logger: Logger
    private let metrics: GatewayMetrics?
    private let gauges: NATSGauges?
    /// The cluster's history (`cluster.history: jetstream` and some channel with history); nil: none.
    public let history: JetStreamHistory?
    /// `cluster.history: memory`: this node's store, keeping the other nodes' publications with its own
    /// positions while it hears the channel (see ``reconcile(_:)`` and the link's changes).
    private let memoryHistory: ChannelHistory?

    /// On the client's event loop.
    private struct LoopState {
        /// Channels with local subscribers → their NATS subscription.
        var interest: [String: UInt64] = [:]
        /// The other way round: the channel a message's subscription is for.
        var channels: [UInt64: String] = [:]
        /// Channels with history and local subscribers → their RePublish subscription (`<prefix>.r.<channel>`).
        var republished: [String: UInt64] = [:]
        var republishedChannels: [UInt64: String] = [:]
        /// `cluster.history: memory`: publications already kept and delivered here from one of their copies
        /// (origin and sequence), the most recent ones.
        var handled = Set<String>()
        var handledOrder = CircularBuffer<String>()
    }

    /// - Throws: when `configuration.nats` does not parse.
    /// - Parameters:
    ///   - limits: what a message from another node must fit, as one from a client of this node.
    ///   - metrics: counts deliveries of publications from other nodes (source `cluster`) and rejected
    ///     messages; the link's gauges go to the same factory.
    ///   - history: which channels keep history (kept in JetStream with `cluster.history: jetstream`).
    public convenience init(
        hub: Hub, configuration: ClusterConfig, limits: LHTTPLimits = .default, eventLoop: any EventLoop, metrics: GatewayMetrics? = nil,
        history: HistorySettings? = nil, logger: Logger
    ) throws(ConfigError) {
        self.init(
            hub: hub, configuration: configuration, servers: try configuration.servers(), limits: limits, eventLoop: eventLoop, metrics: metrics,
            history: history, logger: logger
        )
    }

    /// What the cluster's history needs from the configuration.
    public struct HistorySettings: Sendable {
        public var policies: HistoryPolicies
        public var history: HistoryConfig
        /// `publish.idempotency_window_s`: JetStream's duplicate window.
        public var idempotencyWindowS: Double
        /// `cluster.history: memory`: this node's own store, which also keeps what the other nodes publish.
        public var memory: ChannelHistory?
        public init(policies: HistoryPolicies, history: HistoryConfig, idempotencyWindowS: Double, memory: ChannelHistory? = nil) {
            self.policies = policies
            self.history = history
            self.idempotencyWindowS = idempotencyWindowS
            self.memory = memory
        }
    }

    /// - Parameter servers: `configuration.nats`, parsed.
    public init(
        hub: Hub, configuration: ClusterConfig, servers: [NATSServerURL], limits: LHTTPLimits = .default, eventLoop: any EventLoop,
        metrics: GatewayMetrics? = nil, history: HistorySettings? = nil, logger: Logger
    ) {
        self.metrics = metrics
        self.gauges = metrics.map { NATSGauges(factory: $0.labelled.factory) }
        var counters: [NATSRejection: Counter] = [:]
        if let factory = metrics?.labelled.factory {
            for reason in NATSRejection.allCases {
                counters[reason] = Counter(label: "lhttp_cluster_rejected_total", dimensions: [("reason", reason.rawValue)], factory: factory)
            }
        }
        self.rejectionCounters = counters
        let nonce = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        self.nodeID = configuration.nodeID.isEmpty ? "node-\(nonce)" : configuration.nodeID
        self.origin = "\(self.nodeID)#\(nonce)"
        self.hub = hub
        self.prefix = configuration.subjectPrefix
        self.signer = NATSEnvelopeSigner(secret: configuration.secret)
        self.maxFanoutBytes = configuration.maxFanoutBytes
        self.maxEnvelopeAgeMs = Int64(configuration.maxEnvelopeAgeMs)
        var filter = NATSInboundFilter(
            origin: self.origin, signer: self.signer, maxAgeMs: Int64(configuration.maxEnvelopeAgeMs), parser: LHTTPParser(limits: limits)
        )
        let withHistory = history.flatMap { configuration.history == .jetstream && $0.policies.isAnyEnabled ? $0 : nil }
        let memory = configuration.history == .memory ? history?.memory : nil
        if let policies = withHistory?.policies ?? (memory == nil ? nil : history?.policies) {
            filter.keepsHistory = { policies.policy(for: $0).isEnabled }
        }
        self.filter = filter
        self.memoryHistory = memory
        var logger = logger
        logger[metadataKey: "lhttp.node"] = "\(self.nodeID)"
        self.logger = logger
        self.client = NATSClient(
            configuration: .init(
                servers: servers,
                name: "lhttpd \(self.nodeID)",
                maxPendingBytes: configuration.maxPendingBytes,
                reconnectMinMs: configuration.reconnectMinMs,
                reconnectMaxMs: configuration.reconnectMaxMs,
                connectTimeoutMs: configuration.connectTimeoutMs,
                pingIntervalMs: configuration.pingIntervalMs,
                echo: false
            ),
            eventLoop: eventLoop,
            logger: logger
        )
        self.state = .makeBoxSendingValue(LoopState(), eventLoop: eventLoop)
        let client = self.client
        let origin = self.origin
        let signer = self.signer
        self.history = withHistory.map { settings in
            JetStreamHistory(
                policies: settings.policies, history: settings.history, cluster: configuration, idempotencyWindowS: settings.idempotencyWindowS,
                client: client, hub: hub, filter: filter, origin: origin, signer: signer, logger: logger
            )
        }
    }

    public var sharedHistory: (any SharedHistory)? { self.history }

    /// `<prefix>.p.all`: two tokens after the prefix, which no channel's subject (one token) can be.
    static func presenceSubject(prefix: String) -> String { "\(prefix).p.all" }

    /// Shares `presence` with the other nodes on ``presenceSubject(prefix:)`` (call before ``start()``).
    public func share(_ presence: Presence) {
        let link = NATSPresenceLink(
            client: self.client, subject: Self.presenceSubject(prefix: self.prefix), signer: self.signer, maxAgeMs: self.maxEnvelopeAgeMs, logger: self.logger
        )
        self.presence.withLockedValue { $0 = (presence, link) }
    }

    /// Starts connecting to NATS (in the background; local delivery works meanwhile).
    public func start() {
        let presence = self.presence.withLockedValue { $0 }
        var sid: UInt64?
        if let presence {
            do {
                sid = try self.client.subscribe(presence.link.subject)
            } catch {
                self.logger.error("cannot subscribe on NATS", metadata: ["lhttp.subject": "\(presence.link.subject)", "lhttp.error": "\(error)"])
            }
        }
        let presenceSID = sid
        self.client.start(
            onMessage: { [self] message in
                if let presence, message.sid == presenceSID {
                    switch presence.link.decode(message.payload) {
                    case .update(let update): presence.presence.receive(update)
                    case .rejected(let reason): self.rejected(reason, on: "(presence)")
                    }
                    return
                }
                self.receive(message)
            },
            onLinkChange: { [self] up in
                // While the link is down (and until it is back) this node hears no one: its own history of
                // every channel starts anew, so no position spans what it may have missed.
                self.memoryHistory?.reset(nil)
                // Back: what went either way meanwhile may be lost; every node resends its members.
                if up { presence?.presence.linkUp() }
            }
        )
        if let presence { presence.presence.attach(presence.link) }
        self.history?.start()
    }

    public func shutdown() async {
        self.presence.withLockedValue { $0 }?.presence.detach()
        self.history?.stop()
        await self.client.shutdown()
    }

    /// Delivers locally and sends one envelope per channel subject. Refused before anything is delivered
    /// when the envelope exceeds the server's `max_payload`, or the copies together `cluster.max_fanout_bytes`.
    public func publish(_ payload: ByteBuffer, to channels: [String]) throws(GatewayError) -> Int {
        try self.publish(payload, to: channels, queued: false)
    }

    private func publish(_ payload: ByteBuffer, to channels: [String], queued: Bool) throws(GatewayError) -> Int {
        guard !channels.isEmpty else { return 0 }
        let sequence = self.sequence.add(1, ordering: .relaxed).newValue
        let envelope = NATSEnvelope.encode(
            origin: self.origin, sequence: sequence, channels: channels, message: payload,
            signer: self.signer, timestampMs: self.signer == nil ? 0 : Self.wallClockMs(), allocator: self.allocator
        )
        let maxPayload = self.client.maxPayload
        guard envelope.readableBytes <= maxPayload else {
            throw .publicationTooLarge(size: envelope.readableBytes, limit: maxPayload)
        }
        // Each channel subject carries a copy (delivery is confined by subject): the cap is on the sum.
        if self.maxFanoutBytes > 0, envelope.readableBytes * channels.count > self.maxFanoutBytes {
            throw .fanoutTooLarge(size: envelope.readableBytes, channels: channels.count, limit: self.maxFanoutBytes)
        }
        let local = self.hub.deliver(payload, to: channels, queued: queued)
        do {
            try self.client.publish(envelope, to: channels.map { NATSSubject.channel($0, prefix: self.prefix) })
        } catch {
            // Sizes and subjects were checked above and by the config; this is a bug, not bad input.
            self.logger.error("publication not sent to NATS", metadata: ["lhttp.error": "\(error)"])
        }
        return local
    }

    /// A node keeping its own history (`cluster.history: memory`): delivered locally through every loop's
    /// queue, in the history lock's order, and sent to the other nodes (which keep it with their positions).
    public func publishInOrder(_ payload: ByteBuffer, to channels: [String]) throws(GatewayError) -> Int {
        try self.publish(payload, to: channels, queued: true)
    }

    public func interest(added: [String], removed: [String]) {
        let channels = added + removed
        self.client.eventLoop.execute { [self] in
            for channel in channels { self.reconcile(channel) }
        }
    }

    /// `"cluster": {state, server, node_id, channels, reconnects, dropped, pending_bytes, rejected, history}`
    /// in `/healthz`; the node is "degraded" while the link is down, or history's stream is unavailable.
    public var health: HealthReport? {
        let status = self.client.currentStatus
        // off: no channel keeps history; ready: the stream answered; unavailable: JetStream has not (yet).
        let history = self.history.map { $0.epoch == nil ? "unavailable" : "ready" } ?? "off"
        return HealthReport(
            name: "cluster",
            isDegraded: status.state != .connected || history == "unavailable",
            fields: [
                .init("state", .string(status.state.rawValue)),
                .init("server", .string(status.server ?? "")),
                .init("node_id", .string(self.nodeID)),
                .init("channels", .int(self.interestCount.load(ordering: .relaxed))),
                .init("reconnects", .int(max(0, status.connections - 1))),
                .init("dropped", .int(status.droppedMessages)),
                .init("pending_bytes", .int(status.pendingBytes)),
                .init("rejected", .int(self.rejections.withLockedValue { $0.counts.values.reduce(0, +) })),
                .init("history", .string(history)),
            ]
        )
    }

    /// Messages from NATS dropped for `reason` since start.
    public func rejections(_ reason: NATSRejection) -> Int {
        self.rejections.withLockedValue { $0.counts[reason] ?? 0 }
    }

    public func recordGauges() {
        self.gauges?.record(self.client.currentStatus, channels: self.interestCount.load(ordering: .relaxed))
    }

    /// Makes the NATS subscription of `channel` match the hub: one while it has local subscribers.
    /// Interest deltas come from every loop in any order; the hub's count is the truth.
    private func reconcile(_ channel: String) {
        let wanted = self.hub.subscriberCount(of: channel) > 0
        let sid = self.state.value.interest[channel]
        if wanted, sid == nil {
            // `cluster.history: memory`: the node hears the channel from now on; what it kept from before
            // (while it did not) is no base for a position.
            if let memory = self.memoryHistory, memory.keeps(channel) { memory.reset([channel]) }
            do {
                let sid = try self.client.subscribe(NATSSubject.channel(channel, prefix: self.prefix))
                self.state.value.interest[channel] = sid
                self.state.value.channels[sid] = channel
            } catch {
                self.logger.error("cannot subscribe on NATS", metadata: ["lhttp.channel": "\(channel)", "lhttp.error": "\(error)"])
            }
        } else if !wanted, let sid {
            self.client.unsubscribe(sid)
            self.state.value.interest[channel] = nil
            self.state.value.channels[sid] = nil
            if let memory = self.memoryHistory, memory.keeps(channel) { memory.reset([channel]) }
        }
        if let history = self.history, history.keeps(channel) {
            let republished = self.state.value.republished[channel]
            if wanted, republished == nil {
                do {
                    let sid = try self.client.subscribe(history.republishSubject(channel))
                    self.state.value.republished[channel] = sid
                    self.state.value.republishedChannels[sid] = channel
                } catch {
                    self.logger.error("cannot subscribe on NATS", metadata: ["lhttp.channel": "\(channel)", "lhttp.error": "\(error)"])
                }
            } else if !wanted, let republished {
                self.client.unsubscribe(republished)
                self.state.value.republished[channel] = nil
                self.state.value.republishedChannels[republished] = nil
            }
        }
        self.interestCount.store(self.state.value.interest.count, ordering: .relaxed)
    }

    /// A message of one of our subscriptions (on the client's loop).
    private func receive(_ message: NATSMessage) {
        if let history = self.history, let channel = self.state.value.republishedChannels[message.sid] {
            if let reason = history.receiveRepublished(message, channel: channel) { self.rejected(reason, on: channel) }
            return
        }
        // A subscription just ended: what was on its way is not for us any more.
        guard let channel = self.state.value.channels[message.sid] else { return }
        if let memory = self.memoryHistory, memory.keeps(channel) {
            self.receive(message.payload, on: channel, keeping: memory)
            return
        }
        switch self.filter.verdict(for: message.payload, on: channel, nowMs: Self.wallClockMs) {
        case .deliver(let message, let excluded):
            let deliveries = self.hub.deliver(message, to: channel, excluding: excluded)
            // One publication, however many of its copies arrive: counted with the first this node
            // subscribes to.
            if excluded.isEmpty || excluded.allSatisfy({ self.state.value.interest[$0] == nil }) {
                self.metrics?.published(from: .cluster, deliveries: deliveries)
            } else if deliveries > 0 {
                self.metrics?.deliveries.increment(by: deliveries)
            }
        case .ownEcho:
            return
        case .reject(let reason):
            self.rejected(reason, on: channel)
        }
    }

    /// `cluster.history: memory`: another node's copy on a channel with history. The first copy of a
    /// publication to reach this node on such a channel is kept in every channel with history this node
    /// has subscribers on, with this node's positions, and delivered once to all of them (one frame); its
    /// later copies on channels with history are dropped. (A copy on a channel without history takes the
    /// plain path, whose exclusion order leaves out the connections on a channel with history.)
    private func receive(_ payload: ByteBuffer, on channel: String, keeping memory: ChannelHistory) {
        switch self.filter.stored(payload, on: channel, live: true, nowMs: Self.wallClockMs) {
        case .rejected(let reason):
            self.rejected(reason, on: channel)
        case .accepted(let envelope, _) where envelope.origin == self.origin:
            return
        case .accepted(let envelope, _):
            let channels = envelope.channels
            let hub = self.hub
            let key = "\(envelope.origin) \(envelope.sequence)"
            guard self.state.value.handled.insert(key).inserted else { return }
            self.state.value.handledOrder.append(key)
            if self.state.value.handledOrder.count > Self.handledKept, let oldest = self.state.value.handledOrder.popFirst() {
                self.state.value.handled.remove(oldest)
            }
            var targets = channels.filter { memory.keeps($0) && hub.subscriberCount(of: $0) > 0 }
            if !targets.contains(channel) { targets.append(channel) }
            let only = Set(targets)
            do {
                let published = try memory.publish(envelope.message, to: channels, only: only) { (stamped) throws(GatewayError) -> Int in
                    hub.deliver(stamped, to: targets, excluding: [], except: [])
                }
                self.metrics?.published(from: .cluster, deliveries: published?.deliveries ?? 0)
            } catch {
                self.rejected(.invalidMessage, on: channel)
            }
        }
    }

    /// How many recent publications `cluster.history: memory` remembers having kept (their later copies are
    /// dropped): far more than can be in flight between two copies of one publication.
    static let handledKept = 4096

    /// Counts and (rate-limited) logs a message from NATS the cluster does not trust.
    private func rejected(_ reason: NATSRejection, on channel: String) {
        self.rejectionCounters[reason]?.increment()
        guard let count = self.rejections.withLockedValue({ $0.record(reason, now: .now()) }) else { return }
        self.logger.warning(
            "dropping NATS messages the cluster does not trust: \(reason.explanation)",
            metadata: [
                "lhttp.reason": "\(reason.rawValue)", "lhttp.channel": "\(channel)", "lhttp.count": "\(count)",
                "lhttp.interval_s": "\(NATSRejectionLog.interval.nanoseconds / 1_000_000_000)",
            ]
        )
    }

    /// Milliseconds since 1970 (the envelope timestamp; nodes' clocks should be NTP-synchronised).
    @Sendable static func wallClockMs() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded())
    }
}
