import LHTTPApp
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
import ServiceLifecycle

/// A real lhttpd node on 127.0.0.1, port 0, for one test: the executable's own wiring (``Application``)
/// run as a ServiceGroup, and stopped the way a signal stops it (a graceful shutdown: drain, calls in
/// flight, cluster link).
struct TestServer {
    let application: Application
    let port: Int
    private let run: Task<Void, any Error>
    private let group: ServiceGroup

    var server: GatewayServer { self.application.server }
    var gateway: Gateway { self.application.gateway }
    var upstream: CurlHTTPClient { self.application.upstreamClient }
    var webhookClient: CurlHTTPClient? { self.application.webhookClient }
    /// The NATS broker when `cluster.nats` is configured.
    var cluster: NATSBroker? { self.application.cluster }

    static func start(
        _ configure: (inout GatewayConfig) -> Void = { _ in },
        processors: [String: any LHTTPProcessor] = [:]
    ) async throws -> TestServer {
        var configuration = GatewayConfig(listen: ListenAddress(host: "127.0.0.1", port: 0))
        configure(&configuration)
        var logger = Logger(label: "lhttpd.test")
        logger.logLevel = .error  // every rejection is a warning: the tests make many on purpose
        let application = try Application(
            configuration: configuration, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger, processors: processors
        )
        let group = ServiceGroup(services: application.services, logger: logger)
        let run = Task { try await group.run() }
        do {
            let address = try await application.server.waitUntilListening()
            return TestServer(application: application, port: address.port ?? 0, run: run, group: group)
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await run.value
            throw error
        }
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

    /// A graceful shutdown, as SIGTERM does it; returns when every service has stopped.
    func stop() async throws {
        await self.group.triggerGracefulShutdown()
        try await self.run.value
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
