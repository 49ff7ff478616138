import Foundation
import LHTTPClient
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import Testing

@Suite("HTTP publish and routes")
struct HTTPPublishTests {
    struct PublishAnswer: Decodable, Equatable {
        var channels: [String]
        var deliveries: Int
    }

    func answer(_ response: HTTPResponse) throws -> PublishAnswer {
        try JSONDecoder().decode(PublishAnswer.self, from: Data(response.body.readableBytesView))
    }

    @Test func rawLHTTPBodyIsRelayedByteForByte() async throws {
        try await TestServer.with { server in
            let a = try await server.client()
            let b = try await server.client()
            try await server.subscribe(a, "x")
            try await server.subscribe(b, "y")
            let raw = "LHTTP/1.0 chat\r\nPublish:  x y \r\nkeep:Spelling\r\n\r\nbody\r\nwith lines"
            let publisher = try await server.publisher()
            let response = try await publisher.request(path: "/publish", body: ByteBuffer(string: raw))
            #expect(response.status == 200)
            #expect(try answer(response) == PublishAnswer(channels: ["x", "y"], deliveries: 2))
            for client in [a, b] {
                let event = try await client.nextEvent()
                guard case .message(_, let bytes, let binary) = event else {
                    Issue.record("expected a message, got \(event)")
                    continue
                }
                #expect(String(buffer: bytes) == raw)
                #expect(!binary)
                try await client.close()
            }
            try await publisher.close()
        }
    }

    @Test func queryFormWrapsAnyBody() async throws {
        try await TestServer.with { server in
            let sub = try await server.client()
            try await server.subscribe(sub, "news alerts")
            let publisher = try await server.publisher()
            let response = try await publisher.request(
                path: "/publish?channel=news&channel=alerts&command=notice",
                body: ByteBuffer(string: "{\"text\":\"hi\"}")
            )
            #expect(response.status == 200)
            #expect(try answer(response) == PublishAnswer(channels: ["news", "alerts"], deliveries: 1))
            let message = try await sub.nextMessage()
            #expect(message.command == "notice")
            #expect(message.headers["publish"] == "news alerts")
            #expect(message.bodyString == "{\"text\":\"hi\"}")
            // Default command, percent-encoded channel name.
            let second = try await publisher.request(path: "/publish?channel=new%73", body: ByteBuffer(string: "2"))
            #expect(second.status == 200)
            let next = try await sub.nextMessage()
            #expect(next.command == "publish")
            #expect(next.bodyString == "2")
            try await server.roundTrip(sub)
            try await sub.close()
            try await publisher.close()
        }
    }

    @Test func answersAreValidJSONForAnyChannelName() async throws {
        try await TestServer.with { server in
            let publisher = try await server.publisher()
            // Channel `q"u\oté` percent-encoded: quote, backslash, non-ASCII.
            let response = try await publisher.request(path: "/publish?channel=q%22u%5Cot%C3%A9", body: ByteBuffer(string: "x"))
            #expect(response.status == 200)
            #expect(try answer(response) == PublishAnswer(channels: ["q\"u\\oté"], deliveries: 0))
            // A control character is refused, and the refusal is valid JSON too.
            let refused = try await publisher.request(path: "/publish?channel=q%22u%01", body: ByteBuffer(string: "x"))
            #expect(refused.status == 400)
            #expect(try JSONSerialization.jsonObject(with: Data(refused.body.readableBytesView)) is [String: Any])
            try await publisher.close()
        }
    }

    @Test func tokenIsRequiredWhenConfigured() async throws {
        try await TestServer.with({ $0.publish.token = "s3cret" }) { server in
            let sub = try await server.client()
            try await server.subscribe(sub, "room")
            let publisher = try await server.publisher()
            let body = ByteBuffer(string: "x")
            let missing = try await publisher.request(path: "/publish?channel=room", body: body)
            #expect(missing.status == 401)
            #expect(missing.header("www-authenticate") == "Bearer")
            let wrong = try await publisher.request(path: "/publish?channel=room", headers: [("Authorization", "Bearer s3cres")], body: body)
            #expect(wrong.status == 401)
            let longer = try await publisher.request(path: "/publish?channel=room", headers: [("Authorization", "Bearer s3crett")], body: body)
            #expect(longer.status == 401)
            let basic = try await publisher.request(path: "/publish?channel=room", headers: [("Authorization", "Basic s3cret")], body: body)
            #expect(basic.status == 401)
            try await server.roundTrip(sub)  // nothing was delivered
            let right = try await publisher.request(path: "/publish?channel=room", headers: [("Authorization", "Bearer s3cret")], body: body)
            #expect(right.status == 200)
            #expect(try await sub.nextMessage().bodyString == "x")
            try await sub.close()
            try await publisher.close()
        }
    }

    @Test func failuresAreNeverOK() async throws {
        try await TestServer.with({
            $0.limits.maxMessageBytes = 1024
            $0.limits.maxHeaderLineBytes = 512  // a valid config: lines fit in a message
        }) { server in
            let publisher = try await server.publisher()
            func post(_ path: String, _ body: String) async throws -> HTTPResponse {
                try await publisher.request(path: path, body: ByteBuffer(string: body))
            }
            #expect(try await post("/publish", "not lhttp").status == 400)
            #expect(try await post("/publish", "LHTTP/1.0 chat\r\nbad header\r\n\r\n").status == 400)
            #expect(try await post("/publish", "LHTTP/1.0 chat\r\n\r\nno channel").status == 422)
            #expect(try await post("/publish?channel=", "empty channel").status == 422)
            #expect(try await post("/publish?channel=a&command=two%20words", "x").status == 400)
            #expect(try await post("/publish?channel=%zz", "x").status == 400)
            let wrapped = try await post("/publish?channel=a", String(repeating: "x", count: 1010))
            #expect(wrapped.status == 413)
            #expect(wrapped.bodyString.contains("\"status\":413"))
            let get = try await publisher.request(method: .GET, path: "/publish")
            #expect(get.status == 405)
            #expect(try await publisher.request(method: .GET, path: "/nope").status == 404)
            #expect(try await publisher.request(method: .GET, path: "/ws").status == 426)
            // Over the limit by Content-Length: answered 413 and the connection is closed.
            let tooBig = try await post("/publish?channel=a", String(repeating: "x", count: 2048))
            #expect(tooBig.status == 413)
            try? await publisher.close()
        }
    }

    @Test func healthz() async throws {
        try await TestServer.with { server in
            let client = try await server.client()
            try await server.subscribe(client, "a b")
            let publisher = try await server.publisher()
            let response = try await publisher.request(method: .GET, path: "/healthz")
            #expect(response.status == 200)
            struct Health: Decodable, Equatable {
                var status: String
                var connections: Int
                var channels: Int
                var subscriptions: Int
            }
            let health = try JSONDecoder().decode(Health.self, from: Data(response.body.readableBytesView))
            #expect(health == Health(status: "ok", connections: 1, channels: 2, subscriptions: 2))
            try await client.close()
            try await publisher.close()
        }
    }

    @Test func staticFilesAreServedSafely() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lhttpd-static-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("js"), withIntermediateDirectories: true)
        try Data("<h1>chat</h1>".utf8).write(to: dir.appendingPathComponent("index.html"))
        try Data("export const x = 1;".utf8).write(to: dir.appendingPathComponent("js/sdk.js"))
        try Data("secret".utf8).write(to: dir.appendingPathComponent(".env"))
        defer { try? FileManager.default.removeItem(at: dir) }
        try await TestServer.with({ $0.staticDir = dir.path }) { server in
            let http = try await server.publisher()
            let index = try await http.request(method: .GET, path: "/")
            #expect(index.status == 200)
            #expect(index.bodyString == "<h1>chat</h1>")
            #expect(index.header("content-type") == "text/html; charset=utf-8")
            let js = try await http.request(method: .GET, path: "/js/sdk.js")
            #expect(js.status == 200)
            #expect(js.header("content-type") == "text/javascript; charset=utf-8")
            #expect(try await http.request(method: .GET, path: "/.env").status == 404)
            #expect(try await http.request(method: .GET, path: "/js/../.env").status == 404)
            #expect(try await http.request(method: .GET, path: "/%2e%2e/etc/passwd").status == 404)
            #expect(try await http.request(method: .GET, path: "/missing.js").status == 404)
            // The websocket still upgrades on "/" while "/" also serves index.html.
            let client = try await server.client(path: "/")
            try await server.roundTrip(client)
            try await client.close()
            try await http.close()
        }
    }
}
