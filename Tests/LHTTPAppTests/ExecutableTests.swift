import Foundation
import LHTTPClient
import LHTTPProtocol
import LHTTPTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Tests of the real `lhttpd` binary, built next to the test bundle.
@Suite("lhttpd executable")
struct ExecutableTests {
    @Test func checkConfigAcceptsTheSample() async throws {
        let child = try ChildProcess(["--check-config", "--config", "config/lhttpd.yaml"])
        #expect(try await child.exitStatus() == 0)
        #expect(child.text.contains("configuration OK"))
    }

    @Test func checkConfigRejectsUnknownKeysWithPathAndLine() async throws {
        let file = try TemporaryFile("listen: 127.0.0.1:8081\nlimits:\n  max_mesage_bytes: 5\n")
        defer { file.remove() }
        let child = try ChildProcess(["--check-config", "--config", file.path])
        #expect(try await child.exitStatus() == 1)
        #expect(child.text.contains(":3:"))
        #expect(child.text.contains("limits.max_mesage_bytes"))
        #expect(child.text.contains("max_message_bytes"))
    }

    /// `--check-config` runs every check start-up runs: an allow-list entry that libcurl's URL parser
    /// refuses (it is what makes the requests) fails the check as it fails start-up.
    @Test func checkConfigRunsTheChecksStartUpRuns() async throws {
        let file = try TemporaryFile("listen: 127.0.0.1:0\nupstream:\n  allow: [\"http://127.0.0.1:9/a%2e/\"]\n")
        defer { file.remove() }
        let check = try ChildProcess(["--check-config", "--config", file.path])
        #expect(try await check.exitStatus() == 1)
        #expect(check.text.contains("upstream.allow"), "\(check.text)")
        #expect(!check.text.contains("configuration OK"))
        let start = try ChildProcess(["--config", file.path])
        #expect(try await start.exitStatus() == 1)
        #expect(start.text.contains("upstream.allow"), "\(start.text)")
    }

    @Test func servesPubSubAndStopsGracefullyOnSIGTERM() async throws {
        let child = try ChildProcess(["--config", "config/lhttpd.yaml", "--listen", "127.0.0.1:0"])
        let portText = try await child.await(#"lhttp\.port=(\d+)"#)
        let port = try #require(Int(portText))
        let sub = try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: port, path: "/ws")
        try await sub.send(LHTTPMessage(command: "chat", headers: ["subscribe": "cron"]))
        try await sub.sendText("LHTTP/9 sync\r\n\r\n")
        #expect(try await sub.nextMessage().headers["status"] == "505")
        let http = try await HTTPPublisher.connect(host: "127.0.0.1", port: port)
        let health = try await http.request(method: .GET, path: "/healthz")
        #expect(health.status == 200)
        let published = try await http.request(path: "/publish?channel=cron&command=tick", body: ByteBuffer(string: "now"))
        #expect(published.status == 200)
        let message = try await sub.nextMessage()
        #expect(message.command == "tick")
        #expect(message.bodyString == "now")
        try await http.close()
        try await sub.close()

        kill(child.process.processIdentifier, SIGTERM)
        #expect(try await child.exitStatus() == 0)
        #expect(child.text.contains("shutting down"))
    }

    @Test func twoProcessesShareChannelsThroughNATS() async throws {
        let nats = try await NATSServerProcess()
        let file = try TemporaryFile("listen: 127.0.0.1:0\ncluster:\n  nats: [\"${NATS_URL}\"]\n  reconnect_max_ms: 200\n")
        defer { file.remove() }
        let nodes = try ["one", "two"].map { id in
            try ChildProcess(["--config", file.path], environment: ["NATS_URL": nats.url])
        }
        var ports: [Int] = []
        for node in nodes {
            ports.append(try #require(Int(try await node.await(#"lhttp\.port=(\d+)"#))))
            _ = try await node.await("NATS connected")
        }
        let sub = try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: ports[1], path: "/ws")
        try await sub.send(LHTTPMessage(command: "chat", headers: ["subscribe": "cron"]))
        let http = try await HTTPPublisher.connect(host: "127.0.0.1", port: ports[0])
        // The subscription reaches NATS asynchronously: publish until the other node delivers (bounded).
        var delivered: LHTTPMessage?
        for attempt in 0..<50 where delivered == nil {
            _ = try await http.request(path: "/publish?channel=cron&command=tick", body: ByteBuffer(string: "\(attempt)"))
            delivered = try? await sub.nextMessage(timeout: .milliseconds(100))
        }
        #expect(delivered?.command == "tick")
        let health = try await http.request(method: .GET, path: "/healthz").bodyString
        #expect(health.contains("\"cluster\":{\"state\":\"connected\""), "\(health)")
        try await http.close()
        try await sub.close()
        for node in nodes {
            kill(node.process.processIdentifier, SIGTERM)
            #expect(try await node.exitStatus() == 0)
        }
    }

    @Test func sigtermClosesEveryClientWith1001DeliversDisconnectHooksAndExits0() async throws {
        let backend = try await TestBackend.start()
        let file = try TemporaryFile("""
            listen: 127.0.0.1:0
            shutdown_timeout_s: 10
            # A few keep-alive connections carry the 100 calls (no burst of 64 connects at a busy backend).
            webhook: {max_in_flight: 8}
            hooks:
              disconnect: http://127.0.0.1:\(backend.port)/disconnect
            """)
        defer { file.remove() }
        let child = try ChildProcess(["--config", file.path])
        let port = try #require(Int(try await child.await(#"lhttp\.port=(\d+)"#)))
        var clients: [LHTTPWebSocketClient] = []
        for _ in 0..<100 {
            let client = try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: port, path: "/ws")
            try await client.send(LHTTPMessage(command: "sub", headers: ["subscribe": "room"]))
            clients.append(client)
        }
        try await clients[99].sendText("LHTTP/9 sync\r\n\r\n")
        #expect(try await clients[99].nextMessage().headers["status"] == "505")

        kill(child.process.processIdentifier, SIGTERM)
        for client in clients {
            let event = try await client.nextEvent(timeout: .seconds(10))
            #expect(event == .closed(code: 1001, reason: "server shutting down"), "\(event)")
        }
        #expect(try await child.exitStatus() == 0)
        // It did not wait out shutdown_timeout_s: nothing was left open or in flight.
        #expect(!child.text.contains("still open") && !child.text.contains("still in flight"), "\(child.text)")
        // Every disconnect hook was delivered before the process exited.
        let events = backend.requests.filter { $0.uri == "/disconnect" }
        #expect(events.count == 100, "lhttpd's output:\n\(child.text)")
        #expect(events.allSatisfy { $0.body.contains("1001") })
        #expect(child.text.contains("lhttpd stopped"))
        await backend.stop()
    }

    /// The stop's budget counts from the signal: a node that ran longer than `shutdown_timeout_s` before it
    /// still lets its disconnect hooks finish (they used to fail at once with "shutting down").
    @Test func theShutdownBudgetStartsAtTheSignalNotAtStartUp() async throws {
        let backend = try await TestBackend.start()
        let file = try TemporaryFile("""
            listen: 127.0.0.1:0
            shutdown_timeout_s: 5
            websocket: {ping_interval_s: 1, idle_timeout_s: 6}
            # A 300 ms answer can take seconds on a busy machine: only the stop's budget is under test.
            webhook: {timeout_ms: 10000}
            hooks:
              disconnect: http://127.0.0.1:\(backend.port)/slow-disconnect
            """)
        defer { file.remove() }
        let child = try ChildProcess(["--config", file.path])
        let port = try #require(Int(try await child.await(#"lhttp\.port=(\d+)"#)))
        // A client that never answers pings is closed after idle_timeout_s (6 s): awaiting that proves the
        // node has run longer than shutdown_timeout_s (5 s), without sleeping.
        let silent = try await RawConnection.websocket(port: port)
        try await eventually(timeout: .seconds(20)) { silent.closeCode != nil }
        #expect(silent.closeCode == 4009)
        _ = try await backend.waitForRequests(1)
        let client = try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: port, path: "/ws")
        try await client.sendText("LHTTP/9 sync\r\n\r\n")
        #expect(try await client.nextMessage().headers["status"] == "505")
        kill(child.process.processIdentifier, SIGTERM)
        #expect(try await client.nextEvent(timeout: .seconds(10)) == .closed(code: 1001, reason: "server shutting down"))
        #expect(try await child.exitStatus() == 0)
        // The disconnect hook (answered after 300 ms) finished within the budget.
        #expect(!child.text.contains("still in flight"), "\(child.text)")
        #expect(!child.text.contains("webhook call failed"), "\(child.text)")
        #expect(backend.requests.filter { $0.uri == "/slow-disconnect" }.count == 2)
        await silent.close()
        await backend.stop()
    }

    @Test func aSecondSignalExitsAtOnce() async throws {
        // A disconnect hook that never answers would hold the graceful stop for shutdown_timeout_s (60).
        let hanging = try await TestBackend.start()
        let file = try TemporaryFile("""
            listen: 127.0.0.1:0
            shutdown_timeout_s: 60
            webhook: {timeout_ms: 60000}
            hooks:
              disconnect: http://127.0.0.1:\(hanging.port)/hang-disconnect
            """)
        defer { file.remove() }
        let child = try ChildProcess(["--config", file.path])
        let port = try #require(Int(try await child.await(#"lhttp\.port=(\d+)"#)))
        let client = try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: port, path: "/ws")
        // A round trip first: the client has the 101 a moment before the server has the websocket (a signal
        // in between closes an upgrade, not a websocket: no close frame, no disconnect hook).
        try await client.sendText("LHTTP/9 sync\r\n\r\n")
        #expect(try await client.nextMessage().headers["status"] == "505")
        kill(child.process.processIdentifier, SIGTERM)
        #expect(try await client.nextEvent(timeout: .seconds(10)) == .closed(code: 1001, reason: "server shutting down"))
        // The hook's call arrived and is held: the graceful stop waits for it.
        _ = try await hanging.waitForRequests(1)
        #expect(child.process.isRunning, "waiting for the disconnect hook")
        kill(child.process.processIdentifier, SIGTERM)
        #expect(try await child.exitStatus(timeout: .seconds(5)) == 1)
        #expect(child.text.contains("second signal"))
        await hanging.stop()
    }

    @Test func jsonLogsAreOneObjectPerLineWithConnectionMetadata() async throws {
        let file = try TemporaryFile("listen: 127.0.0.1:0\nlog: {level: debug, format: json}\n")
        defer { file.remove() }
        let child = try ChildProcess(["--config", file.path])
        let port = try #require(Int(try await child.await(#""lhttp\.port":"(\d+)""#)))
        let client = try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: port, path: "/ws")
        try await client.sendText("garbage")
        _ = try await client.nextMessage()
        try await client.close()
        _ = try await child.await("connection closed")
        kill(child.process.processIdentifier, SIGTERM)
        #expect(try await child.exitStatus() == 0)
        let lines = child.text.split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(lines.count >= 4)
        var objects: [[String: String]] = []
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String], "\(line)")
            #expect(object["ts"] != nil && object["level"] != nil && object["msg"] != nil)
            objects.append(object)
        }
        let opened = try #require(objects.first { $0["msg"] == "connection opened" })
        #expect(opened["lhttp.conn"] != nil)
        #expect(opened["lhttp.remote"]?.hasPrefix("127.0.0.1:") == true)
        let rejected = try #require(objects.first { $0["msg"] == "message rejected" })
        #expect(rejected["level"] == "warning" && rejected["lhttp.status"] == "400")
    }

    /// Text logs carry client input escaped: an ANSI escape in an `upstream:` URL reaches the log as
    /// `\u{1B}`, never as the raw byte.
    @Test func textLogsEscapeClientInput() async throws {
        let file = try TemporaryFile("listen: 127.0.0.1:0\nlog: {format: text}\nupstream:\n  allow: [\"http://127.0.0.1:9/\"]\n")
        defer { file.remove() }
        let child = try ChildProcess(["--config", file.path])
        let port = try #require(Int(try await child.await(#"lhttp\.port=(\d+)"#)))
        let client = try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: port, path: "/ws")
        try await client.sendText("LHTTP/1.0 note\r\nupstream:POST http://127.0.0.1:9/\u{1B}[31mred\u{1B}[0m\r\n\r\nx")
        let reply = try await client.nextMessage()
        #expect(reply.command == "error")
        _ = try await child.await("upstream call failed")
        try await client.close()
        kill(child.process.processIdentifier, SIGTERM)
        #expect(try await child.exitStatus() == 0)
        #expect(!child.text.unicodeScalars.contains("\u{1B}"))
        #expect(child.text.contains(#"\u{1B}[31mred"#), "\(child.text)")
    }
}
