import LHTTPApp
import LHTTPClient
import LHTTPConfig
import LHTTPGateway
import LHTTPNATS
import LHTTPProtocol
import LHTTPServer
import LHTTPUpstream
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A real lhttpd node on 127.0.0.1, port 0, for one test: the executable's own wiring (``Application``)
/// run as a ServiceGroup, and stopped the way a signal stops it (a graceful shutdown: drain, calls in
/// flight, cluster link).
public struct TestServer: Sendable {
    public let application: Application
    public let port: Int
    private let run: Task<Void, any Error>
    private let group: ServiceGroup
    /// The node's own event loops: a test that holds a loop (a big batch, a debug build's slow path) holds
    /// up only its own server, not every other test's (they shared the process's singleton group before).
    private let loops: MultiThreadedEventLoopGroup

    public var server: GatewayServer { self.application.server }
    public var gateway: Gateway { self.application.gateway }
    public var upstream: CurlHTTPClient { self.application.upstreamClient }
    public var webhookClient: CurlHTTPClient? { self.application.webhookClient }
    /// The NATS broker when `cluster.nats` is configured.
    public var cluster: NATSBroker? { self.application.cluster }

    public static func start(
        _ configure: (inout GatewayConfig) -> Void = { _ in },
        processors: [String: any LHTTPProcessor] = [:]
    ) async throws -> TestServer {
        var configuration = GatewayConfig(listen: ListenAddress(host: "127.0.0.1", port: 0))
        // Backend calls get room on a busy (or sanitized) machine; a test of timeouts sets its own.
        configuration.upstream.timeoutMs = 15_000
        configuration.webhook.timeoutMs = 15_000
        configure(&configuration)
        var logger = Logger(label: "lhttpd.test")
        logger.logLevel = .error  // every rejection is a warning: the tests make many on purpose
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let application: Application
        do {
            application = try Application(configuration: configuration, eventLoopGroup: loops, logger: logger, processors: processors)
        } catch {
            try? await loops.shutdownGracefully()
            throw error
        }
        let group = ServiceGroup(services: application.services, logger: logger)
        let run = Task { try await group.run() }
        do {
            let address = try await application.server.waitUntilListening()
            return TestServer(application: application, port: address.port ?? 0, run: run, group: group, loops: loops)
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await run.value
            try? await loops.shutdownGracefully()
            throw error
        }
    }

    /// Runs `body` with a fresh server and stops the server afterwards, also when `body` throws.
    @discardableResult
    public static func with<T>(
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

    /// A graceful shutdown, as SIGTERM does it; returns when every service has stopped.
    public func stop() async throws {
        await self.group.triggerGracefulShutdown()
        let result = await self.run.result
        try? await self.loops.shutdownGracefully()
        try result.get()
    }

    public func client(path: String = "/") async throws -> LHTTPWebSocketClient {
        try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: self.port, path: path)
    }

    public func publisher() async throws -> HTTPPublisher {
        try await HTTPPublisher.connect(host: "127.0.0.1", port: self.port)
    }

    /// Subscribes `client` and waits until the hub has the subscription (a round trip proves it).
    public func subscribe(_ client: LHTTPWebSocketClient, _ channels: String) async throws {
        try await client.send(LHTTPMessage(command: "sub", headers: ["subscribe": channels]))
        try await self.roundTrip(client)
    }

    /// Waits until every message `client` sent before has been processed: the server answers an
    /// unknown-version message with an error reply, in order.
    public func roundTrip(_ client: LHTTPWebSocketClient) async throws {
        try await client.sendText("LHTTP/9.9 sync\r\n\r\n")
        let reply = try await client.nextMessage()
        guard reply.command == "error", reply.headers["status"] == "505" else {
            throw TestFailure("expected the sync reply, got \(reply)")
        }
    }

    /// Polls `condition` every 10 ms for up to `timeout` (for effects with no message to await, e.g. counts
    /// after a client vanished).
    public func eventually(timeout: Duration = .seconds(20), _ condition: () -> Bool) async throws {
        try await LHTTPTestSupport.eventually(timeout: timeout, condition)
    }
}

extension TestServer {
    /// The node's NATS link is up.
    public var isClustered: Bool { self.cluster?.client.currentStatus.state == .connected }

    /// Two nodes `a` and `b` clustered through `nats`, both linked before `body` runs.
    public static func withNodes(
        _ nats: NATSServerProcess,
        configure: @escaping (inout GatewayConfig) -> Void = { _ in },
        _ body: (TestServer, TestServer) async throws -> Void
    ) async throws {
        func node(_ id: String) -> (inout GatewayConfig) -> Void {
            { config in
                config.cluster = ClusterConfig(nats: [nats.url], nodeID: id, reconnectMinMs: 20, reconnectMaxMs: 200)
                configure(&config)
            }
        }
        try await TestServer.with(node("a")) { a in
            try await TestServer.with(node("b")) { b in
                do {
                    try await LHTTPTestSupport.eventually { a.isClustered && b.isClustered }
                } catch {
                    let status = { (node: TestServer) in node.cluster.map { "\($0.client.currentStatus)" } ?? "none" }
                    throw TestFailure("nodes not clustered: a \(status(a)), b \(status(b)), nats at \(nats.url)")
                }
                try await body(a, b)
            }
        }
    }
}
