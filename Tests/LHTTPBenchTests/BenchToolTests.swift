import Foundation
import NIOPosix
import LHTTPBench
import LHTTPConfig
import LHTTPTestSupport
import Testing

/// `lhttp-bench` must not rot: run its scenarios once, tiny, against a real server, and check the JSON
/// lines report every delivery arriving intact.
@Suite("lhttp-bench smoke")
struct BenchToolTests {
    struct Line: Decodable {
        var scenario: String
        var ok: Bool
        var lost: Int
        var duplicates: Int
        var corrupted: Int
        var errors: Int
        var metrics: [String: Double]
    }

    static var binary: URL {
        ChildProcess.built("lhttp-bench")
    }

    func run(_ arguments: [String], port: Int) async throws -> Line {
        let child = try ChildProcess(arguments + ["--port", String(port), "--timeout", "30"], binary: Self.binary)
        let status = try await child.exitStatus(timeout: .seconds(60))
        let json = try #require(child.text.split(separator: "\n").first { $0.hasPrefix("{") }, "no JSON line in:\n\(child.text)")
        let line = try JSONDecoder().decode(Line.self, from: Data(json.utf8))
        #expect(status == 0, "exit status \(status): \(child.text)")
        return line
    }

    @Test func fanoutReportsEveryDeliveryIntact() async throws {
        try await TestServer.with { server in
            let line = try await run(["fanout", "--subscribers", "10", "--messages", "100", "--window", "8"], port: server.port)
            #expect(line.scenario == "fanout")
            #expect(line.ok)
            #expect(line.lost == 0 && line.duplicates == 0 && line.corrupted == 0 && line.errors == 0)
            #expect(line.metrics["deliveries"] == 1000)
        }
    }

    @Test func fanoutToAChannelWithHistoryReportsEveryDeliveryIntact() async throws {
        try await TestServer.with({ $0.channels = [ChannelOptionsConfig(prefix: "hist-", historySize: 100)] }) { server in
            for mode in [["--publishers", "2"], ["--publisher", "websocket"]] {
                let line = try await run(
                    ["fanout", "--subscribers", "10", "--messages", "100", "--window", "8", "--channel", "hist-fanout"] + mode, port: server.port
                )
                #expect(line.ok, "\(mode)")
                #expect(line.lost == 0 && line.duplicates == 0 && line.corrupted == 0 && line.errors == 0, "\(mode)")
                #expect(line.metrics["deliveries"] == 1000)
            }
            // The deliveries were stamped and kept: the channel holds its last 100.
            #expect(server.gateway.history?.store.stats.messages == 100)
        }
    }

    @Test func clusterFanoutReportsEveryDeliveryIntactAcrossTwoNodes() async throws {
        let nats = try await NATSServerProcess()
        try await TestServer.withNodes(nats) { a, b in
            let line = try await run(
                ["fanout", "--subscribers", "10", "--messages", "100", "--window", "8",
                 "--subscriber-port", String(a.port), "--subscriber-port", String(b.port)],
                port: a.port
            )
            #expect(line.scenario == "fanout-cluster")
            #expect(line.ok)
            #expect(line.lost == 0 && line.duplicates == 0 && line.corrupted == 0 && line.errors == 0)
            #expect(line.metrics["deliveries"] == 1000)
            // Half the subscribers were on b: the deliveries crossed NATS.
            #expect((b.cluster?.client.currentStatus.receivedMessages ?? 0) >= 100)
        }
    }

    @Test func soakLosesNothingForConnectedClientsAndClosesStalledOnes() async throws {
        try await TestServer.with({ $0.limits.maxOutboundBytes = 16 * 1024 }) { server in
            let line = try await run(
                ["soak", "--connections", "200", "--channels", "10", "--seconds", "3", "--rate", "300", "--churn", "20",
                 "--stalled", "2", "--server-pid", String(ProcessInfo.processInfo.processIdentifier)],
                port: server.port
            )
            #expect(line.scenario == "soak")
            #expect(line.ok)
            #expect(line.lost == 0 && line.duplicates == 0 && line.corrupted == 0 && line.errors == 0)
            #expect((line.metrics["reconnects"] ?? 0) >= 10)
            #expect(line.metrics["stalled_closed"] == 2)
            // Deliveries happened (how many a busy machine manages in 3 s is the benchmark's business).
            #expect((line.metrics["deliveries"] ?? 0) > 0)
        }
    }

    @Test func publishRateAndSeedReportEveryDeliveryIntact() async throws {
        try await TestServer.with { server in
            let rps = try await run(["publish-rps", "--workers", "4", "--requests", "200", "--subscribers", "3"], port: server.port)
            #expect(rps.ok)
            #expect(rps.metrics["deliveries"] == 600)
            let seed = try await run(["seed", "--messages", "500"], port: server.port)
            #expect(seed.ok)
            #expect(seed.lost == 0)
        }
    }

    @Test func idleConnectionsMeasuresThisProcess() async throws {
        try await TestServer.with { server in
            let line = try await run(
                ["idle-conns", "--connections", "50", "--server-pid", String(ProcessInfo.processInfo.processIdentifier)],
                port: server.port
            )
            #expect(line.ok)
            #expect(line.lost == 0)
            #expect(line.metrics["rss_after_kib"] ?? 0 > 0)
        }
    }
}

extension BenchToolTests {
    @Test func upstreamForwardsEveryMessage() async throws {
        // A port for the bench's backend, reserved and released: lhttpd must allow it before the bench binds it.
        // The bench's backend binds the port the route names (``FreePort``).
        let backendPort = try FreePort.next()
        try await TestServer.with({ $0.upstream.allow = ["http://127.0.0.1:\(backendPort)/"] }) { server in
            let line = try await run(
                ["upstream", "--messages", "200", "--in-flight", "4", "--backend-port", String(backendPort)],
                port: server.port
            )
            #expect(line.ok)
            #expect(line.lost == 0)
            #expect(line.metrics["messages_per_s"] ?? 0 > 0)
            #expect(line.metrics["direct_messages_per_s"] ?? 0 > 0)
        }
    }
}

extension BenchToolTests {
    @Test func webhookRoundTripsAllComeBack() async throws {
        let probe = try await NIOPosix.ServerBootstrap(group: NIOPosix.MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let backendPort = probe.localAddress?.port ?? 0
        try await probe.close()
        try await TestServer.with({ $0.routes = ["hook": RouteConfig(url: "http://127.0.0.1:\(backendPort)/hook")] }) { server in
            let line = try await run(
                ["webhook", "--messages", "200", "--in-flight", "4", "--backend-port", String(backendPort)],
                port: server.port
            )
            #expect(line.ok)
            #expect(line.lost == 0)
            #expect(line.metrics["messages_per_s"] ?? 0 > 0)
        }
    }
}

extension BenchToolTests {
    @Test func fanoutWithIndependentAndWebsocketPublishersReportsEveryDeliveryIntact() async throws {
        try await TestServer.with { server in
            for mode in [["--publishers", "3"], ["--publisher", "websocket"]] {
                let line = try await run(["fanout", "--subscribers", "10", "--messages", "200", "--window", "16"] + mode, port: server.port)
                #expect(line.ok, "\(mode)")
                #expect(line.lost == 0 && line.duplicates == 0 && line.corrupted == 0 && line.errors == 0)
                #expect(line.metrics["deliveries"] == 2000)
            }
        }
    }

    @Test func natsFanoutOverTheWebsocketListener() async throws {
        let websocketPort = try await NATSServerProcess.freePort()
        let nats = try await NATSServerProcess(extraConfig: "websocket { host: 127.0.0.1, port: \(websocketPort), no_tls: true }\n")
        defer { nats.stop() }
        let line = try await run(
            ["fanout", "--dialect", "nats", "--publisher", "websocket", "--subscribers", "10", "--messages", "200", "--window", "16"],
            port: websocketPort
        )
        #expect(line.ok)
        #expect(line.lost == 0 && line.duplicates == 0 && line.corrupted == 0 && line.errors == 0)
        #expect(line.metrics["deliveries"] == 2000)
        // NATS takes no HTTP publish: refused before connecting, with a message that says what to use.
        let refused = try ChildProcess(["fanout", "--dialect", "nats", "--publishers", "4", "--port", String(websocketPort)], binary: Self.binary)
        #expect(try await refused.exitStatus(timeout: .seconds(30)) != 0)
        #expect(refused.text.contains("--publisher websocket"))
    }
}

extension BenchToolTests {
    /// Presence on the rooms, no grace: every cycle is a join and a leave for the room's watchers, and the
    /// rooms are empty of users at the end.
    @Test func churnWithPresenceCountsTheJoinsAndLeaves() async throws {
        try await TestServer.with({ config in
            config.auth = AuthConfig(jwt: JWTConfig(hmacSecret: TestToken.secret))
            config.channels = [ChannelOptionsConfig(prefix: "room-", presence: true, joinLeave: true, leaveGraceS: 0)]
        }) { server in
            let line = try await run(
                ["churn", "--workers", "4", "--connects", "200", "--seconds", "10", "--rooms", "2", "--watchers", "2",
                 "--jwt-secret", TestToken.secret],
                port: server.port
            )
            #expect(line.scenario == "churn")
            #expect(line.ok)
            #expect(line.errors == 0)
            #expect((line.metrics["cycles"] ?? 0) > 0)
            #expect((line.metrics["events"] ?? 0) > 0)
            #expect(line.metrics["presence"] == 1)
            #expect(line.metrics["users_left"] == 0)
        }
    }
}

extension BenchToolTests {
    /// The `proxy` scenario against lhttpd's reverse proxy in front of the bench's own backend (in this process):
    /// both phases run, every response checked byte for byte.
    @Test func proxyScenarioChecksEveryResponseThroughLhttpd() async throws {
        let backend = try await LHTTPBench.ProxyBackend.start(group: NIOPosix.MultiThreadedEventLoopGroup.singleton, port: 0)
        let backendPort = backend.localAddress?.port ?? 0
        do {
            try await TestServer.with({ config in
                config.websocket.paths = ["/ws"]
                config.proxy.backend = "http://127.0.0.1:\(backendPort)"
            }) { server in
                let line = try await run(
                    ["proxy", "--connections", "4", "--seconds", "1", "--warm-up-seconds", "0",
                     "--large-clients", "2", "--large-bytes", String(3 << 20), "--large-rounds", "2"],
                    port: server.port
                )
                #expect(line.scenario == "proxy")
                #expect(line.ok)
                #expect(line.lost == 0 && line.corrupted == 0 && line.errors == 0)
                #expect((line.metrics["requests"] ?? 0) > 0)
                #expect((line.metrics["mb_per_s"] ?? 0) > 0)
            }
        } catch {
            try? await backend.close()
            throw error
        }
        try await backend.close()
    }
}
