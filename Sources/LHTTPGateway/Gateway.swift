import LHTTPProtocol
import Logging
import NIOCore
import Synchronization

/// The gateway core: runs each message through filters and processors and owns the hub and broker.
///
/// Built once at start-up, then shared (read-only) by every connection.
public final class Gateway: Sendable {
    /// The local channel registry.
    public let hub: Hub
    /// Where publications go (``LocalBroker`` unless clustered).
    public let broker: any Broker
    /// Limits for parsing and channel lists.
    public let limits: LHTTPLimits
    public let logger: Logger
    private let parser: LHTTPParser
    private let processors: [String: any LHTTPProcessor]
    private let filters: [any HeaderFilter]
    private let router: (any MessageRouter)?
    /// Asked before a websocket upgrade is accepted (the `connect` webhook).
    public let connectHook: (any ConnectHook)?
    private let maxQueuedWhileRouting: Int
    private let openSessions = Atomic<Int>(0)
    /// Subscription bounds (`limits.max_subscriptions_per_connection`, `limits.max_channels`).
    public let caps: SubscriptionCaps
    /// Where counters go (a no-op factory unless the executable or a test gives one).
    public let metrics: LHTTPMetrics

    /// Websocket connections currently open on this node.
    public var connectionCount: Int { self.openSessions.load(ordering: .relaxed) }

    /// - Parameters:
    ///   - processors: command → processor.
    ///   - filters: user filters; they run after the built-in multipart filter and before the built-in
    ///     pub/sub filter (`beforeMessage`), and in the same order for `afterMessage`.
    ///   - filtersAfterPubSub: filters that run after the built-in pub/sub filter (the upstream header).
    ///   - router: sends chosen messages to the app first (the webhook routes).
    ///   - maxQueuedWhileRouting: a session's messages waiting behind a routed one; beyond, error reply 503.
    ///   - broker: makes the broker from the hub; defaults to ``LocalBroker``.
    public init(
        limits: LHTTPLimits = .default,
        processors: [String: any LHTTPProcessor] = [:],
        filters: [any HeaderFilter] = [],
        filtersAfterPubSub: [any HeaderFilter] = [],
        router: (any MessageRouter)? = nil,
        connectHook: (any ConnectHook)? = nil,
        maxQueuedWhileRouting: Int = 64,
        caps: SubscriptionCaps = SubscriptionCaps(),
        hub: Hub = Hub(),
        broker makeBroker: (Hub) -> any Broker = { LocalBroker(hub: $0) },
        metrics: LHTTPMetrics = LHTTPMetrics(),
        logger: Logger = Logger(label: "lhttpd.gateway")
    ) {
        self.metrics = metrics
        self.hub = hub
        self.broker = makeBroker(hub)
        self.limits = limits
        self.logger = logger
        self.parser = LHTTPParser(limits: limits)
        self.processors = processors
        self.filters = [MultipartFilter()] + filters + [PubSubFilter()] + filtersAfterPubSub
        self.router = router
        self.connectHook = connectHook
        self.maxQueuedWhileRouting = maxQueuedWhileRouting
        self.caps = caps
    }

    // MARK: Connection lifecycle (called by the transport, on the connection's loop)

    /// A connection opened: makes its session and runs every filter's and processor's `onOpen`.
    public func open(
        transport: any SessionTransport,
        eventLoop: any EventLoop,
        remoteAddress: String = "",
        id: ConnectionID = .next()
    ) -> Session {
        let session = Session(gateway: self, transport: transport, eventLoop: eventLoop, id: id)
        session.remoteAddress = remoteAddress
        self.openSessions.add(1, ordering: .relaxed)
        for filter in self.filters { filter.onOpen(session) }
        for processor in self.processors.values { processor.onOpen(session) }
        if self.logger.logLevel <= .debug { session.logger.debug("connection opened") }
        return session
    }

    /// One complete websocket message arrived. Errors become an error reply; the connection stays open.
    /// While a routed message of this session waits for the app, the message waits behind it.
    public func receive(_ payload: ByteBuffer, on session: Session) {
        guard !session.isClosed else { return }
        self.metrics.messagesReceived.increment()
        guard !session.isSuspended else {
            guard session.backlog.count < self.maxQueuedWhileRouting else {
                session.send(LHTTPMessage.errorReply(status: 503, reason: "too many messages waiting for the app"))
                return
            }
            session.backlog.append(payload)
            return
        }
        self.process(payload, on: session)
    }

    private func process(_ payload: ByteBuffer, on session: Session) {
        do {
            session.message = try self.parser.parse(payload)
            session.parts = []
            defer {
                session.message = nil
                session.parts = []
            }
            for filter in self.filters { try filter.beforeMessage(session) }
            if let command = session.message?.command, let processor = self.processors[command] {
                try processor.onMessage(session)
            }
            if let router = self.router, let message = session.message, router.routes(message) {
                self.suspend(session, routing: message, with: router)
                return
            }
            try self.runAfterFilters(session)
        } catch {
            self.reject(error, on: session)
        }
    }

    private func runAfterFilters(_ session: Session) throws {
        for filter in self.filters { try filter.afterMessage(session) }
    }

    /// Hands a routed message to the app; the session's later messages wait until the answer is applied.
    private func suspend(_ session: Session, routing message: LHTTPMessage, with router: any MessageRouter) {
        let parts = session.parts
        session.isSuspended = true
        router.route(message, parts: parts, session: session) { decision in
            session.isSuspended = false
            guard !session.isClosed else {
                session.backlog.removeAll()
                return
            }
            switch decision {
            case .proceed(let rewrite, let then):
                session.message = rewrite ?? message
                session.parts = parts
                do {
                    try self.runAfterFilters(session)
                    then(session)
                } catch {
                    self.reject(error, on: session)
                }
                session.message = nil
                session.parts = []
            case .stop(let reply):
                session.send(reply)
            }
            while !session.isSuspended, !session.isClosed, !session.backlog.isEmpty {
                self.process(session.backlog.removeFirst(), on: session)
            }
        }
    }

    private func reject(_ error: any Error, on session: Session) {
        let gatewayError = GatewayError(error)
        session.logger.warning(
            "message rejected",
            metadata: ["lhttp.status": "\(gatewayError.status)", "lhttp.reason": "\(gatewayError.reason)"]
        )
        session.send(gatewayError.reply)
    }

    /// The connection is gone: releases its subscriptions, then runs every `onClose`. Call exactly once.
    public func close(_ session: Session) {
        guard !session.isClosed else { return }
        let channels = self.logger.logLevel <= .debug ? session.subscriptions.sorted().prefix(16).joined(separator: " ") : ""
        session.markClosed()
        for filter in self.filters { filter.onClose(session) }
        for processor in self.processors.values { processor.onClose(session) }
        // Counted as gone only now: a graceful stop that waits for zero connections then waits for the
        // calls in flight must find the disconnect hook's call already queued.
        self.openSessions.subtract(1, ordering: .relaxed)
        if self.logger.logLevel <= .debug {
            session.logger.debug(
                "connection closed",
                metadata: [
                    "lhttp.close_code": "\(session.closeCode.map(String.init) ?? "none")",
                    "lhttp.channels": "\(channels)",
                ]
            )
        }
    }

    // MARK: Publishing

    /// Publishes a serialized LHTTP message to `channels` through the broker.
    /// - Parameter source: where it entered, for metrics (`websocket`, `http`, `webhook`).
    /// - Returns: local deliveries.
    /// - Throws: when the broker refuses it (too large for the cluster); nothing was delivered then.
    @discardableResult
    public func publish(_ payload: ByteBuffer, to channels: [String], source: String = "websocket") throws(GatewayError) -> Int {
        let deliveries = try self.broker.publish(payload, to: channels)
        self.metrics.published(from: source, deliveries: deliveries)
        return deliveries
    }
}

/// How many channels a connection and a node may hold.
public struct SubscriptionCaps: Sendable, Equatable {
    public var maxSubscriptionsPerConnection: Int
    public var maxChannels: Int

    public init(maxSubscriptionsPerConnection: Int = 128, maxChannels: Int = 1_000_000) {
        self.maxSubscriptionsPerConnection = maxSubscriptionsPerConnection
        self.maxChannels = maxChannels
    }
}
