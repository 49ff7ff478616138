import LHTTPConfig
import LHTTPGateway
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Prometheus
import ServiceLifecycle

/// The one HTTP/1.1 port: websocket upgrades on the configured paths, `POST /publish`, `GET /healthz`,
/// and static files. A `Service` for swift-service-lifecycle.
public final class GatewayServer: Service, Sendable {
    private let configuration: GatewayConfig
    private let gateway: Gateway
    private let group: any EventLoopGroup
    private let logger: Logger
    private let fileThreadPool = NIOThreadPool(numberOfThreads: 1)
    private let metricsRegistry: PrometheusCollectorRegistry?
    private let state = NIOLockedValueBox<(channel: (any Channel)?, started: Bool, shutdownDeadline: ContinuousClock.Instant?)>((nil, false, nil))
    /// One keep-alive sweeper per event loop, made on first use on that loop.
    private let sweepers = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<KeepAliveSweeper>]>([:])

    /// - Parameters:
    ///   - configuration: listen address, paths, limits; `listen` may use port 0 (see ``localAddress``).
    ///   - gateway: the gateway core that sessions run through.
    ///   - eventLoopGroup: one loop per core; owned by the caller.
    ///   - metricsRegistry: printed on `metrics.path`; the gateway's ``LHTTPMetrics`` must record into it.
    public init(
        configuration: GatewayConfig,
        gateway: Gateway,
        eventLoopGroup: any EventLoopGroup,
        metricsRegistry: PrometheusCollectorRegistry? = nil,
        logger: Logger
    ) {
        self.metricsRegistry = metricsRegistry
        self.configuration = configuration
        self.gateway = gateway
        self.group = eventLoopGroup
        self.logger = logger
    }

    /// The bound address once ``start()`` returned.
    public var localAddress: SocketAddress? {
        self.state.withLockedValue { $0.channel?.localAddress }
    }

    /// When the graceful stop that ``run()`` started must be over (`shutdown_timeout_s` after the signal);
    /// nil before it started.
    public var shutdownDeadline: ContinuousClock.Instant? {
        self.state.withLockedValue { $0.shutdownDeadline }
    }

    /// Binds the listening socket. - Returns: the bound address (with the real port when port 0 was asked).
    @discardableResult
    public func start() async throws -> SocketAddress {
        let alreadyStarted = self.state.withLockedValue { state in
            defer { state.started = true }
            return state.started
        }
        precondition(!alreadyStarted, "GatewayServer.start() called twice")
        self.fileThreadPool.start()
        let listen = self.configuration.listen
        let channel: any Channel
        do {
            channel = try await self.bootstrap().bind(host: listen.host, port: listen.port).get()
        } catch {
            try? await self.fileThreadPool.shutdownGracefully()
            throw ServerError.bindFailed("\(listen): \(error)")
        }
        self.state.withLockedValue { $0.channel = channel }
        guard let address = channel.localAddress else { throw ServerError.bindFailed("no local address") }
        self.logger.info("lhttpd listening", metadata: ["lhttp.address": "\(listen.host)", "lhttp.port": "\(address.port ?? 0)"])
        return address
    }

    /// Stops accepting connections and closes the listening socket. Open websockets are left alone (see
    /// ``drain(timeout:)``).
    public func stop() async throws {
        let channel = self.state.withLockedValue { state in
            defer { state.channel = nil }
            return state.channel
        }
        try? await channel?.close()
        for sweeper in self.sweepers.withLockedValue({ Array($0.values) }) {
            try? await sweeper.eventLoop.submit { sweeper.value.stop() }.get()
        }
        try await self.fileThreadPool.shutdownGracefully()
    }

    /// Graceful stop, step one: stops accepting, sends close 1001 "going away" to every websocket, and
    /// waits (up to `timeout`) until their sessions are closed (disconnect hooks have been started).
    /// - Returns: the connections still open when the wait ended (0 normally).
    @discardableResult
    public func drain(timeout: TimeAmount) async -> Int {
        let listener = self.state.withLockedValue { $0.channel }
        try? await listener?.close()
        for sweeper in self.sweepers.withLockedValue({ Array($0.values) }) {
            try? await sweeper.eventLoop.submit {
                sweeper.value.closeAll(code: CloseCode.goingAway, reason: "server shutting down")
            }.get()
        }
        let deadline = NIODeadline.now() + timeout
        while self.gateway.connectionCount > 0, NIODeadline.now() < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return self.gateway.connectionCount
    }

    /// The keep-alive sweeper of `eventLoop` (call on that loop).
    private func sweeper(for eventLoop: any EventLoop) -> KeepAliveSweeper {
        let key = ObjectIdentifier(eventLoop)
        if let existing = self.sweepers.withLockedValue({ $0[key] }) { return existing.value }
        let websocket = self.configuration.websocket
        let sweeper = KeepAliveSweeper(eventLoop: eventLoop, pingIntervalS: websocket.pingIntervalS, idleTimeoutS: websocket.idleTimeoutS)
        self.sweepers.withLockedValue { $0[key] = NIOLoopBound(sweeper, eventLoop: eventLoop) }
        return sweeper
    }

    /// `Service.run`: starts (if needed), serves until graceful shutdown is requested, then stops.
    public func run() async throws {
        if self.state.withLockedValue({ !$0.started }) {
            try await self.start()
        }
        try? await gracefulShutdown()
        self.logger.info("lhttpd shutting down: closing every websocket with 1001")
        // The whole stop (drain, then the calls in flight) gets shutdown_timeout_s from now, the signal.
        let deadline = ContinuousClock.now + .milliseconds(Int64(self.configuration.shutdownTimeoutS * 1000))
        self.state.withLockedValue { $0.shutdownDeadline = deadline }
        let timeout = TimeAmount.nanoseconds(Int64(self.configuration.shutdownTimeoutS * 1e9))
        let left = await self.drain(timeout: timeout)
        if left > 0 { self.logger.warning("connections still open after shutdown_timeout_s", metadata: ["lhttp.connections": "\(left)"]) }
        try await self.stop()
    }

    private func bootstrap() -> ServerBootstrap {
        let configuration = self.configuration
        let gateway = self.gateway
        let logger = self.logger
        let pool = self.fileThreadPool
        let limits = configuration.limits
        let websocketPaths = Set(configuration.websocket.paths)
        let settings = HTTPRequestRouter.Settings(
            publishPath: configuration.publish.path,
            websocketPaths: websocketPaths,
            publish: PublishEndpoint(token: configuration.publish.token, limits: gateway.limits),
            staticFiles: StaticFiles(root: configuration.staticDir),
            maxBodyBytes: min(limits.maxMessageBytes, configuration.http.maxBodyBytes),
            maxRequestBodyBytes: configuration.http.maxBodyBytes,
            metricsPath: configuration.metrics.path,
            metricsToken: BearerToken(configuration.metrics.token),
            metricsRegistry: self.metricsRegistry
        )
        let allowedOrigins = OriginPolicy(allowed: configuration.websocket.allowedOrigins)
        let maxConnections = limits.maxConnections
        let http = configuration.http

        return ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(
                .writeBufferWaterMark,
                value: .init(low: max(limits.maxOutboundBytes / 2, 1), high: max(limits.maxOutboundBytes, 2))
            )
            .childChannelInitializer { channel in
                // What the connect hook accepted, from `shouldUpgrade` to `upgradePipelineHandler` (the
                // HTTP router is already gone by then).
                let accepted = NIOLoopBoundBox<AcceptedConnect?>(nil, eventLoop: channel.eventLoop)
                let upgrader = NIOWebSocketServerUpgrader(
                    maxFrameSize: limits.maxMessageBytes,
                    automaticErrorHandling: false,
                    shouldUpgrade: { channel, head in
                        let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
                        let path = parts.first.map(String.init) ?? head.uri
                        guard websocketPaths.contains(path) else { return channel.eventLoop.makeSucceededFuture(nil) }
                        if let refusal = Self.refusal(head: head, origins: allowedOrigins, maxConnections: maxConnections, gateway: gateway) {
                            return channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.handler(type: HTTPRequestRouter.self).connectRefusal = refusal
                                return nil
                            }
                        }
                        guard let hook = gateway.connectHook else { return channel.eventLoop.makeSucceededFuture(HTTPHeaders()) }
                        return Self.askConnectHook(
                            hook, channel: channel, head: head, path: path,
                            query: parts.count > 1 ? String(parts[1]) : "", accepted: accepted
                        )
                    },
                    upgradePipelineHandler: { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            let accepted = accepted.value
                            try channel.pipeline.syncOperations.addHandler(
                                WebSocketSessionHandler(
                                    gateway: gateway,
                                    maxMessageBytes: limits.maxMessageBytes,
                                    id: accepted?.id ?? .next(),
                                    onOpen: accepted?.then,
                                    sweeper: self.sweeper(for: channel.eventLoop)
                                )
                            )
                        }
                    }
                )
                return channel.eventLoop.makeCompletedFuture {
                    let router = HTTPRequestRouter(settings: settings, gateway: gateway, fileThreadPool: pool, logger: logger)
                    let boundRouter = NIOLoopBound(router, eventLoop: channel.eventLoop)
                    let deadline = HTTPDeadlineHandler(
                        requestTimeout: .nanoseconds(Int64(http.requestTimeoutS * 1e9)),
                        keepaliveTimeout: .nanoseconds(Int64(http.keepaliveTimeoutS * 1e9)),
                        logger: logger,
                        onTimeout: { gateway.metrics.httpRequestTimedOut() }
                    )
                    let boundDeadline = NIOLoopBound(deadline, eventLoop: channel.eventLoop)
                    try channel.pipeline.syncOperations.addHandler(deadline)
                    // Outbound header validation is off: every response header is written by HTTPRequestRouter
                    // from constants and numbers, never from request input (it cost 8% of a publish).
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (
                            upgraders: [upgrader],
                            completionHandler: { context in
                                context.pipeline.syncOperations.removeHandler(boundRouter.value, promise: nil)
                                context.pipeline.syncOperations.removeHandler(boundDeadline.value, promise: nil)
                            }
                        ),
                        withErrorHandling: true,
                        withOutboundHeaderValidation: false
                    )
                    try channel.pipeline.syncOperations.addHandler(router)
                }
            }
    }

    /// Why an upgrade is refused before the connect hook is asked: a browser origin not allowed, or the
    /// node's connection cap reached. Each refusal is answered by the HTTP router (403, 503) and logged there.
    private static func refusal(head: HTTPRequestHead, origins: OriginPolicy, maxConnections: Int, gateway: Gateway) -> ServerError? {
        if let origin = head.headers.first(name: "origin"), !origins.allows(origin: origin, host: head.headers.first(name: "host")) {
            return .originNotAllowed(origin)
        }
        if gateway.connectionCount >= maxConnections {
            return .tooManyConnections(limit: maxConnections)
        }
        return nil
    }

    /// Runs the connect hook during the upgrade: on acceptance the upgrade proceeds (the session gets the
    /// hook's id and actions); on refusal or failure the request is answered with the hook's status.
    private static func askConnectHook(
        _ hook: any ConnectHook,
        channel: any Channel,
        head: HTTPRequestHead,
        path: String,
        query: String,
        accepted: NIOLoopBoundBox<AcceptedConnect?>
    ) -> EventLoopFuture<HTTPHeaders?> {
        var headers: [String: String] = [:]
        for name in ["cookie", "authorization", "origin", "user-agent"] {
            let values = head.headers[name]
            if !values.isEmpty { headers[name] = values.joined(separator: "; ") }
        }
        let remote = channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? ""
        let request = ConnectRequest(id: .next(), remoteAddress: remote, path: path, query: query, headers: headers)
        let promise = channel.eventLoop.makePromise(of: ConnectDecision.self)
        hook.connect(request, on: channel.eventLoop) { promise.succeed($0) }
        return promise.futureResult.flatMapThrowing { decision in
            let router = try channel.pipeline.syncOperations.handler(type: HTTPRequestRouter.self)
            switch decision {
            case .accept(let then):
                accepted.value = AcceptedConnect(id: request.id, then: then)
                return HTTPHeaders()
            case .refuse(let status, let reason):
                router.connectRefusal = .connectRefused(status: status, reason: reason)
                return nil
            }
        }
    }
}

/// A connection the connect hook accepted: its id, and the actions to run on its session.
struct AcceptedConnect {
    var id: ConnectionID
    var then: @Sendable (Session) -> Void
}
