import Foundation
import LHTTPClient
import LHTTPProtocol
import NIOCore
import NIOPosix
import LHTTPTestSupport
import Testing

/// The clients people use: the JS SDK and the chat demo in a real browser, the parser cases in Node,
/// and the `lhttp` CLI against a real server.
@Suite("Clients")
struct ClientsTests {
    static var lhttp: URL {
        ChildProcess.built("lhttp")
    }

    static func python() -> URL {
        let candidates = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").map { URL(fileURLWithPath: String($0)).appendingPathComponent("python3") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? URL(fileURLWithPath: "/usr/bin/python3")
    }

    @Test func chatDemoAndSDKInHeadlessChromium() async throws {
        let script = ChildProcess.packageRoot.appendingPathComponent("Tests/Browser/chat_test.py").path
        let child = try ChildProcess(
            [script, "--lhttpd", ChildProcess.built("lhttpd").path, "--root", ChildProcess.packageRoot.path, "--nats", try Self.natsServer()],
            binary: Self.python()
        )
        let status = try await child.exitStatus(timeout: .seconds(240))
        #expect(status == 0, "\(child.text)")
        #expect(child.text.contains("ok   bob receives again (re-subscribed)"), "\(child.text)")
        #expect(child.text.contains("ok   bob's page shows what was said while it was away, once, in order"), "\(child.text)")
        #expect(child.text.contains("ok   parser cases ran in the browser"), "\(child.text)")
        #expect(child.text.contains("ok   bob's page shows what was said across the restart, once, in order"), "\(child.text)")
    }

    /// Debian's nats-server (make test installs it).
    static func natsServer() throws -> String {
        let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server"].first { FileManager.default.isExecutableFile(atPath: $0) }
        return try #require(binary, "nats-server is missing: make test installs it")
    }

    @Test func parserCasesInNode() async throws {
        let node = ["/usr/bin/node", "/usr/local/bin/node"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let path = try #require(node, "Node is missing: make test installs nodejs")
        let child = try ChildProcess([ChildProcess.packageRoot.appendingPathComponent("Tests/JS/lhttp.test.js").path], binary: URL(fileURLWithPath: path))
        #expect(try await child.exitStatus() == 0, "\(child.text)")
        // Every case ran and passed: "N of N parser cases passed", with N the number of "ok" lines.
        let passed = child.text.split(separator: "\n").filter { $0.hasPrefix("ok ") }.count
        #expect(passed >= 10, "\(child.text)")
        #expect(child.text.contains("\(passed) of \(passed) cases passed"), "\(child.text)")
        #expect(child.text.contains("ok   recovery: the replay fills the gap in order"), "\(child.text)")
        #expect(!child.text.contains("FAIL"), "\(child.text)")
    }

    @Test func publishOneShotExitStatusFollowsTheAnswer() async throws {
        try await TestServer.with({ $0.publish.token = "s3cret" }) { server in
            let subscriber = try await server.client()
            try await server.subscribe(subscriber, "room")
            let url = "http://127.0.0.1:\(server.port)"
            let ok = try ChildProcess(["publish", "--url", url, "--token", "s3cret", "--channel", "room", "--command", "chat", "hello: from cron"], binary: Self.lhttp)
            #expect(try await ok.exitStatus() == 0, "\(ok.text)")
            #expect(ok.text.contains("\"deliveries\":1"))
            let message = try await subscriber.nextMessage()
            #expect(message.command == "chat" && message.bodyString == "hello: from cron")

            let wrong = try ChildProcess(["publish", "--url", url, "--token", "nope", "--channel", "room", "x"], binary: Self.lhttp)
            #expect(try await wrong.exitStatus() == 3, "\(wrong.text)")
            #expect(wrong.text.contains("401"))
            let stdinBody = try ChildProcess(["publish", "--url", url, "--token", "s3cret", "--channel", "room"], binary: Self.lhttp, input: "from stdin\nline 2")
            #expect(try await stdinBody.exitStatus() == 0, "\(stdinBody.text)")
            #expect(try await subscriber.nextMessage().bodyString == "from stdin\nline 2")
            let refused = try ChildProcess(["publish", "--url", url, "--token", "s3cret", "--channel", String(repeating: "c", count: 300), "x"], binary: Self.lhttp)
            #expect(try await refused.exitStatus() == 4, "\(refused.text)")
            try await subscriber.close()
        }
        let nobody = try await NATSServerProcess.freePort()
        let down = try ChildProcess(["publish", "--url", "http://127.0.0.1:\(nobody)", "--channel", "room", "x"], binary: Self.lhttp)
        #expect(try await down.exitStatus() == 1, "\(down.text)")
    }

    @Test func subscribeOneShotPrintsOneLinePerMessage() async throws {
        try await TestServer.with { server in
            let url = "ws://127.0.0.1:\(server.port)/ws"
            let text = try ChildProcess(["subscribe", url, "room", "other", "--count", "2"], binary: Self.lhttp)
            let json = try ChildProcess(["subscribe", url, "room", "--count", "1", "--json"], binary: Self.lhttp)
            try await server.eventually { server.gateway.hub.subscriberCount(of: "room") == 2 }
            let publisher = try await server.publisher()
            _ = try await publisher.request(path: "/publish?channel=room&command=chat", body: ByteBuffer(string: "two\nlines"))
            _ = try await publisher.request(path: "/publish?channel=other", body: ByteBuffer(string: "second"))
            #expect(try await text.exitStatus() == 0, "\(text.text)")
            #expect(text.text.split(separator: "\n") == ["room chat: two\\nlines", "other publish: second"])
            #expect(try await json.exitStatus() == 0, "\(json.text)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.text.utf8)) as? [String: Any])
            #expect(object["command"] as? String == "chat")
            #expect(object["body"] as? String == "two\nlines")
            #expect((object["headers"] as? [String: String])?["publish"] == "room")
            try await publisher.close()
        }
    }

    @Test func subscribeSinceRecoversWhatWasPublishedAfterAPosition() async throws {
        try await TestServer.with({ $0.history.size = 10 }) { server in
            let publisher = try await server.publisher()
            var positions: [String] = []
            for body in ["one", "two", "three"] {
                let answer = try await publisher.request(path: "/publish?channel=log&command=chat", body: ByteBuffer(string: body))
                let object = try #require(try JSONSerialization.jsonObject(with: Data(answer.bodyString.utf8)) as? [String: Any])
                positions.append(try #require((object["seq"] as? [String])?.first))
            }
            let url = "ws://127.0.0.1:\(server.port)/ws"
            let cli = try ChildProcess(["subscribe", url, "log", "--since", positions[0], "--count", "3"], binary: Self.lhttp)
            _ = try await cli.await("lhttp: log recovered=true missed=2 stream=\(positions[2])")
            _ = try await publisher.request(path: "/publish?channel=log&command=chat", body: ByteBuffer(string: "four"))
            #expect(try await cli.exitStatus() == 0, "\(cli.text)")
            let lines = cli.text.split(separator: "\n").filter { $0.hasPrefix("log chat") }
            #expect(lines.count == 3, "\(cli.text)")
            #expect(lines.map { $0.split(separator: ": ").last.map(String.init) ?? "" } == ["two", "three", "four"], "\(cli.text)")
            #expect(lines.first?.contains("seq=\(positions[1])") == true, "\(cli.text)")
            let bad = try ChildProcess(["subscribe", url, "log", "other", "--since", positions[0]], binary: Self.lhttp)
            #expect(try await bad.exitStatus() != 0, "\(bad.text)")
            try await publisher.close()
        }
    }

    @Test func interactiveModeSubscribesPublishesAndPrints() async throws {
        try await TestServer.with { server in
            let watcher = try await server.client()
            try await server.subscribe(watcher, "room")
            // The CLI subscribes, publishes twice (one raw message), then waits for its own message before quitting.
            let script = "sub room\npub room hello from the terminal\nraw LHTTP/1.0 chat\\r\\npublish:room\\r\\n\\r\\nraw one\nbogus\n"
            let cli = try ChildProcess(["ws://127.0.0.1:\(server.port)/ws", "--linger", "5"], binary: Self.lhttp, input: script)
            #expect(try await watcher.nextMessage().bodyString == "hello from the terminal")
            let raw = try await watcher.nextMessage()
            #expect(raw.command == "chat" && raw.bodyString == "raw one")
            _ = try await cli.await("< room chat: raw one")
            #expect(cli.text.contains("< room publish: hello from the terminal"))
            #expect(cli.text.contains("? unknown command bogus"))
            #expect(try await cli.exitStatus() == 0)
            try await watcher.close()
        }
    }
}
