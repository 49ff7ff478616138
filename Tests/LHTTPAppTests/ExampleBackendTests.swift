import Foundation
import LHTTPClient
import LHTTPConfig
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import NIOPosix
import Testing

/// The examples of `examples/`, run for real (`php -S`, `java Backend.java`) behind a real gateway.
@Suite("Example backends (PHP, Java)")
struct ExampleBackendTests {
    static let secret = "test-secret"

    /// A port for a backend told its port before it binds (``FreePort``).
    static func freePort() async throws -> Int {
        try FreePort.next()
    }

    /// Starts a backend process and waits (bounded) until it says it listens on `port` (PHP's built-in
    /// server: "Development Server (http://127.0.0.1:PORT) started"; the Java backend: "listening on").
    static func startBackend(_ binary: String, _ arguments: [String], port: Int) async throws -> ChildProcess {
        let child = try ChildProcess(arguments, binary: URL(fileURLWithPath: binary), environment: ["LHTTP_WEBHOOK_SECRET": secret])
        do {
            _ = try await child.await("127\\.0\\.0\\.1:\(port)\\) started|listening on 127\\.0\\.0\\.1:\(port)", timeout: .seconds(30))
        } catch {
            child.process.terminate()
            throw TestFailure("\(binary) did not start on port \(port): \(child.text)")
        }
        return child
    }

    static func configure(_ config: inout GatewayConfig, port: Int, secret: String = secret) {
        let base = "http://127.0.0.1:\(port)"
        config.webhook.secret = secret
        config.hooks = HooksConfig(connect: "\(base)/connect.php", subscribe: "\(base)/subscribe.php", disconnect: "\(base)/disconnect.php")
        config.routes = ["chat": RouteConfig(url: "\(base)/chat.php")]
        // Locked down as the README shows: only the app publishes.
        config.channels = [ChannelOptionsConfig(prefix: "", publish: .none)]
    }

    /// The walk-through every example must pass.
    static func chatScenario(_ server: TestServer) async throws {
        // No token: no websocket.
        await #expect(throws: LHTTPClientError.upgradeFailed(status: 401)) { _ = try await server.client(path: "/ws") }

        let ann = try await server.client(path: "/ws?token=ann")
        // The token may also come as a cookie.
        let bob = try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: server.port, path: "/ws", headers: [("Cookie", "theme=dark; token=bob")])
        #expect(try await ann.nextMessage().bodyString == "hello ann")
        #expect(try await bob.nextMessage().bodyString == "hello bob")
        for client in [ann, bob] {
            try await client.send(LHTTPMessage(command: "join", headers: ["subscribe": "lobby"]))
        }
        // The hook refuses "admin".
        try await bob.send(LHTTPMessage(command: "join", headers: ["subscribe": "admin"]))
        let refusal = try await bob.nextMessage()
        #expect(refusal.headers["status"] == "403")
        #expect(server.gateway.hub.subscriberCount(of: "admin") == 0)

        // Chat: the room gets "<user>: <text>" (user from the connect hook's meta), the sender an ack.
        try await server.eventually { server.gateway.hub.subscriberCount(of: "lobby") == 2 }
        try await ann.send(LHTTPMessage(command: "chat", headers: ["room": "lobby"], body: "hi all"))
        var annSaw: [String] = []
        for _ in 0..<2 { annSaw.append(try await ann.nextMessage().bodyString) }
        #expect(annSaw.sorted() == ["ann: hi all", "sent"])
        #expect(try await bob.nextMessage().bodyString == "ann: hi all")
        try await server.roundTrip(bob)  // bob got no ack: replies go to the sender only

        // Bob cannot speak as ann: byte for byte the app's line, refused (403 naming the room).
        try await bob.send(LHTTPMessage(command: "say", headers: ["publish": "lobby"], body: "ann: I quit"))
        let forged = try await bob.nextMessage()
        #expect(forged.headers["status"] == "403" && forged.headers["channels"] == "lobby")
        // Nor through the routed command's own publish list: the app owns chat messages.
        try await bob.send(LHTTPMessage(command: "chat", headers: ["publish": "lobby"], body: "x"))
        var bobSaw: [String] = []
        for _ in 0..<2 { bobSaw.append(try await bob.nextMessage().bodyString) }
        #expect(bobSaw.sorted() == ["bob: x", "sent"])
        #expect(try await ann.nextMessage().bodyString == "bob: x")
        try await server.roundTrip(ann)
        // The original demo's subscribe (a chat message without text) is no chat line.
        try await ann.send(LHTTPMessage(command: "chat", headers: ["subscribe": "lobby"]))
        try await server.roundTrip(ann)  // answered after the app's answer to the chat message
        try await server.roundTrip(bob)
        try await ann.close()
        try await bob.close()
    }

    @Test func phpChatBackend() async throws {
        let port = try await Self.freePort()
        let php = try await Self.startBackend("/usr/bin/php", ["-S", "127.0.0.1:\(port)", "examples/php/router.php"], port: port)
        defer { kill(php.process.processIdentifier, SIGKILL) }
        try await TestServer.with({ Self.configure(&$0, port: port) }) { server in
            try await Self.chatScenario(server)
        }
        // The PHP side checks the signature: a gateway with the wrong secret is refused at connect.
        try await TestServer.with({ Self.configure(&$0, port: port, secret: "wrong") }) { server in
            await #expect(throws: LHTTPClientError.upgradeFailed(status: 401)) { _ = try await server.client(path: "/ws?token=ann") }
        }
        // Backend down: routed messages get a 502, the gateway keeps serving everything else.
        try await TestServer.with({ Self.configure(&$0, port: port) }) { server in
            let client = try await server.client(path: "/ws?token=ann")
            _ = try await client.nextMessage()
            kill(php.process.processIdentifier, SIGKILL)
            _ = try await php.exitStatus()
            try await client.send(LHTTPMessage(command: "chat", body: "anyone?"))
            let reply = try await client.nextMessage(timeout: .seconds(10))
            #expect(reply.headers["status"] == "502")
            try await client.send(LHTTPMessage(command: "note", headers: ["unsubscribe": "lobby"], body: "still here"))
            try await server.roundTrip(client)
            let http = try await server.publisher()
            #expect(try await http.request(method: .GET, path: "/healthz").status == 200)
            try await http.close()
            try await client.close()
        }
    }

    @Test func javaChatBackend() async throws {
        let port = try await Self.freePort()
        let java = try await Self.startBackend("/usr/bin/java", ["examples/java/Backend.java", String(port)], port: port)
        defer { java.process.terminate() }
        try await TestServer.with({ Self.configure(&$0, port: port) }) { server in
            try await Self.chatScenario(server)
        }
    }

    /// The token snippets of docs/auth.md, run for real: the PHP and the Java one each sign a token that lhttpd
    /// accepts (the user, the `channels` claim subscribed) and a token signed with another secret is refused.
    @Test(arguments: [("/usr/bin/php", ["examples/php/token.php"]), ("/usr/bin/java", ["examples/java/LhttpToken.java"])])
    func tokenSnippetsSignWhatLhttpdAccepts(binary: String, script: [String]) async throws {
        func sign(_ secret: String) async throws -> String {
            let child = try ChildProcess(script + ["u-42", "private-*", "news"], binary: URL(fileURLWithPath: binary), environment: ["LHTTP_JWT_SECRET": secret])
            let status = try await child.exitStatus(timeout: .seconds(60))
            guard status == 0, let token = child.text.split(separator: "\n").last.map(String.init), token.split(separator: ".").count == 3 else {
                throw TestFailure("\(binary) printed no token: \(child.text)")
            }
            return token
        }
        try await TestServer.with({ config in
            config.auth = AuthConfig(required: true, jwt: JWTConfig(hmacSecret: TestToken.secret))
            config.channels = [ChannelOptionsConfig(prefix: "private-", subscribe: .token, presence: true)]
        }) { server in
            let client = try await server.client(path: TestToken.query(try await sign(TestToken.secret)))
            try await server.eventually { server.gateway.hub.subscriberCount(of: "news") == 1 }
            try await server.subscribe(client, "private-team")
            try await client.send(LHTTPMessage(command: "presence", headers: ["presence": "private-team"]))
            let answer = try await client.nextMessage()
            #expect(answer.command == "presence" && answer.bodyString.contains(#""user":"u-42","info":{"name":"u-42"}"#), "\(answer.bodyString)")
            try await client.close()
            let forged = try await sign(String(TestToken.secret.reversed()))
            await #expect(throws: LHTTPClientError.upgradeFailed(status: 401)) { _ = try await server.client(path: TestToken.query(forged)) }
        }
    }
}
