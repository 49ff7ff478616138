import Foundation
import LHTTPClient
import LHTTPConfig
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import NIOPosix
import Testing

@Suite("Webhook hooks over real sockets")
struct WebhookHookTests {
    static func event(_ request: TestBackend.Request) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any]) ?? [:]
    }

    /// A small app: connect needs `token` in the query (it becomes meta.user); subscribe refuses `secret`;
    /// `chat` answers with the user's name; disconnect is just recorded.
    static func app(_ request: TestBackend.Request) -> TestBackend.Answer? {
        let event = Self.event(request)
        let meta = (event["connection"] as? [String: Any])?["meta"] as? [String: String] ?? [:]
        switch event["event"] as? String {
        case "connect":
            let query = ((event["http"] as? [String: Any])?["query"] as? String) ?? ""
            guard let token = query.split(separator: "&").first(where: { $0.hasPrefix("token=") })?.dropFirst(6) else {
                return .init(status: 401)
            }
            return .init(contentType: "application/json", body: #"{"meta": {"user": "\#(token)"}, "reply": {"command": "welcome", "body": "hello \#(token)"}}"#)
        case "subscribe":
            let channels = event["channels"] as? [String] ?? []
            return channels.contains("secret")
                ? .init(status: 403, contentType: "application/json", body: #"{"refused": ["secret"]}"#)
                : .init(status: 204)
        case "message":
            return .init(contentType: "text/plain", body: "from \(meta["user"] ?? "nobody")")
        default:
            return .init(status: 204)
        }
    }

    func withApp(_ body: (TestServer, TestBackend) async throws -> Void) async throws {
        let backend = try await TestBackend.start(script: Self.app)
        defer { Task { await backend.stop() } }
        try await TestServer.with({ config in
            let base = "http://127.0.0.1:\(backend.port)"
            config.hooks = HooksConfig(connect: "\(base)/connect.php", subscribe: "\(base)/subscribe.php", disconnect: "\(base)/disconnect.php")
            config.routes = ["chat": RouteConfig(url: "\(base)/chat.php")]
        }) { server in
            try await body(server, backend)
        }
    }

    @Test func connectWithoutTokenIsRefusedWith401() async throws {
        try await withApp { server, backend in
            await #expect(throws: LHTTPClientError.upgradeFailed(status: 401)) {
                _ = try await server.client(path: "/ws")
            }
            let event = Self.event(try #require(try await backend.waitForRequests(1).first))
            #expect(event["event"] as? String == "connect")
            #expect(((event["http"] as? [String: Any])?["path"] as? String) == "/ws")
            #expect(server.gateway.connectionCount == 0)
        }
    }

    @Test func connectMetaAndReplyCarryOverToLaterEvents() async throws {
        try await withApp { server, backend in
            let client = try await server.client(path: "/ws?token=ann")
            let welcome = try await client.nextMessage()
            #expect(welcome.command == "welcome")
            #expect(welcome.bodyString == "hello ann")
            try await client.send(LHTTPMessage(command: "chat", body: "hi"))
            #expect(try await client.nextMessage().bodyString == "from ann")
            try await client.close()

            // The disconnect event arrives with the close code and the meta.
            let requests = try await backend.waitForRequests(3)
            let events = requests.map { Self.event($0) }
            #expect(events.map { $0["event"] as? String } == ["connect", "message", "disconnect"])
            #expect(events[2]["code"] as? Int == 1000)
            #expect(((events[2]["connection"] as? [String: Any])?["meta"] as? [String: String]) == ["user": "ann"])
            let ids = events.compactMap { ($0["connection"] as? [String: Any])?["id"] as? String }
            #expect(Set(ids).count == 1, "one connection id for all events: \(ids)")
        }
    }

    @Test func subscribeHookRefusesOnlyTheListedChannels() async throws {
        try await withApp { server, backend in
            let client = try await server.client(path: "/ws?token=bob")
            _ = try await client.nextMessage()  // welcome
            try await client.send(LHTTPMessage(command: "join", headers: ["subscribe": "news secret"]))
            let refusal = try await client.nextMessage()
            #expect(refusal.command == "error")
            #expect(refusal.headers["status"] == "403")
            #expect(refusal.headers["channels"] == "secret")
            #expect(server.gateway.hub.subscriberCount(of: "news") == 1)
            #expect(server.gateway.hub.subscriberCount(of: "secret") == 0)
            let subscribe = Self.event(try #require(try await backend.waitForRequests(2).last))
            #expect(subscribe["event"] as? String == "subscribe")
            #expect(subscribe["channels"] as? [String] == ["news", "secret"])
            try await client.close()
        }
    }

    @Test func aDownConnectHookRefusesTheUpgrade() async throws {
        // Nothing listens there (``FreePort``: no other test is given it).
        let closedPort = try FreePort.next()
        try await TestServer.with({ $0.hooks.connect = "http://127.0.0.1:\(closedPort)/connect.php" }) { server in
            await #expect(throws: LHTTPClientError.upgradeFailed(status: 502)) {
                _ = try await server.client(path: "/ws")
            }
            #expect(server.gateway.connectionCount == 0)
        }
    }
}
