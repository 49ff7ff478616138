import LHTTPConfig
import LHTTPGateway
import Logging
import NIOCore
import Synchronization

/// The cluster broker: channels shared by every lhttpd node connected to the same NATS.
///
/// - Local subscribers get a local publication at once, from the hub, without a NATS round trip.
/// - The node holds one NATS subscription per channel that has local subscribers (not per
///   connection), and drops it when the last local subscriber leaves.
/// - A publication goes to NATS once per channel subject in a ``NATSEnvelope``; a receiving node
///   delivers the first copy to all its channels (a connection on several of them gets it once) and
///   ignores its own publications (the client also asks the server not to echo them).
/// - Channel names become subjects through ``NATSSubject``: no name can reach another channel's
///   subject or a wildcard.
public final class NATSBroker: Broker {
    public let hub: Hub
    public let client: NATSClient
    /// This node's id (configured, or random at start).
    public let nodeID: String
    /// `nodeID#nonce`: tells this process's publications apart even from a node with the same id.
    let origin: String
    private let prefix: String
    private let sequence = Atomic<UInt64>(0)
    private let interestCount = Atomic<Int>(0)
    private let foreignCount = Atomic<Int>(0)
    private let allocator = ByteBufferAllocator()
    private let state: NIOLoopBoundBox<LoopState>
    private let logger: Logger
    private let metrics: GatewayMetrics?
    private let gauges: NATSGauges?

    /// On the client's event loop.
    private struct LoopState {
        /// Channels with local subscribers → their NATS subscription.
        var interest: [String: UInt64] = [:]
        /// Origin → sequence of the last publication delivered from it (copies of one publication
        /// arrive back to back).
        var lastSeen: [String: UInt64] = [:]
    }

    /// Origins remembered for duplicate detection; past it the table starts over (only a copy arriving
    /// right after a reset could be delivered twice).
    static let maxOrigins = 4096

    /// - Throws: when `configuration.nats` does not parse.
    /// - Parameter metrics: counts deliveries of publications from other nodes (source `cluster`); the
    ///   link's gauges go to the same factory.
    public convenience init(hub: Hub, configuration: ClusterConfig, eventLoop: any EventLoop, metrics: GatewayMetrics? = nil, logger: Logger) throws(ConfigError) {
        self.init(hub: hub, configuration: configuration, servers: try configuration.servers(), eventLoop: eventLoop, metrics: metrics, logger: logger)
    }

    /// - Parameter servers: `configuration.nats`, parsed.
    public init(hub: Hub, configuration: ClusterConfig, servers: [NATSServerURL], eventLoop: any EventLoop, metrics: GatewayMetrics? = nil, logger: Logger) {
        self.metrics = metrics
        self.gauges = metrics.map { NATSGauges(factory: $0.labelled.factory) }
        let nonce = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        self.nodeID = configuration.nodeID.isEmpty ? "node-\(nonce)" : configuration.nodeID
        self.origin = "\(self.nodeID)#\(nonce)"
        self.hub = hub
        self.prefix = configuration.subjectPrefix
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
    }

    /// Starts connecting to NATS (in the background; local delivery works meanwhile).
    public func start() {
        self.client.start { [self] _, _, payload in self.receive(payload) }
    }

    public func shutdown() async {
        await self.client.shutdown()
    }

    public func publish(_ payload: ByteBuffer, to channels: [String]) throws(GatewayError) -> Int {
        let sequence = self.sequence.add(1, ordering: .relaxed).newValue
        let envelope = NATSEnvelope.encode(origin: self.origin, sequence: sequence, channels: channels, message: payload, allocator: self.allocator)
        let maxPayload = self.client.maxPayload
        guard envelope.readableBytes <= maxPayload else {
            throw .publicationTooLarge(size: envelope.readableBytes, limit: maxPayload)
        }
        let local = self.hub.deliver(payload, to: channels)
        do {
            try self.client.publish(envelope, to: channels.map { NATSSubject.channel($0, prefix: self.prefix) })
        } catch {
            // Sizes and subjects were checked above and by the config; this is a bug, not bad input.
            self.logger.error("publication not sent to NATS", metadata: ["lhttp.error": "\(error)"])
        }
        return local
    }

    public func interest(added: [String], removed: [String]) {
        let channels = added + removed
        self.client.eventLoop.execute { [self] in
            for channel in channels { self.reconcile(channel) }
        }
    }

    /// `"cluster": {state, server, node_id, channels, reconnects, dropped, pending_bytes}` in `/healthz`;
    /// the node is "degraded" while the link is down.
    public var health: HealthReport? {
        let status = self.client.currentStatus
        return HealthReport(
            name: "cluster",
            isDegraded: status.state != .connected,
            fields: [
                .init("state", .string(status.state.rawValue)),
                .init("server", .string(status.server ?? "")),
                .init("node_id", .string(self.nodeID)),
                .init("channels", .int(self.interestCount.load(ordering: .relaxed))),
                .init("reconnects", .int(max(0, status.connections - 1))),
                .init("dropped", .int(status.droppedMessages)),
                .init("pending_bytes", .int(status.pendingBytes)),
            ]
        )
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
            do {
                self.state.value.interest[channel] = try self.client.subscribe(NATSSubject.channel(channel, prefix: self.prefix))
            } catch {
                self.logger.error("cannot subscribe on NATS", metadata: ["lhttp.channel": "\(channel)", "lhttp.error": "\(error)"])
            }
        } else if !wanted, let sid {
            self.client.unsubscribe(sid)
            self.state.value.interest[channel] = nil
        }
        self.interestCount.store(self.state.value.interest.count, ordering: .relaxed)
    }

    /// A publication from NATS (on the client's loop).
    private func receive(_ payload: ByteBuffer) {
        guard let envelope = NATSEnvelope(decoding: payload) else {
            // Someone else publishes on our subjects: never delivered, counted, logged once.
            if self.foreignCount.add(1, ordering: .relaxed).newValue == 1 {
                self.logger.warning("ignoring a NATS message that is not an lhttpd envelope (another publisher on the subject prefix?)")
            }
            return
        }
        guard envelope.origin != self.origin else { return }
        guard self.state.value.lastSeen[envelope.origin] != envelope.sequence else { return }
        if self.state.value.lastSeen.count >= Self.maxOrigins, self.state.value.lastSeen[envelope.origin] == nil {
            self.state.value.lastSeen.removeAll(keepingCapacity: true)
        }
        self.state.value.lastSeen[envelope.origin] = envelope.sequence
        let deliveries = self.hub.deliver(envelope.message, to: envelope.channels)
        self.metrics?.published(from: .cluster, deliveries: deliveries)
    }
}
