import Foundation
import LHTTPClient
import LHTTPConfig
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import NIOPosix
import Testing

@Suite("Webhook routes over real sockets")
struct WebhookRouteTests {
    static func event(_ request: TestBackend.Request) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any]) ?? [:]
    }

    func withApp(
        script: @escaping @Sendable (TestBackend.Request) -> TestBackend.Answer?,
        configure: @escaping (inout GatewayConfig, Int) -> Void = { _, _ in },
        _ body: (TestServer, TestBackend) async throws -> Void
    ) async throws {
        let backend = try await TestBackend.start(script: script)
        defer { Task { await backend.stop() } }
        try await TestServer.with({ config in
            config.routes = ["chat": RouteConfig(url: "http://127.0.0.1:\(backend.port)/chat.php")]
            config.webhook.secret = "s3cret"
            configure(&config, backend.port)
        }) { server in
            try await body(server, backend)
        }
    }

    @Test func theAnswerDrivesReplyPublishSubscribeAndMeta() async throws {
        try await withApp(script: { request in
            let event = Self.event(request)
            let meta = (event["connection"] as? [String: Any])?["meta"] as? [String: String] ?? [:]
            if meta["user"] == nil {
                return .init(contentType: "application/json", body: #"""
                    {"reply": {"command": "ack", "body": "welcome"},
                     "publish": [{"channels": ["room"], "command": "say", "body": "42: hi"}],
                     "subscribe": ["private-42"], "meta": {"user": "42"}}
                    """#)
            }
            return .init(status: 200, contentType: "text/plain", body: "seen by \(meta["user"] ?? "?")")
        }) { server, backend in
            let listener = try await server.client()
            try await server.subscribe(listener, "room")
            let sender = try await server.client()
            try await sender.send(LHTTPMessage(command: "chat", headers: ["x": "1"], body: "hi"))

            let reply = try await sender.nextMessage()
            #expect(reply.command == "ack")
            #expect(reply.bodyString == "welcome")
            let published = try await listener.nextMessage()
            #expect(published.command == "say")
            #expect(published.headers["publish"] == "room")
            #expect(published.bodyString == "42: hi")

            // The sender was subscribed by the answer.
            let http = try await server.publisher()
            _ = try await http.request(path: "/publish?channel=private-42", body: ByteBuffer(string: "direct"))
            #expect(try await sender.nextMessage().bodyString == "direct")

            // Meta goes with the next event, and a plain answer is a reply.
            try await sender.send(LHTTPMessage(command: "chat", body: "again"))
            #expect(try await sender.nextMessage().bodyString == "seen by 42")

            let requests = try await backend.waitForRequests(2)
            let first = Self.event(requests[0])
            #expect(first["event"] as? String == "message")
            #expect(first["command"] as? String == "chat")
            #expect(first["body"] as? String == "hi")
            #expect(first["headers"] as? [String: String] == ["x": "1"])
            #expect(((first["connection"] as? [String: Any])?["remote"] as? String)?.hasPrefix("127.0.0.1:") == true)
            #expect(requests[0].header("x-lhttp-event") == "message")
            #expect(requests[0].header("x-lhttp-signature")?.hasPrefix("sha256=") == true)
            try await http.close()
            try await listener.close()
            try await sender.close()
        }
    }

    @Test func aRoutedConnectionsMessagesReachTheAppAndTakeEffectInOrder() async throws {
        try await withApp(script: { request in
            .init(contentType: "text/plain", body: "ack \(Self.event(request)["body"] as? String ?? "?")")
        }) { server, backend in
            let client = try await server.client()
            for index in 0..<20 {
                try await client.send(LHTTPMessage(command: "chat", body: "\(index)"))
                // An unrouted message in between waits for its turn.
                try await client.send(LHTTPMessage(command: "note", headers: ["subscribe": "me", "publish": "me"], body: "n\(index)"))
            }
            for index in 0..<20 {
                #expect(try await client.nextMessage().bodyString == "ack \(index)")
                #expect(try await client.nextMessage().bodyString == "n\(index)")
            }
            let bodies = try await backend.waitForRequests(20).map { Self.event($0)["body"] as? String ?? "" }
            #expect(bodies == (0..<20).map(String.init))
            try await client.close()
        }
    }

    @Test func aRefusalStopsTheMessagesOwnHeaders() async throws {
        try await withApp(script: { _ in .init(status: 403) }) { server, _ in
            let listener = try await server.client()
            try await server.subscribe(listener, "room")
            let sender = try await server.client()
            try await sender.send(LHTTPMessage(command: "chat", headers: ["publish": "room"], body: "blocked"))
            let reply = try await sender.nextMessage()
            #expect(reply.command == "error")
            #expect(reply.headers["status"] == "403")
            try await server.roundTrip(listener)  // nothing was published
            // Unrouted commands are not affected.
            try await sender.send(LHTTPMessage(command: "other", headers: ["publish": "room"], body: "free"))
            #expect(try await listener.nextMessage().bodyString == "free")
            try await listener.close()
            try await sender.close()
        }
    }

    @Test func aDownBackendIs502AndTheGatewayKeepsServing() async throws {
        // Nothing listens there (``FreePort``: no other test is given it).
        let closedPort = try FreePort.next()
        try await withApp(script: { _ in nil }, configure: { config, _ in
            config.routes = ["*": RouteConfig(url: "http://127.0.0.1:\(closedPort)/any.php")]
        }) { server, _ in
            let client = try await server.client()
            try await client.send(LHTTPMessage(command: "anything", body: "x"))
            let reply = try await client.nextMessage(timeout: .seconds(10))
            #expect(reply.headers["status"] == "502")
            // The connection still works for what the app does not gate: health, and the error reply itself.
            let http = try await server.publisher()
            #expect(try await http.request(method: .GET, path: "/healthz").status == 200)
            try await http.close()
            try await client.close()
        }
    }

    @Test func messagesBeyondTheWaitingBoundAre503() async throws {
        try await withApp(script: { _ in nil }, configure: { config, port in
            // Held until the test releases it; no timeout can answer it first on a busy machine.
            config.routes = ["chat": RouteConfig(url: "http://127.0.0.1:\(port)/hold", timeoutMs: 60_000)]
            config.webhook.maxQueuedPerConnection = 2
        }) { server, backend in
            let client = try await server.client()
            try await client.send(LHTTPMessage(command: "chat", body: "first"))
            _ = try await backend.waitForRequests(1)  // held by the backend until released
            for index in 0..<4 { try await client.send(LHTTPMessage(command: "note", body: "\(index)")) }
            // Two wait; two are refused at once.
            for _ in 0..<2 {
                let reply = try await client.nextMessage()
                #expect(reply.headers["status"] == "503", "\(reply)")
            }
            // Then the app answers (a plain-text 200: sent back as a reply) and the two waiting ones are processed.
            #expect(backend.releaseHeld() == 1)
            #expect(try await client.nextMessage().bodyString == "ok")
            try await server.roundTrip(client)
            try await client.close()
        }
    }
}
