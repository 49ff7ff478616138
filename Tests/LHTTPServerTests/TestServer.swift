import LHTTPClient
import LHTTPConfig
import LHTTPGateway
import LHTTPNATS
import LHTTPProtocol
import LHTTPServer
import LHTTPTestSupport
import LHTTPUpstream
import Logging
import NIOCore
import NIOPosix
import Prometheus

/// A real lhttpd server on 127.0.0.1, port 0, for one test.
struct TestServer {
    let server: GatewayServer
    let gateway: Gateway
    let upstream: CurlHTTPClient
    let webhookClient: CurlHTTPClient?
    /// The NATS broker when `cluster.nats` is configured.
    let cluster: NATSBroker?
    let port: Int

    static func start(
        _ configure: (inout GatewayConfig) -> Void = { _ in },
        processors: [String: any LHTTPProcessor] = [:]
    ) async throws -> TestServer {
        var configuration = GatewayConfig(listen: ListenAddress(host: "127.0.0.1", port: 0))
        configure(&configuration)
        var logger = Logger(label: "lhttpd.test")
        logger.logLevel = .error  // every rejection is a warning: the tests make many on purpose
        let (filter, upstream) = try UpstreamFilter.make(configuration.upstream, logger: logger)
        let limits = LHTTPLimits(configuration.limits)
        let registry = PrometheusCollectorRegistry()
        let metrics = LHTTPMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let webhooks = Webhooks.make(configuration, limits: limits, metrics: metrics, logger: logger)
        let hub = Hub()
        let cluster = configuration.cluster.isEnabled
            ? try NATSBroker(
                hub: hub, configuration: configuration.cluster, eventLoop: MultiThreadedEventLoopGroup.singleton.next(), metrics: metrics, logger: logger
            )
            : nil
        cluster?.start()
        let gateway = Gateway(
            limits: limits,
            processors: processors,
            filters: webhooks.filters,
            filtersAfterPubSub: [filter],
            router: webhooks.router,
            connectHook: webhooks.connectHook,
            maxQueuedWhileRouting: configuration.webhook.maxQueuedPerConnection,
            caps: SubscriptionCaps(configuration.limits),
            hub: hub,
            broker: { hub -> any Broker in
                if let cluster { return cluster }
                return LocalBroker(hub: hub)
            },
            metrics: metrics,
            logger: logger
        )
        let server = GatewayServer(
            configuration: configuration,
            gateway: gateway,
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            metricsRegistry: registry,
            logger: logger
        )
        let address = try await server.start()
        return TestServer(
            server: server, gateway: gateway, upstream: upstream, webhookClient: webhooks.client, cluster: cluster, port: address.port ?? 0
        )
    }

    /// Runs `body` with a fresh server and stops the server afterwards, also when `body` throws.
    @discardableResult
    static func with<T>(
        _ configure: (inout GatewayConfig) -> Void = { _ in },
        processors: [String: any LHTTPProcessor] = [:],
        _ body: (TestServer) async throws -> T
    ) async throws -> T {
        let server = try await start(configure, processors: processors)
        do {
            let result = try await body(server)
            try await server.stop()
            return result
        } catch {
            try? await server.stop()
            throw error
        }
    }

    func stop() async throws {
        try await self.server.stop()
        await self.cluster?.shutdown()
        await self.upstream.shutdown()
        await self.webhookClient?.shutdown()
    }

    func client(path: String = "/") async throws -> LHTTPWebSocketClient {
        try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: self.port, path: path)
    }

    func publisher() async throws -> HTTPPublisher {
        try await HTTPPublisher.connect(host: "127.0.0.1", port: self.port)
    }

    /// Subscribes `client` and waits until the hub has the subscription (a round trip proves it).
    func subscribe(_ client: LHTTPWebSocketClient, _ channels: String) async throws {
        try await client.send(LHTTPMessage(command: "sub", headers: ["subscribe": channels]))
        try await self.roundTrip(client)
    }

    /// Waits until every message `client` sent before has been processed: the server answers an
    /// unknown-version message with an error reply, in order.
    func roundTrip(_ client: LHTTPWebSocketClient) async throws {
        try await client.sendText("LHTTP/9.9 sync\r\n\r\n")
        let reply = try await client.nextMessage()
        guard reply.command == "error", reply.headers["status"] == "505" else {
            throw TestFailure("expected the sync reply, got \(reply)")
        }
    }

    /// Polls `condition` every 10 ms for up to `timeout` (for effects with no message to await, e.g. counts
    /// after a client vanished).
    func eventually(timeout: Duration = .seconds(5), _ condition: () -> Bool) async throws {
        try await LHTTPTestSupport.eventually(timeout: timeout, condition)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
