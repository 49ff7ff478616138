import Foundation
import LHTTPClient
import LHTTPProtocol
import NIOCore
import LHTTPTestSupport
import Testing

/// Every bound of `limits`, `http` and `websocket`, hit over real sockets: the documented outcome, and a
/// well-behaved client on the same channel served meanwhile.
@Suite("Bounds")
struct BoundsTests {
    /// A subscriber on `channel` that must keep receiving while a bound is being hit.
    static func witness(_ server: TestServer, _ channel: String = "news") async throws -> LHTTPWebSocketClient {
        let client = try await server.client()
        try await server.subscribe(client, channel)
        return client
    }

    static func checkServed(_ witness: LHTTPWebSocketClient, by server: TestServer, _ channel: String = "news") async throws {
        let publisher = try await server.publisher()
        let body = "still served \(UUID().uuidString)"
        #expect(try await publisher.request(path: "/publish?channel=\(channel)", body: ByteBuffer(string: body)).status == 200)
        #expect(try await witness.nextMessage().bodyString == body)
        try await publisher.close()
    }

    @Test func connectionCapAnswers503() async throws {
        try await TestServer.with({ $0.limits.maxConnections = 2 }) { server in
            let first = try await Self.witness(server)
            let second = try await server.client()
            await #expect(throws: LHTTPClientError.upgradeFailed(status: 503)) { _ = try await server.client() }
            try await Self.checkServed(first, by: server)
            // A slot frees when a client leaves.
            try await second.close()
            try await server.eventually { server.gateway.connectionCount == 1 }
            let third = try await server.client()
            try await third.close()
            try await first.close()
        }
    }

    @Test func subscriptionCapRefusesTheWholeListWith429() async throws {
        try await TestServer.with({ $0.limits.maxSubscriptionsPerConnection = 3 }) { server in
            let witness = try await Self.witness(server)
            let client = try await server.client()
            try await client.send(LHTTPMessage(command: "sub", headers: ["subscribe": "a b c d"]))
            let refused = try await client.nextMessage()
            #expect(refused.command == "error")
            #expect(refused.headers["status"] == "429")
            #expect(server.gateway.hub.subscriberCount(of: "a") == 0, "all or nothing")
            try await server.subscribe(client, "a b c")
            try await server.subscribe(client, "a c")  // already there: no new subscription
            try await client.send(LHTTPMessage(command: "sub", headers: ["subscribe": "d", "publish": "news"], body: "not sent"))
            #expect(try await client.nextMessage().headers["status"] == "429")
            #expect(server.gateway.hub.subscriberCount(of: "d") == 0)
            // The refused message published nothing; the witness still gets what comes next.
            try await Self.checkServed(witness, by: server)
            try await client.close()
            try await witness.close()
        }
    }

    @Test func nodeChannelCapRefusesNewChannelsWith503() async throws {
        try await TestServer.with({ $0.limits.maxChannels = 2 }) { server in
            let witness = try await Self.witness(server)  // channel 1: news
            let client = try await server.client()
            try await server.subscribe(client, "room")  // channel 2
            try await client.send(LHTTPMessage(command: "sub", headers: ["subscribe": "news extra"]))
            #expect(try await client.nextMessage().headers["status"] == "503")
            #expect(server.gateway.hub.subscriberCount(of: "news") == 1, "rolled back: the client did not join news either")
            #expect(server.gateway.hub.channelTotal == 2)
            try await server.subscribe(client, "news")  // an existing channel is fine
            #expect(server.gateway.hub.subscriberCount(of: "news") == 2)
            try await Self.checkServed(witness, by: server)
            try await client.close()
            try await server.eventually { server.gateway.hub.channelTotal == 1 }
            try await witness.close()
        }
    }

    @Test func originsAreCheckedForBrowsersOnly() async throws {
        try await TestServer.with { server in
            let witness = try await Self.witness(server)
            let host = "127.0.0.1:\(server.port)"
            await #expect(throws: LHTTPClientError.upgradeFailed(status: 403)) {
                _ = try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: server.port, path: "/ws", headers: [("Origin", "https://evil.example")])
            }
            await #expect(throws: LHTTPClientError.upgradeFailed(status: 403)) {
                _ = try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: server.port, path: "/ws", headers: [("Origin", "null")])
            }
            // Same host as the page: allowed; no Origin (not a browser): allowed.
            let same = try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: server.port, path: "/ws", headers: [("Origin", "http://\(host)")])
            try await server.roundTrip(same)
            try await same.close()
            try await Self.checkServed(witness, by: server)
            try await witness.close()
        }
        try await TestServer.with({ $0.websocket.allowedOrigins = ["https://app.example.com"] }) { server in
            let allowed = try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: server.port, path: "/ws", headers: [("Origin", "https://APP.example.com:443")])
            try await allowed.close()
            await #expect(throws: LHTTPClientError.upgradeFailed(status: 403)) {
                _ = try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: server.port, path: "/ws", headers: [("Origin", "http://app.example.com")])
            }
        }
        try await TestServer.with({ $0.websocket.allowedOrigins = ["*"] }) { server in
            let any = try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: server.port, path: "/ws", headers: [("Origin", "https://anything.example")])
            try await any.close()
        }
    }

    @Test func twoMebibyteBodiesGet413AndTheConnectionCloses() async throws {
        try await TestServer.with { server in
            let witness = try await Self.witness(server)
            let big = ByteBuffer(repeating: UInt8(ascii: "x"), count: 2 << 20)
            for path in ["/publish?channel=news", "/healthz", "/nowhere"] {
                let http = try await server.publisher()
                let response = try await http.request(path: path, body: big)
                #expect(response.status == 413, "\(path)")
                #expect(response.header("connection") == "close")
                try? await http.close()
            }
            // A body sent without a length (chunked) is counted as it arrives.
            let raw = try await RawConnection.connect(port: server.port)
            try await raw.send("POST /nowhere HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            let chunk = String(repeating: "y", count: 64 * 1024)
            for _ in 0..<40 where !raw.isClosed {
                try? await raw.send(String(64 * 1024, radix: 16) + "\r\n" + chunk + "\r\n")
            }
            try await server.eventually { raw.isClosed }
            #expect(raw.text.hasPrefix("HTTP/1.1 413"))
            try await Self.checkServed(witness, by: server)
            try await witness.close()
        }
    }

    /// Over a real socket; the trickling itself is tested in virtual time (HTTPDeadlineHandlerTests).
    @Test func slowLorisIsCutWith408() async throws {
        // 5 s: short for a test, long enough for the witness's own upgrade on a busy machine (2 s was not).
        try await TestServer.with({ $0.http.requestTimeoutS = 5 }) { server in
            let witness = try await Self.witness(server)
            // A head that never ends.
            let loris = try await RawConnection.connect(port: server.port)
            try await loris.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaa")
            try await server.eventually(timeout: .seconds(20)) { loris.isClosed }
            #expect(loris.text.hasPrefix("HTTP/1.1 408"))
            #expect(loris.text.contains("\"status\":408"))
            try await Self.checkServed(witness, by: server)

            // A connection that never sends a byte is cut the same way; a quick request is not.
            let silent = try await RawConnection.connect(port: server.port)
            try await server.eventually(timeout: .seconds(20)) { silent.isClosed }
            #expect(silent.text.hasPrefix("HTTP/1.1 408"))
            let http = try await server.publisher()
            #expect(try await http.request(method: .GET, path: "/healthz").status == 200)
            try await witness.close()
        }
    }

    @Test func idleKeepAliveConnectionsAreClosed() async throws {
        // 3 s: a busy machine can stall a loop for a second between the answer and the check below.
        try await TestServer.with({ $0.http.keepaliveTimeoutS = 3 }) { server in
            let raw = try await RawConnection.connect(port: server.port)
            try await raw.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            try await server.eventually { raw.text.contains("\"status\":\"ok\"") }
            #expect(!raw.isClosed)
            try await server.eventually(timeout: .seconds(20)) { raw.isClosed }
            #expect(raw.text.components(separatedBy: "HTTP/1.1").count == 2, "one response, then a quiet close")
        }
    }

    @Test func silentWebsocketsAreClosedWith4009AndAnsweringOnesStay() async throws {
        try await TestServer.with({
            // Pings every 250 ms; an idle timeout that a busy machine's pauses (seconds, measured on CI)
            // do not reach between the witness's pongs.
            $0.websocket.pingIntervalS = 0.25
            $0.websocket.idleTimeoutS = 10
        }) { server in
            // LHTTPWebSocketClient answers pings.
            let witness = try await Self.witness(server)
            // Opened after the witness's last message: when it is closed, the witness has been quiet a whole
            // idle timeout too (no sleep measures it).
            let silent = try await RawConnection.websocket(port: server.port)
            try await server.eventually { silent.text.contains("101 Switching Protocols") }
            try await server.eventually(timeout: .seconds(30)) { silent.closeCode != nil }
            #expect(silent.closeCode == 4009)
            #expect(silent.opcodes.contains(0x9), "it was pinged first")
            try await Self.checkServed(witness, by: server)
            #expect(server.gateway.connectionCount == 1)
            await silent.close()
            try await witness.close()
        }
    }
}
