import Foundation
import LHTTPClient
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import Testing

/// `GET /metrics` after a known workload: every count exact.
@Suite("Metrics")
struct MetricsTests {
    /// Prometheus text → `name{label="v",...}` (labels sorted) → value.
    static func parse(_ text: String) -> [String: Double] {
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            var name = String(line[..<space])
            if let open = name.firstIndex(of: "{"), name.hasSuffix("}") {
                let labels = name[name.index(after: open)..<name.index(before: name.endIndex)]
                    .split(separator: ",").map(String.init).sorted().joined(separator: ",")
                name = String(name[..<open]) + "{" + labels + "}"
            }
            values[name] = value
        }
        return values
    }

    static func scrape(_ server: TestServer, token: String? = nil) async throws -> (status: Int, values: [String: Double], text: String) {
        let http = try await server.publisher()
        let headers: [(String, String)] = token.map { [("Authorization", "Bearer \($0)")] } ?? []
        let response = try await http.request(method: .GET, path: "/metrics", headers: headers)
        try? await http.close()
        return (response.status, Self.parse(response.bodyString), response.bodyString)
    }

    @Test func countsAreExactAfterAKnownWorkload() async throws {
        let backend = try await TestBackend.start()
        try await TestServer.with({
            $0.limits.maxMessageBytes = 4096
            $0.limits.maxHeaderLineBytes = 4096
            $0.limits.maxChannelNameBytes = 256
            $0.upstream.allow = ["http://127.0.0.1:\(backend.port)/"]
        }) { server in
            let a = try await server.client()
            let b = try await server.client()
            let c = try await server.client()
            try await server.subscribe(a, "m")  // 2 messages in (sub + sync), one 505 reply
            try await server.subscribe(b, "m n")  // 2 in, one 505
            for index in 0..<4 {
                try await c.send(LHTTPMessage(command: "chat", headers: ["publish": "m"], body: "\(index)"))
            }
            try await c.send(LHTTPMessage(command: "chat", headers: ["publish": "n"], body: "to b"))
            try await c.sendText("not lhttp at all")  // 400
            try await c.send(LHTTPMessage(command: "up", headers: ["upstream": "POST http://127.0.0.1:\(backend.port)/in"]))
            try await c.send(LHTTPMessage(command: "up", headers: ["upstream": "POST http://10.0.0.1/"]))  // 403, never sent
            #expect(try await c.nextMessage().headers["status"] == "400")
            #expect(try await c.nextMessage().headers["status"] == "403")
            try await server.roundTrip(c)  // 1 in, one 505
            _ = try await backend.waitForRequests(1)
            for _ in 0..<4 { _ = try await a.nextMessage() }
            for _ in 0..<5 { _ = try await b.nextMessage() }

            let http = try await server.publisher()
            for body in ["h1", "h2"] {
                #expect(try await http.request(path: "/publish?channel=m", body: ByteBuffer(string: body)).status == 200)
            }
            #expect(try await http.request(path: "/publish", body: ByteBuffer(string: "LHTTP/1.0 x\r\n\r\n")).status == 422)
            await #expect(throws: LHTTPClientError.upgradeFailed(status: 403)) {
                _ = try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: server.port, path: "/ws", headers: [("Origin", "https://evil.example")])
            }
            // A fourth client sends more than max_message_bytes: closed with 1009.
            let d = try await server.client()
            try await d.sendText(String(repeating: "x", count: 5000))
            #expect(try await d.nextEvent() == .closed(code: 1009, reason: "frame larger than 4096 bytes"))
            try await server.eventually { server.gateway.connectionCount == 3 }

            let (status, values, text) = try await Self.scrape(server)
            #expect(status == 200)
            let expected: [String: Double] = [
                "lhttp_connections": 3,
                "lhttp_channels": 2,
                "lhttp_subscriptions": 3,
                "lhttp_messages_received_total": 13,
                "lhttp_publications_total{source=\"websocket\"}": 5,
                "lhttp_publications_total{source=\"http\"}": 2,
                "lhttp_deliveries_total": 13,
                "lhttp_error_replies_total{status=\"505\"}": 3,
                "lhttp_error_replies_total{status=\"400\"}": 1,
                "lhttp_error_replies_total{status=\"403\"}": 1,
                "lhttp_http_requests_total{route=\"publish\",status=\"200\"}": 2,
                "lhttp_http_requests_total{route=\"publish\",status=\"422\"}": 1,
                "lhttp_http_requests_total{route=\"upgrade\",status=\"403\"}": 1,
                "lhttp_upgrades_refused_total{status=\"403\"}": 1,
                "lhttp_closes_total{code=\"1009\"}": 1,
                "lhttp_backend_calls_total{kind=\"upstream\",result=\"ok\",route=\"upstream\"}": 1,
                "lhttp_backend_calls_total{kind=\"upstream\",result=\"403\",route=\"upstream\"}": 1,
                "lhttp_backend_call_duration_seconds_count{kind=\"upstream\",route=\"upstream\"}": 1,
            ]
            for (name, value) in expected {
                let found = values[name]
                #expect(found == value, "\(name): \(String(describing: found))\n\(text)")
            }
            // The scrape itself is counted once it is answered.
            #expect(try await Self.scrape(server).values["lhttp_http_requests_total{route=\"metrics\",status=\"200\"}"] == 1)
            for client in [a, b, c] { try await client.close() }
            try await http.close()
        }
        await backend.stop()
    }

    @Test func aTokenProtectsTheEndpointAndAnEmptyPathTurnsItOff() async throws {
        try await TestServer.with({ $0.metrics.token = "scrape-me" }) { server in
            #expect(try await Self.scrape(server).status == 401)
            #expect(try await Self.scrape(server, token: "wrong").status == 401)
            let (status, values, _) = try await Self.scrape(server, token: "scrape-me")
            #expect(status == 200)
            #expect(values["lhttp_connections"] == 0)
        }
        try await TestServer.with({ $0.metrics.path = "" }) { server in
            let status = try await Self.scrape(server).status
            #expect(status == 404)
        }
    }
}
