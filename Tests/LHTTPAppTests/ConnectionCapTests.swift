import LHTTPClient
import LHTTPConfig
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import NIOConcurrencyHelpers
import Testing

/// Issue 13, finding 3: `limits.max_connections` is exact under parallel upgrades and slow connect hooks,
/// and every path that ends an upgrade gives its slot back.
@Suite("Connection cap")
struct ConnectionCapTests {
    /// Outcomes of `count` upgrades started at once: the clients that got a websocket, and how many were refused with 503.
    static func upgradeAtOnce(_ server: TestServer, count: Int, refused: NIOLockedValueBox<Int>? = nil) async throws -> (clients: [LHTTPWebSocketClient], refused: Int) {
        try await withThrowingTaskGroup(of: LHTTPWebSocketClient?.self) { group in
            for _ in 0..<count {
                group.addTask {
                    do {
                        // A generous bound: 40 upgrades at once on a debug build sharing 2 cores with the suite.
                        return try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: server.port, path: "/", timeout: .seconds(60))
                    } catch LHTTPClientError.upgradeFailed(status: 503) {
                        refused?.withLockedValue { $0 += 1 }
                        return nil
                    }
                }
            }
            var clients: [LHTTPWebSocketClient] = []
            var refusedCount = 0
            for try await client in group {
                if let client { clients.append(client) } else { refusedCount += 1 }
            }
            return (clients, refusedCount)
        }
    }

    @Test func parallelUpgradesNeverExceedTheCap() async throws {
        try await TestServer.with({ $0.limits.maxConnections = 5 }) { server in
            let (clients, refused) = try await Self.upgradeAtOnce(server, count: 40)
            #expect(clients.count == 5)
            #expect(refused == 35)
            #expect(server.gateway.connectionSlots.inUse == 5)
            // Each admitted one works.
            for client in clients { try await server.roundTrip(client) }
            for client in clients { try await client.close() }
            try await server.eventually { server.gateway.connectionSlots.inUse == 0 && server.gateway.connectionCount == 0 }
            let again = try await server.client()
            try await again.close()
        }
    }

    /// The slot is taken before the connect hook is asked: with the hook holding its answers, 5 of 40
    /// parallel upgrades reach it and the 35 others are refused at once (before, every one reached it).
    @Test func aSlowConnectHookCannotLetMoreThanTheCapThrough() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await TestServer.with({ config in
            config.limits.maxConnections = 5
            config.hooks.connect = "http://127.0.0.1:\(backend.port)/hold"
        }) { server in
            let refusedSoFar = NIOLockedValueBox(0)
            async let outcome = Self.upgradeAtOnce(server, count: 40, refused: refusedSoFar)
            // Every upgrade beyond the cap is answered while the hook still holds the five others.
            try await server.eventually(timeout: .seconds(60)) { refusedSoFar.withLockedValue { $0 } == 35 }
            _ = try await backend.waitForRequests(5, timeout: .seconds(60))
            #expect(backend.requests.count == 5, "only upgrades holding a slot reach the hook")
            #expect(backend.releaseHeld() == 5)
            let (clients, refused) = try await outcome
            #expect(clients.count == 5)
            #expect(refused == 35)
            #expect(backend.requests.count == 5)
            for client in clients { try await client.close() }
            try await server.eventually { server.gateway.connectionSlots.inUse == 0 }
        }
    }

    /// The request clock stops once an upgrade's head is whole: a connect hook that holds its answer
    /// longer than `http.request_timeout_s` still lets the client in (no 408 for the app's own time).
    @Test func aConnectHookSlowerThanTheRequestTimeoutIsNotA408() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await TestServer.with({ config in
            // Long enough that a busy machine (the whole suite in parallel on 2 cores) still reads the
            // upgrade's head within it; the silent connection below waits that long.
            config.http.requestTimeoutS = 1.5
            config.hooks.connect = "http://127.0.0.1:\(backend.port)/hold"
        }) { server in
            async let held = server.client()
            _ = try await backend.waitForRequests(1)
            // A connection opened after the hook got its request is cut with 408 after the timeout: by
            // then the held upgrade has waited longer than the timeout too.
            let silent = try await RawConnection.connect(port: server.port)
            try await server.eventually { silent.isClosed }
            #expect(silent.text.hasPrefix("HTTP/1.1 408"))
            #expect(backend.releaseHeld() == 1)
            let client = try await held
            #expect(try await client.nextMessage().command == "connect", "the hook's answer, delivered once in")
            try await server.roundTrip(client)
            try await client.close()
        }
    }

    /// A refusal by the hook and a client that leaves before the hook answered both give the slot back.
    @Test func everyEndOfAnUpgradeGivesItsSlotBack() async throws {
        let backend = try await TestBackend.start { request in
            request.body.contains("\"refuse\"") ? .init(status: 403) : nil
        }
        defer { Task { await backend.stop() } }
        try await TestServer.with({ config in
            config.limits.maxConnections = 1
            config.hooks.connect = "http://127.0.0.1:\(backend.port)/hold"
        }) { server in
            // Refused by the app (the hook sees the query: `?refuse` answers 403).
            await #expect(throws: LHTTPClientError.upgradeFailed(status: 403)) { _ = try await server.client(path: "/?refuse") }
            #expect(server.gateway.connectionSlots.inUse == 0)

            // Gone while the hook holds the answer: the slot is back once the answer comes.
            let raw = try await RawConnection.connect(port: server.port)
            try await raw.send("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            _ = try await backend.waitForRequests(2)
            #expect(server.gateway.connectionSlots.inUse == 1)
            try await raw.close()
            backend.releaseHeld()
            try await server.eventually { server.gateway.connectionSlots.inUse == 0 }

            // The one slot is free for the next client.
            async let next = server.client()
            _ = try await backend.waitForRequests(3)
            backend.releaseHeld()
            let client = try await next
            try await server.eventually { server.gateway.connectionCount == 1 }
            await #expect(throws: LHTTPClientError.upgradeFailed(status: 503)) { _ = try await server.client() }
            try await client.close()
            try await server.eventually { server.gateway.connectionSlots.inUse == 0 }
        }
    }
}
