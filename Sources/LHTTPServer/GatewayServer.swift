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
/// `/metrics` and static files. A `Service` for swift-service-lifecycle: `run()` binds, serves until a
/// graceful shutdown, then drains (1001 to every websocket) within the ``StopBudget``.
public final class GatewayServer: Service, Sendable {
    private let configuration: GatewayConfig
    private let gateway: Gateway
    private let group: any EventLoopGroup
    private let logger: Logger
    private let metrics: ServerMetrics
    private let budget: StopBudget
    private let fileThreadPool = NIOThreadPool(numberOfThreads: 1)
    private let metricsRegistry: PrometheusCollectorRegistry?
    private let state = NIOLockedValueBox<(channel: (any Channel)?, started: Bool)>((nil, false))
    private let listening: EventLoopPromise<SocketAddress>
    /// The websocket services of each event loop (sweeper, flusher), made on first use on that loop.
    private let loops = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<ConnectionLoop>]>([:])
    /// The app's backend for the reverse proxy (nil: `proxy:` off).
    private let proxyTransport: (any ProxyTransport)?
    /// The listener's certificate and key (nil: plain HTTP); ``reloadCertificates()`` re-reads them.
    public let certificates: TLSCertificates?
    /// The plain listener of `tls.redirect_from`.
    private let redirectChannel = NIOLockedValueBox<(any Channel)?>(nil)

    /// - Parameters:
    ///   - configuration: listen address, paths, limits; `listen` may use port 0 (see ``localAddress``).
    ///   - gateway: the gateway core that connections run through.
    ///   - eventLoopGroup: one loop per core; owned by the caller.
    ///   - metricsRegistry: printed on `metrics.path`; every module's metrics must record into it.
    ///   - budget: the graceful stop's time, shared with the steps after the drain.
    ///   - proxyTransport: where `proxy:` sends what lhttpd does not serve (nil: 404 as without a proxy).
    ///   - certificates: `tls:`, read (nil: plain HTTP).
    public init(
        configuration: GatewayConfig,
        gateway: Gateway,
        eventLoopGroup: any EventLoopGroup,
        metrics: ServerMetrics,
        metricsRegistry: PrometheusCollectorRegistry? = nil,
        budget: StopBudget,
        proxyTransport: (any ProxyTransport)? = nil,
        certificates: TLSCertificates? = nil,
        logger: Logger
    ) {
        self.proxyTransport = configuration.proxy.isEnabled ? proxyTransport : nil
        self.certificates = certificates
        self.metricsRegistry = metricsRegistry
        self.configuration = configuration
        self.gateway = gateway
        self.group = eventLoopGroup
        self.metrics = metrics
        self.budget = budget
        self.logger = logger
        self.listening = eventLoopGroup.any().makePromise(of: SocketAddress.self)
    }

    deinit {
        // A started server completed the promise itself; completing it again would schedule on a loop that
        // may be shut down by now.
        if !self.state.withLockedValue({ $0.started }) {
            self.listening.fail(ServerError.bindFailed("server gone before it listened"))
        }
    }

    /// The bound address once ``start()`` returned.
    public var localAddress: SocketAddress? {
        self.state.withLockedValue { $0.channel?.localAddress }
    }

    /// The address of the `tls.redirect_from` listener, once started.
    public var redirectAddress: SocketAddress? {
        self.redirectChannel.withLockedValue { $0?.localAddress }
    }

    /// Re-reads `tls.cert_file` and `tls.key_file` (SIGHUP): new connections get the new certificate, open
    /// ones keep theirs. A file that does not load leaves the current certificate in place and throws.
    public func reloadCertificates() throws {
        try self.certificates?.reload()
    }

    /// Waits until the server listens (``run()`` binds first), and returns the bound address.
    public func waitUntilListening() async throws -> SocketAddress {
        try await self.listening.futureResult.get()
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
            let failure = ServerError.bindFailed("\(listen): \(error)")
            self.listening.fail(failure)
            throw failure
        }
        self.state.withLockedValue { $0.channel = channel }
        guard let address = channel.localAddress else {
            self.listening.fail(ServerError.bindFailed("no local address"))
            throw ServerError.bindFailed("no local address")
        }
        self.logger.info(
            "lhttpd listening",
            metadata: ["lhttp.address": "\(listen.host)", "lhttp.port": "\(address.port ?? 0)", "lhttp.tls": "\(self.certificates != nil)"]
        )
        if let redirect = self.configuration.tls.redirectFrom, self.certificates != nil {
            do {
                let plain = try await HTTPSRedirect.bootstrap(
                    group: self.group, httpsPort: address.port ?? 443,
                    requestTimeout: TimeAmount(.seconds(self.configuration.http.requestTimeoutS)), logger: self.logger
                )
                    .bind(host: redirect.host, port: redirect.port).get()
                self.redirectChannel.withLockedValue { $0 = plain }
                self.logger.info("redirecting plain HTTP to https", metadata: ["lhttp.address": "\(redirect.host)", "lhttp.port": "\(plain.localAddress?.port ?? 0)"])
            } catch {
                try? await channel.close()
                try? await self.fileThreadPool.shutdownGracefully()
                let failure = ServerError.bindFailed("tls.redirect_from \(redirect): \(error)")
                self.listening.fail(failure)
                throw failure
            }
        }
        self.listening.succeed(address)
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
        try? await self.redirectChannel.withLockedValue({ channel in defer { channel = nil }; return channel })?.close()
        for loop in self.loops.withLockedValue({ Array($0.values) }) {
            try? await loop.eventLoop.submit { loop.value.sweeper.stop() }.get()
        }
        try await self.fileThreadPool.shutdownGracefully()
    }

    /// Graceful stop, step one: stops accepting, sends close 1001 "going away" to every websocket, and
    /// waits (up to `timeout` on the budget's clock) until their sessions are closed (their disconnect
    /// hooks have been started). - Returns: the connections still open when the wait ended (0 normally).
    @discardableResult
    public func drain(timeout: Duration) async -> Int {
        let listener = self.state.withLockedValue { $0.channel }
        try? await listener?.close()
        for loop in self.loops.withLockedValue({ Array($0.values) }) {
            try? await loop.eventLoop.submit {
                loop.value.sweeper.closeAll(code: .goingAway, reason: "server shutting down")
            }.get()
        }
        _ = await self.gateway.waitUntilNoConnections(timeout: timeout, clock: self.budget.clock)
        return self.gateway.connectionCount
    }

    /// `Service.run`: starts (if needed), serves until graceful shutdown is requested, then drains
    /// within the stop budget (counted from now: the signal) and stops.
    public func run() async throws {
        if self.state.withLockedValue({ !$0.started }) {
            try await self.start()
        }
        try? await gracefulShutdown()
        self.logger.info("lhttpd shutting down: closing every websocket with 1001")
        self.budget.start()
        let left = await self.drain(timeout: self.budget.remaining)
        if left > 0 { self.logger.warning("connections still open after shutdown_timeout_s", metadata: ["lhttp.connections": "\(left)"]) }
        try await self.stop()
    }

    /// The websocket services of `eventLoop` (call on that loop).
    private func connectionLoop(for eventLoop: any EventLoop) -> ConnectionLoop {
        let key = ObjectIdentifier(eventLoop)
        if let existing = self.loops.withLockedValue({ $0[key] }) { return existing.value }
        let websocket = self.configuration.websocket
        let loop = ConnectionLoop(eventLoop: eventLoop, pingIntervalS: websocket.pingIntervalS, idleTimeoutS: websocket.idleTimeoutS)
        self.loops.withLockedValue { $0[key] = NIOLoopBound(loop, eventLoop: eventLoop) }
        return loop
    }

    private func bootstrap() -> ServerBootstrap {
        let configuration = self.configuration
        let limits = configuration.limits
        var bootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(
                .writeBufferWaterMark,
                value: .init(low: max(limits.maxOutboundBytes / 2, 1), high: max(limits.maxOutboundBytes, 2))
            )
        if limits.socketSendBufferBytes > 0 {
            // The kernel's share of a slow client's memory, next to max_outbound_bytes in NIO's buffer.
            bootstrap = bootstrap.childChannelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(limits.socketSendBufferBytes))
        }
        let pipeline = ConnectionPipeline(
            configuration: configuration, gateway: self.gateway, metrics: self.metrics, metricsRegistry: self.metricsRegistry,
            fileThreadPool: self.fileThreadPool, logger: self.logger, loop: { self.connectionLoop(for: $0) },
            deduplication: configuration.publish.idempotencyWindowS > 0
                ? PublishDeduplication(window: TimeAmount(.seconds(configuration.publish.idempotencyWindowS)), maxKeys: configuration.publish.idempotencyMaxKeys)
                : nil,
            proxy: self.proxyTransport.map { transport in
                HTTPProxyHandler.Settings(
                    configuration.proxy, transport: transport, scheme: self.certificates == nil ? "http" : "https",
                    authentication: self.gateway.authentication
                )
            },
            tls: self.certificates
        )
        return bootstrap.childChannelInitializer { channel in pipeline.configure(channel) }
    }
}
