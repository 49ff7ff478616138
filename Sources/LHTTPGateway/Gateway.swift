import LHTTPProtocol
import Logging
import NIOCore
import Synchronization

/// The gateway core, shared (read-only) by every connection: the hub and the broker, the message
/// pipeline, the adapters behind their protocols, and what happens when a connection opens and ends.
///
/// A connection's handler owns its ``SessionStateMachine`` and executes its actions through the methods
/// here (subscribe, publish, reply, release). The core names no adapter: routes, hooks and upstream calls
/// are ``MessageRouter``, ``ConnectHook``, ``UpstreamCaller`` and ``ConnectionObserver`` values given by
/// the composition root.
public final class Gateway: Sendable {
    /// The local channel registry.
    public let hub: Hub
    /// Where publications go (``LocalBroker`` unless clustered).
    public let broker: any Broker
    public let pipeline: MessagePipeline
    /// `limits.max_channels`.
    public let maxChannels: Int
    public let metrics: GatewayMetrics
    public let logger: Logger
    public let router: (any MessageRouter)?
    public let upstream: (any UpstreamCaller)?
    /// Asked before a websocket upgrade is accepted (the `connect` webhook).
    public let connectHook: (any ConnectHook)?
    /// Channels with history (nil: none anywhere, every publication on the plain path).
    public let history: ChannelHistory?
    /// Connection tokens (nil: `auth.jwt` is not configured).
    public let authentication: Authentication?
    /// Who is on the channels with presence (nil: no prefix keeps it).
    public let presence: Presence?
    private let processors: [String: any LHTTPProcessor]
    private let observers: [any ConnectionObserver]
    private let openConnections = Atomic<Int>(0)
    /// The connection cap's reservations (upgrades being considered and open websockets).
    public let connectionSlots = ConnectionSlots()
    private let noConnections = ConditionWaiters()

    /// - Parameters:
    ///   - processors: command → processor (Swift app logic; none in `lhttpd` itself).
    ///   - router: sends chosen messages to the app first (the webhook routes and the subscribe hook).
    ///   - upstream: carries out the `upstream` header; without it the header is ignored.
    ///   - observers: told when a connection ends (the disconnect hook).
    ///   - broker: makes the broker from the hub; defaults to ``LocalBroker``.
    ///   - access: who may publish and subscribe where from a websocket (the `channels:` options).
    ///   - history: which channels keep history, and the store (nil: none).
    ///   - authentication: verifies connection tokens (nil: none).
    ///   - presence: keeps who is on the channels with presence (made on `hub`; nil: none).
    public init(
        limits: LHTTPLimits = .default,
        session: SessionStateMachine.Configuration = .init(),
        maxChannels: Int = 1_000_000,
        processors: [String: any LHTTPProcessor] = [:],
        router: (any MessageRouter)? = nil,
        upstream: (any UpstreamCaller)? = nil,
        connectHook: (any ConnectHook)? = nil,
        observers: [any ConnectionObserver] = [],
        hub: Hub = Hub(),
        broker makeBroker: (Hub) -> any Broker = { LocalBroker(hub: $0) },
        access: ChannelAccess = .open,
        history: ChannelHistory? = nil,
        authentication: Authentication? = nil,
        presence: Presence? = nil,
        metrics: GatewayMetrics = GatewayMetrics(),
        logger: Logger = Logger(label: "lhttpd.gateway")
    ) {
        self.hub = hub
        self.broker = makeBroker(hub)
        self.pipeline = MessagePipeline(
            limits: limits, session: session, processors: processors, router: router, forwardsUpstream: upstream != nil, access: access,
            verifiesTokens: authentication != nil
        )
        self.authentication = authentication
        self.presence = presence
        self.maxChannels = maxChannels
        self.processors = processors
        self.router = router
        self.upstream = upstream
        self.connectHook = connectHook
        self.history = history.flatMap { $0.policies.isAnyEnabled ? $0 : nil }
        self.observers = observers
        self.metrics = metrics
        self.logger = logger
    }

    /// Parser and channel-list limits.
    public var limits: LHTTPLimits { self.pipeline.limits }

    /// Websocket connections currently open on this node.
    public var connectionCount: Int { self.openConnections.load(ordering: .relaxed) }

    // MARK: Connection lifecycle (on the connection's loop)

    /// The session state machine of a new connection (nothing is registered yet: see ``open(_:sink:eventLoop:)``).
    public func makeSession(id: ConnectionID, remoteAddress: String, identity: ConnectionIdentity? = nil) -> SessionStateMachine {
        SessionStateMachine(id: id, remoteAddress: remoteAddress, identity: identity, pipeline: self.pipeline)
    }

    /// A connection opened: its handle in the hub (`sink` receives its frames). Counts it and runs every
    /// processor's `onOpen`. Every opened connection is released exactly once (``release(_:subscriber:)``).
    public func open(_ connection: ConnectionInfo, sink: any FrameSink, eventLoop: any EventLoop) -> Subscriber {
        let subscriber = Subscriber(id: connection.id, sink: sink, slot: self.hub.slot(for: eventLoop))
        self.openConnections.add(1, ordering: .relaxed)
        for processor in self.processors.values { processor.onOpen(connection) }
        if self.logger.logLevel <= .debug { self.logger(for: connection).debug("connection opened") }
        return subscriber
    }

    /// The connection is gone: releases its subscriptions, then runs every processor's `onClose` and
    /// tells the observers. Call exactly once (``SessionAction/release(_:)`` comes exactly once).
    public func release(_ summary: ConnectionSummary, subscriber: Subscriber) {
        let channels = summary.connection.subscriptions
        let emptied = self.hub.remove(subscriber, from: channels)
        if !emptied.isEmpty { self.broker.interest(added: [], removed: emptied) }
        self.presence?.left(summary.connection.id, channels: channels)
        for processor in self.processors.values { processor.onClose(summary.connection, code: summary.code) }
        for observer in self.observers { observer.connectionClosed(summary.connection, code: summary.code, on: subscriber.eventLoop) }
        if self.logger.logLevel <= .debug {
            self.logger(for: summary.connection).debug(
                "connection closed",
                metadata: ["lhttp.close_code": "\(summary.code)", "lhttp.channels": "\(channels.sorted().prefix(16).joined(separator: " "))"]
            )
        }
        // Counted as gone only now: a graceful stop that waits for zero connections then waits for the
        // calls in flight must find the disconnect hook's call already queued.
        if self.openConnections.subtract(1, ordering: .relaxed).newValue == 0 { self.noConnections.signal() }
    }

    /// Waits (up to `timeout` on `clock`) until no websocket is open. - Returns: whether none is.
    public func waitUntilNoConnections<C: Clock>(timeout: C.Duration, clock: C) async -> Bool {
        await self.noConnections.wait(timeout: timeout, clock: clock) { [self] in self.connectionCount == 0 }
    }

    // MARK: Executing a session's actions

    /// What became of a session action the gateway carried out (``carryOut(_:subscriber:connection:)``).
    public enum Carried {
        /// Done (or refused): report the outcome with ``SessionStateMachine/next(_:)``.
        case outcome(StepOutcome)
        /// Send this serialized message to the connection (a reply, an error reply).
        case send(ByteBuffer)
        /// Not the gateway's to do: the connection's own (upstream, route, close, reading).
        case connections(SessionAction)
    }

    /// Carries out the actions that only concern the hub, the broker and the logs — the same for every
    /// transport — and hands back the rest. The one mapping from session actions to gateway operations.
    public func carryOut(_ action: SessionAction, subscriber: Subscriber, connection: @autoclosure () -> ConnectionInfo) -> Carried {
        switch action {
        case .send(let bytes):
            return .send(bytes)
        case .sendError(let error):
            return .send(self.reply(to: connection(), with: error))
        case .subscribe(let channels):
            if let refusal = self.subscribe(subscriber, to: channels) { return .outcome(.refused(refusal)) }
            self.presence?.joined(connection(), channels: channels)
        case .subscribeRecovering(let requests):
            if let refusal = self.subscribe(subscriber, recovering: requests) { return .outcome(.refused(refusal)) }
            self.presence?.joined(connection(), channels: requests.map(\.channel))
        case .unsubscribe(let channels):
            self.unsubscribe(subscriber, from: channels)
            self.presence?.left(subscriber.id, channels: channels)
        case .queryPresence(let channel):
            self.presence?.answer(subscriber, channel: channel)
        case .publish(let payload, let channels, let source):
            do {
                try self.publish(payload, to: channels, source: source)
            } catch {
                return .outcome(.refused(error))
            }
        case .warn(let what, let error):
            self.logger(for: connection()).warning("\(what)", metadata: ["lhttp.status": "\(error.status)", "lhttp.reason": "\(error.reason)"])
        case .release(let summary):
            self.release(summary, subscriber: subscriber)
        case .none:
            break
        case .callUpstream, .route, .close, .pauseReading, .resumeReading, .verifyToken:
            return .connections(action)
        }
        return .outcome(.done)
    }

    /// Joins `channels` (fresh ones: the session checked). - Returns: the refusal when the node's
    /// channel cap would be exceeded; nothing changed then.
    public func subscribe(_ subscriber: Subscriber, to channels: [String]) -> GatewayError? {
        guard let created = self.hub.add(subscriber, to: channels, maxChannels: self.maxChannels) else {
            return .channelLimit(limit: self.maxChannels)
        }
        if !created.isEmpty { self.broker.interest(added: created, removed: []) }
        return nil
    }

    /// Joins the channels of `requests` and recovers each from its position: the publications retained after
    /// it, then a `subscribed` answer per channel, are handed to the connection (on its loop) before anything
    /// published later. Without history anywhere, each channel is answered `recovered:false`.
    /// - Returns: the refusal when the node's channel cap would be exceeded; nothing changed then.
    public func subscribe(_ subscriber: Subscriber, recovering requests: [RecoveryRequest]) -> GatewayError? {
        let channels = requests.map(\.channel)
        let refusal: GatewayError?
        let frames: [ByteBuffer]
        if let shared = self.broker.sharedHistory {
            // Joined at once (the live feed runs from now); the store is read in the background and the
            // recovery holds back what of the live feed arrives meanwhile.
            return shared.recover(requests, for: subscriber) { self.subscribe(subscriber, to: channels) }
        } else if let history = self.history {
            (refusal, frames) = history.recover(requests.map { ($0.channel, $0.position) }) { self.subscribe(subscriber, to: channels) }
        } else {
            refusal = self.subscribe(subscriber, to: channels)
            frames = refusal == nil ? channels.compactMap { ChannelHistory.subscribedAnswer(channel: $0, read: nil, missed: 0) } : []
        }
        for frame in frames { subscriber.sink.enqueueFrame(WebSocketFrameBytes.message(frame)) }
        return refusal
    }

    /// Leaves `channels` (ones the connection is in).
    public func unsubscribe(_ subscriber: Subscriber, from channels: [String]) {
        let emptied = self.hub.remove(subscriber, from: channels)
        if !emptied.isEmpty { self.broker.interest(added: [], removed: emptied) }
    }

    /// Publishes a serialized LHTTP message to `channels` through the broker.
    /// - Returns: local deliveries.
    /// - Throws: when the broker refuses it (too large for the cluster); nothing was delivered then.
    @discardableResult
    public func publish(_ payload: ByteBuffer, to channels: [String], source: PublicationSource) throws(GatewayError) -> Int {
        try self.publishKeepingHistory(payload, to: channels, source: source).deliveries
    }

    /// Publishes as ``publish(_:to:source:)`` and tells where the publication landed in each channel with
    /// history (`POST /publish` answers with them). A publication to channels with history is stamped with
    /// its positions (`seq`, `prev`) and kept; one to channels without goes out untouched.
    public func publishKeepingHistory(_ payload: ByteBuffer, to channels: [String], source: PublicationSource) throws(GatewayError) -> ChannelHistory.Published {
        let published: ChannelHistory.Published
        if let shared = self.broker.sharedHistory, channels.contains(where: shared.keeps) {
            // The store answers later; a websocket publication needs no answer (a failed store still goes
            // out live, without positions).
            let metrics = self.metrics
            try shared.publish(payload, to: channels, idempotencyKey: nil).whenSuccess { published in
                metrics.published(from: source, deliveries: published.deliveries)
            }
            return ChannelHistory.Published(deliveries: 0, positions: [])
        } else if let history = self.history,
           let kept = try history.publish(payload, to: channels, deliver: { (stamped) throws(GatewayError) -> Int in try self.broker.publishInOrder(stamped, to: channels) })
        {
            published = kept
        } else if self.history != nil {
            // Queued as the publications with history are, so a publisher's messages keep their order
            // whichever channels they go to.
            published = ChannelHistory.Published(deliveries: try self.broker.publishInOrder(payload, to: channels), positions: [])
        } else {
            published = ChannelHistory.Published(deliveries: try self.broker.publish(payload, to: channels), positions: [])
        }
        self.metrics.published(from: source, deliveries: published.deliveries)
        return published
    }

    /// Publishes as ``publishKeepingHistory(_:to:source:)`` and completes (on `eventLoop`) when the positions
    /// are known: at once on one node or without history, when the cluster's store acknowledged otherwise.
    /// - Parameter idempotencyKey: handed to the cluster's store (one node: the caller's own table).
    public func publishWhenStored(
        _ payload: ByteBuffer, to channels: [String], source: PublicationSource, idempotencyKey: String?, on eventLoop: any EventLoop
    ) -> EventLoopFuture<ChannelHistory.Published> {
        guard let shared = self.broker.sharedHistory, channels.contains(where: shared.keeps) else {
            return eventLoop.makeCompletedFuture { () throws(GatewayError) -> ChannelHistory.Published in
                try self.publishKeepingHistory(payload, to: channels, source: source)
            }
        }
        let metrics = self.metrics
        let stored: EventLoopFuture<ChannelHistory.Published>
        do {
            stored = try shared.publish(payload, to: channels, idempotencyKey: idempotencyKey)
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        return stored.hop(to: eventLoop).map { published in
            metrics.published(from: source, deliveries: published.deliveries)
            return published
        }
    }

    /// Whether `channels` go to the cluster's store (their answer comes later, and an `Idempotency-Key` is
    /// the store's to honour).
    public func storesInCluster(_ channels: [String]) -> Bool {
        guard let shared = self.broker.sharedHistory else { return false }
        return channels.contains(where: shared.keeps)
    }

    /// A channel's retained publications for `GET /history` (nil: it keeps no history), from this node's
    /// store or the cluster's.
    public func readHistory(_ channel: String, since: HistoryPosition?, limit: Int, on eventLoop: any EventLoop) -> EventLoopFuture<HistoryRead?> {
        if let shared = self.broker.sharedHistory { return shared.read(channel, since: since, limit: limit).hop(to: eventLoop) }
        return eventLoop.makeSucceededFuture(self.history?.read(channel, since: since, limit: limit))
    }

    /// The error reply for `error`, counted and logged (one warning line per rejected message): the one
    /// place an error becomes what a client receives.
    public func reply(to connection: ConnectionInfo, with error: GatewayError) -> ByteBuffer {
        self.metrics.errorReply(status: error.status)
        self.logger(for: connection).warning(
            "message rejected",
            metadata: ["lhttp.status": "\(error.status)", "lhttp.reason": "\(error.reason)"]
        )
        // Every field of an error reply is sanitized (``LHTTPMessage/errorReply(status:reason:extraHeaders:)``).
        return (try? error.reply.serialized()) ?? ByteBuffer(string: "LHTTP/1.0 error\r\nstatus:500\r\n\r\n")
    }

    /// The gateway's logger with `lhttp.conn` and `lhttp.remote` (made when asked: a connection keeps
    /// no logger of its own, a metadata dictionary per idle connection is memory for nothing).
    public func logger(for connection: ConnectionInfo) -> Logger {
        var logger = self.logger
        logger[metadataKey: "lhttp.conn"] = "\(connection.id)"
        if !connection.remoteAddress.isEmpty { logger[metadataKey: "lhttp.remote"] = "\(connection.remoteAddress)" }
        return logger
    }

    // MARK: Observing

    /// Sets every gauge read when `/metrics` is scraped (the core's and the broker's).
    public func recordGauges() {
        self.metrics.recordGauges(connections: self.connectionCount, stats: self.hub.stats)
        self.broker.recordGauges()
    }
}
