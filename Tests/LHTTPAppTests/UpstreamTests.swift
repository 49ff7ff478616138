import LHTTPClient
import LHTTPConfig
import LHTTPProtocol
import LHTTPTestSupport
import LHTTPUpstream
import NIOCore
import NIOPosix
import Testing

@Suite("Upstream through libcurl")
struct UpstreamTests {
    /// Runs `body` with a fresh backend and a server whose `upstream.allow` is the backend.
    func withBackend(
        _ configure: @escaping (inout GatewayConfig, Int) -> Void = { _, _ in },
        _ body: (TestServer, TestBackend) async throws -> Void
    ) async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        try await TestServer.with({ config in
            config.upstream.allow = ["http://127.0.0.1:\(backend.port)/"]
            configure(&config, backend.port)
        }) { server in
            try await body(server, backend)
        }
    }

    /// Waits until `count` upstream calls have completed without error (counted on the connection's loop
    /// as their completion is handled, so whatever they would send is already on its way).
    static func awaitCompleted(_ count: Double, on server: TestServer) async throws {
        let series = #"lhttp_backend_calls_total{kind="upstream",result="ok",route="upstream"}"#
        for _ in 0..<500 {
            if try await MetricsTests.scrape(server).values[series] == count { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestFailure("\(series) never reached \(count)")
    }

    func expectError(_ client: LHTTPWebSocketClient, status: String, url: String? = nil) async throws {
        let reply = try await client.nextMessage(timeout: .seconds(10))
        #expect(reply.command == "error")
        #expect(reply.headers["status"] == status, "\(reply)")
        if let url { #expect(reply.headers["upstream-url"] == url) }
    }

    @Test func postForwardsTheWholeMessageWithHeadersAfterPubSub() async throws {
        try await withBackend { server, backend in
            let client = try await server.client()
            let message = LHTTPMessage(
                command: "chat",
                headers: LHTTPHeaders([("upstream", "POST http://127.0.0.1:\(backend.port)/record?x=1"), ("subscribe", "me"), ("publish", "me")]),
                body: "hello mike,\r\nI am jack"
            )
            try await client.send(message)
            // Pub/sub still ran.
            #expect(try await client.nextMessage().bodyString == "hello mike,\r\nI am jack")
            let request = try #require(try await backend.waitForRequests(1).first)
            #expect(request.method == "POST")
            #expect(request.uri == "/record?x=1")
            #expect(request.body == String(buffer: try message.serialized()))
            #expect(request.header("content-type") == "text/plain; charset=utf-8")
            #expect(request.header("x-lhttp-command") == "chat")
            #expect(Int(request.header("x-lhttp-connection") ?? "") != nil)
            // Fire-and-forget: once the call is done, nothing came back before the next reply.
            try await Self.awaitCompleted(1, on: server)
            try await server.roundTrip(client)
            try await client.close()
        }
    }

    @Test func getAndDeleteSendNoBodyPutAndPatchDo() async throws {
        try await withBackend { server, backend in
            let client = try await server.client()
            for method in ["GET", "DELETE", "PUT", "patch"] {
                try await client.send(LHTTPMessage(command: "c", headers: ["upstream": "\(method) http://127.0.0.1:\(backend.port)/m"], body: "payload"))
            }
            let requests = try await backend.waitForRequests(4)
            let byMethod = Dictionary(requests.map { ($0.method, $0.body) }, uniquingKeysWith: { a, _ in a })
            #expect(byMethod["GET"] == "")
            #expect(byMethod["DELETE"] == "")
            #expect(byMethod["PUT"]?.hasSuffix("payload") == true)
            #expect(byMethod["PATCH"]?.hasSuffix("payload") == true)
            try await client.close()
        }
    }

    @Test func hundredMessagesFromOneConnectionAllArrive() async throws {
        // About delivery, not the per-connection cap (oneConnectionCannotFillTheQueueForEveryone): room for all 100.
        try await withBackend({ config, _ in config.upstream.maxInFlightPerConnection = 100 }) { server, backend in
            let client = try await server.client()
            for index in 0..<100 {
                try await client.send(LHTTPMessage(command: "c", headers: ["upstream": "POST http://127.0.0.1:\(backend.port)/n"], body: "\(index)"))
            }
            let requests = try await backend.waitForRequests(100)
            let bodies = Set(requests.map { LHTTPMessage.bodyOf($0.body) })
            #expect(bodies == Set((0..<100).map(String.init)))
            try await Self.awaitCompleted(100, on: server)
            try await server.roundTrip(client)
            try await client.close()
        }
    }

    @Test func aBackendThatNeverAnswersTimesOutWith504AndTheConnectionGoesOn() async throws {
        try await withBackend({ config, _ in config.upstream.timeoutMs = 300 }) { server, backend in
            let client = try await server.client()
            let url = "http://127.0.0.1:\(backend.port)/hang"
            try await client.send(LHTTPMessage(command: "c", headers: ["upstream": "POST \(url)"]))
            try await expectError(client, status: "504", url: url)
            // The connection goes on.
            try await client.send(LHTTPMessage(command: "c", headers: ["subscribe": "me", "publish": "me"], body: "after"))
            #expect(try await client.nextMessage().bodyString == "after")
            try await client.close()
        }
    }

    @Test func theNextMessageIsProcessedWhileACallIsInFlight() async throws {
        try await withBackend { server, backend in
            let client = try await server.client()
            try await client.send(LHTTPMessage(command: "c", headers: ["upstream": "POST http://127.0.0.1:\(backend.port)/hold"]))
            _ = try await backend.waitForRequests(1)  // held: in flight until released
            try await client.send(LHTTPMessage(command: "c", headers: ["subscribe": "me", "publish": "me"], body: "meanwhile"))
            #expect(try await client.nextMessage().bodyString == "meanwhile")
            #expect(backend.releaseHeld() == 1, "the call was still in flight")
            try await Self.awaitCompleted(1, on: server)
            try await server.roundTrip(client)
            try await client.close()
        }
    }

    @Test func aClosedPortIs502AndA5xxIs502() async throws {
        // Nothing listens there (``FreePort``: no other test is given it).
        let closedPort = try FreePort.next()
        try await withBackend({ config, _ in config.upstream.allow.append("http://127.0.0.1:\(closedPort)/") }) { server, backend in
            let client = try await server.client()
            try await client.send(LHTTPMessage(command: "c", headers: ["upstream": "POST http://127.0.0.1:\(closedPort)/x"]))
            try await expectError(client, status: "502", url: "http://127.0.0.1:\(closedPort)/x")
            try await client.send(LHTTPMessage(command: "c", headers: ["upstream": "POST http://127.0.0.1:\(backend.port)/fail"]))
            try await expectError(client, status: "502")
            try await client.close()
        }
    }

    @Test func disallowedURLsAre403AndTheBackendSeesNothing() async throws {
        try await withBackend { server, backend in
            let client = try await server.client()
            let port = backend.port
            let refused = [
                "POST http://127.0.0.2:\(port)/",  // another host
                "POST http://127.0.0.1:\(port + 1)/",  // another port
                "POST https://127.0.0.1:\(port)/",  // another scheme
                "POST http://127.0.0.1:\(port)@127.0.0.2:\(port)/",  // userinfo trick
                "POST http://user@127.0.0.1:\(port)/",  // userinfo
                "POST http://127.0.0.1:\(port)/%2e%2e/admin",  // encoded dots
                "POST file:///etc/passwd",
                "POST ftp://127.0.0.1:\(port)/",
                "POST gopher://127.0.0.1:\(port)/",
            ]
            for value in refused {
                try await client.send(LHTTPMessage(command: "c", headers: ["upstream": value]))
                try await expectError(client, status: "403")
            }
            // Malformed header values are 400.
            for value in ["POST", "FETCH http://127.0.0.1:\(port)/", "http://127.0.0.1:\(port)/"] {
                try await client.send(LHTTPMessage(command: "c", headers: ["upstream": value]))
                try await expectError(client, status: "400")
            }
            try await server.roundTrip(client)
            #expect(backend.requests.isEmpty)
            try await client.close()
        }
    }

    @Test func anOversizeResponseIs502() async throws {
        try await withBackend({ config, _ in config.upstream.maxResponseBytes = 1024 }) { server, backend in
            let client = try await server.client()
            try await client.send(LHTTPMessage(command: "c", headers: ["upstream": "GET http://127.0.0.1:\(backend.port)/big"]))
            let reply = try await client.nextMessage(timeout: .seconds(10))
            #expect(reply.headers["status"] == "502")
            #expect(reply.headers["reason"] == "upstream response larger than 1024 bytes")
            // Within the limit it is silent.
            try await client.send(LHTTPMessage(command: "c", headers: ["upstream": "GET http://127.0.0.1:\(backend.port)/small"]))
            _ = try await backend.waitForRequests(2)
            try await Self.awaitCompleted(1, on: server)
            try await server.roundTrip(client)
            try await client.close()
        }
    }

    @Test func theHeaderIsRefusedWhenNothingIsAllowed() async throws {
        try await TestServer.with { server in
            let client = try await server.client()
            try await client.send(LHTTPMessage(command: "c", headers: ["upstream": "POST http://127.0.0.1:9/x"]))
            try await expectError(client, status: "403", url: "http://127.0.0.1:9/x")
            try await client.close()
        }
    }

    @Test func queueOverflowIs503() async throws {
        try await withBackend({ config, _ in
            config.upstream.maxInFlight = 1
            config.upstream.maxQueued = 2
        }) { server, backend in
            let client = try await server.client()
            let hold = LHTTPMessage(command: "c", headers: ["upstream": "POST http://127.0.0.1:\(backend.port)/hold"])
            try await client.send(hold)
            _ = try await backend.waitForRequests(1)  // it is in flight, held until released
            for _ in 0..<5 { try await client.send(hold) }
            // One runs, two wait, three overflow at once.
            for _ in 0..<3 { try await expectError(client, status: "503") }
            #expect(server.upstream.stats.rejectedQueueFull == 3)
            // Released, the two queued ones run in turn; nothing else fails.
            #expect(backend.releaseHeld() == 1)
            _ = try await backend.waitForRequests(2)
            #expect(backend.releaseHeld() == 1)
            _ = try await backend.waitForRequests(3)
            #expect(backend.releaseHeld() == 1)
            try await server.roundTrip(client)
            try await client.close()
        }
    }

    @Test func oneConnectionsBurstWaitsForItsOwnSlotsWhileOthersGoOn() async throws {
        try await withBackend({ config, _ in config.upstream.maxInFlightPerConnection = 2 }) { server, backend in
            let greedy = try await server.client()
            let hold = LHTTPMessage(command: "c", headers: ["upstream": "POST http://127.0.0.1:\(backend.port)/hold"])
            for _ in 0..<3 { try await greedy.send(hold) }
            // Two run (the backend holds them); the third waits for a slot: back-pressure, not a refusal.
            _ = try await backend.waitForRequests(2)
            // Another connection still gets its calls through meanwhile.
            let polite = try await server.client()
            try await polite.send(LHTTPMessage(command: "c", headers: ["upstream": "POST http://127.0.0.1:\(backend.port)/ok"], body: "fine"))
            let requests = try await backend.waitForRequests(3)
            #expect(requests.map(\.uri) == ["/hold", "/hold", "/ok"])
            // The held two finish and free their slots: the third goes out.
            #expect(backend.releaseHeld() == 2)
            _ = try await backend.waitForRequests(4)
            #expect(backend.requests.last?.uri == "/hold")
            #expect(backend.releaseHeld() == 1)
            // None of it was refused: the next reply is the sync reply.
            try await server.roundTrip(greedy)
            try await greedy.close()
            try await polite.close()
        }
    }

    @Test func aBurstOf100UpstreamMessagesIsDeliveredWholeAndInOrder() async throws {
        try await withBackend({ config, _ in
            // One call at a time: the backend sees the order in which they were started.
            config.upstream.maxInFlightPerConnection = 1
        }) { server, backend in
            let client = try await server.client()
            let burst = (0..<100).map { index in
                LHTTPMessage(command: "c", headers: ["upstream": "POST http://127.0.0.1:\(backend.port)/burst"], body: "\(index)")
            }
            try await client.send(burst)  // one write: the server reads them all at once
            let requests: [TestBackend.Request]
            do {
                requests = try await backend.waitForRequests(100, timeout: .seconds(60))  // one at a time: a busy machine is slow
            } catch {
                let stats = server.upstream.stats
                let replies = (try? await client.nextEvent(timeout: .milliseconds(200))).map { "\($0)" } ?? "none"
                throw TestFailure("\(error); curl \(stats), pending \(server.upstream.pendingCount); client's next event: \(replies)")
            }
            #expect(requests.map { LHTTPMessage.bodyOf($0.body) } == (0..<100).map(String.init))
            // Nothing was refused: the next reply is the sync reply.
            try await server.roundTrip(client)
            try await client.close()
        }
    }

}

extension LHTTPMessage {
    /// The body of a serialized message (for checking what a backend received).
    static func bodyOf(_ text: String) -> String {
        guard let range = text.range(of: "\r\n\r\n") else { return "" }
        return String(text[range.upperBound...])
    }
}
