import Foundation
import Testing
@testable import LHTTPConfig

@Suite("Validation")
struct ValidationTests {
    @Test("Every broken rule is reported, not just the first")
    func severalProblems() {
        let config = GatewayConfig(
            listen: ListenAddress(host: "", port: 70000),
            websocket: WebSocketConfig(paths: ["ws", "/a", "/a", "/publish", "/healthz"]),
            publish: PublishConfig(path: "publish"),
            limits: LimitsConfig(maxMessageBytes: 0, maxHeaders: -1)
        )
        let found = config.validate()
        #expect(found.map(\.keyPath) == [
            "listen", "listen",
            "websocket.paths[0]", "websocket.paths[2]", "websocket.paths[4]",
            "publish.path",
            "limits.max_message_bytes", "limits.max_headers",
        ])
        #expect(found.allSatisfy { $0.source.isEmpty && $0.line == nil })
        #expect(found.map(\.message).contains("port 70000 is out of range 0...65535"))
        #expect(found.map(\.message).contains("duplicate path \"/a\""))
        #expect(found.map(\.message).contains("\"/healthz\" is already used by the health check"))
        #expect(found.map(\.message).contains("must be greater than 0, is -1"))
    }

    @Test("History and idempotency bounds are checked, each key named")
    func historyBounds() {
        let config = GatewayConfig(
            publish: PublishConfig(idempotencyWindowS: -1, idempotencyMaxKeys: 0),
            channels: [ChannelOptionsConfig(prefix: "a-", historySize: -1, historyTTLS: -5), ChannelOptionsConfig(prefix: "b-", historySize: 100_001)],
            history: HistoryConfig(size: -1, ttlS: .infinity, maxBytes: 0, metaTTLS: 0)
        )
        #expect(config.validate().map(\.keyPath) == [
            "channels[0].history_size", "channels[0].history_ttl_s", "channels[1].history_size",
            "publish.idempotency_window_s", "publish.idempotency_max_keys",
            "history.size", "history.ttl_s", "history.max_bytes", "history.meta_ttl_s",
        ])
        let fine = GatewayConfig(channels: [ChannelOptionsConfig(prefix: "a-", historySize: 100_000, historyTTLS: 0)], history: HistoryConfig(size: 0))
        #expect(fine.validate().isEmpty)
    }

    @Test("A websocket path equal to publish.path is rejected")
    func publishConflict() {
        let config = GatewayConfig(websocket: WebSocketConfig(paths: ["/ws", "/in"]), publish: PublishConfig(path: "/in"))
        #expect(config.validate() == [ConfigProblem(
            keyPath: "websocket.paths[1]", message: "\"/in\" is already used by publish.path")])
    }

    @Test("An empty websocket path list is rejected")
    func emptyPaths() {
        #expect(GatewayConfig(websocket: WebSocketConfig(paths: [])).validate().map(\.keyPath) == ["websocket.paths"])
    }

    @Test("publish.path may not be /healthz")
    func publishHealthz() {
        #expect(GatewayConfig(publish: PublishConfig(path: "/healthz")).validate().map(\.keyPath) == ["publish.path"])
    }

    @Test("Limits must be ordered: channel name <= header line <= message")
    func limitOrdering() {
        let config = GatewayConfig(limits: LimitsConfig(
            maxMessageBytes: 100, maxHeaderLineBytes: 200, maxChannelNameBytes: 300))
        #expect(config.validate() == [
            ConfigProblem(keyPath: "limits.max_header_line_bytes",
                          message: "200 must not exceed limits.max_message_bytes (100)"),
            ConfigProblem(keyPath: "limits.max_channel_name_bytes",
                          message: "300 must not exceed limits.max_header_line_bytes (200)"),
        ])
        let equal = GatewayConfig(limits: LimitsConfig(
            maxMessageBytes: 100, maxHeaderLineBytes: 100, maxChannelNameBytes: 100))
        #expect(equal.validate().isEmpty)
    }

    @Test("Every limit must be positive")
    func positiveLimits() {
        let config = GatewayConfig(limits: LimitsConfig(
            maxMessageBytes: 0, maxHeaders: 0, maxHeaderLineBytes: 0, maxChannelsPerMessage: 0, maxChannelNameBytes: 0,
            maxOutboundBytes: 0))
        #expect(config.validate().map(\.keyPath) == [
            "limits.max_message_bytes", "limits.max_headers", "limits.max_header_line_bytes",
            "limits.max_channels_per_message", "limits.max_channel_name_bytes", "limits.max_outbound_bytes",
        ])
    }

    @Test("static_dir must be an existing directory when set")
    func staticDir() throws {
        let directory = NSTemporaryDirectory()
        #expect(GatewayConfig(staticDir: directory).validate().isEmpty)

        let missing = directory + "lhttpd-missing-\(UUID().uuidString)"
        #expect(GatewayConfig(staticDir: missing).validate()
            == [ConfigProblem(keyPath: "static_dir", message: "directory \"\(missing)\" does not exist")])

        let file = directory + "lhttpd-file-\(UUID().uuidString)"
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(GatewayConfig(staticDir: file).validate()
            == [ConfigProblem(keyPath: "static_dir", message: "\"\(file)\" is not a directory")])
    }

    @Test("The loader reports validation problems with source and line")
    func loaderPlacesValidationProblems() {
        let found = problems("""
            websocket:
              paths:
                - /ws
                - nope
            limits:
              max_message_bytes: 100
            """)
        #expect(found == [
            ConfigProblem(source: "test.yaml", line: 4, column: 7, keyPath: "websocket.paths[1]",
                          message: "\"nope\" must start with \"/\""),
            // max_header_line_bytes is a default, not in the file: no line to point at.
            ConfigProblem(source: "test.yaml", keyPath: "limits.max_header_line_bytes",
                          message: "8192 must not exceed limits.max_message_bytes (100)"),
        ])
    }
}

@Suite("Threads")
struct ThreadsValidationTests {
    @Test("threads must be 0...1024")
    func threadsRange() throws {
        #expect(GatewayConfig(threads: 0).validate().isEmpty)
        #expect(GatewayConfig(threads: 2).validate().isEmpty)
        #expect(GatewayConfig(threads: -1).validate().map(\.keyPath) == ["threads"])
        #expect(GatewayConfig(threads: 5000).validate().map(\.keyPath) == ["threads"])
        let config = try ConfigLoader.load(yaml: "threads: 3\n")
        #expect(config.threads == 3)
    }
}

@Suite("Upstream section")
struct UpstreamConfigTests {
    @Test("upstream keys decode and are validated")
    func upstreamSection() throws {
        let config = try ConfigLoader.load(yaml: """
            upstream:
              allow: ["http://127.0.0.1:9000/"]
              timeout_ms: 250
              connect_timeout_ms: 100
              max_in_flight: 4
              max_queued: 8
              max_response_bytes: 2048
            """)
        #expect(config.upstream == UpstreamConfig(
            allow: ["http://127.0.0.1:9000/"], timeoutMs: 250, connectTimeoutMs: 100,
            maxInFlight: 4, maxQueued: 8, maxResponseBytes: 2048))
        #expect(GatewayConfig().upstream.allow.isEmpty)
        let bad = GatewayConfig(upstream: UpstreamConfig(allow: ["ftp://x/", "http://u@h/"], timeoutMs: 0))
        #expect(bad.validate().map(\.keyPath) == ["upstream.allow[0]", "upstream.allow[1]", "upstream.timeout_ms"])
        #expect(throws: ConfigError.self) { try ConfigLoader.load(yaml: "upstream:\n  alow: []\n") }
    }

    @Test("max_queued_bytes of upstream and webhook decode, default to 16 MiB and must be positive")
    func queuedBytes() throws {
        let config = try ConfigLoader.load(yaml: """
            upstream:
              max_queued_bytes: 4096
            webhook:
              max_queued_bytes: 8192
            """)
        #expect(config.upstream.maxQueuedBytes == 4096)
        #expect(config.webhook.maxQueuedBytes == 8192)
        #expect(GatewayConfig().upstream.maxQueuedBytes == 16_777_216)
        #expect(GatewayConfig().webhook.maxQueuedBytes == 16_777_216)
        let found = problems("upstream:\n  max_queued_bytes: 0\nwebhook:\n  max_queued_bytes: -1\n")
        #expect(found.map(\.keyPath).sorted() == ["upstream.max_queued_bytes", "webhook.max_queued_bytes"])
        #expect(found.allSatisfy { $0.message.contains("greater than 0") })
    }
}

@Suite("Webhook sections")
struct WebhookConfigTests {
    @Test("routes, hooks and webhook decode; unknown route keys and bad URLs are reported")
    func webhookSections() throws {
        let config = try ConfigLoader.load(yaml: """
            webhook:
              secret: ${SECRET}
              timeout_ms: 500
            hooks:
              connect: http://127.0.0.1:9000/connect.php
            routes:
              chat: {url: "http://127.0.0.1:9000/chat.php"}
              "*": {url: "http://127.0.0.1:9000/any.php", timeout_ms: 100}
            """, environment: ["SECRET": "k"])
        #expect(config.webhook.secret == "k")
        #expect(config.webhook.timeoutMs == 500)
        #expect(config.hooks.connect == "http://127.0.0.1:9000/connect.php")
        #expect(config.routes["chat"] == RouteConfig(url: "http://127.0.0.1:9000/chat.php"))
        #expect(config.routes["*"] == RouteConfig(url: "http://127.0.0.1:9000/any.php", timeoutMs: 100))

        do {
            _ = try ConfigLoader.load(yaml: "routes:\n  chat: {ulr: \"http://x/\"}\n")
            Issue.record("unknown route key accepted")
        } catch {
            #expect(error.problems.contains { $0.keyPath == "routes.chat.ulr" && $0.line == 2 })
        }
        let bad = GatewayConfig(
            webhook: WebhookConfig(maxInFlight: 0),
            hooks: HooksConfig(subscribe: "ftp://x/"),
            routes: ["chat": RouteConfig(url: "http://u@x/", timeoutMs: 0)]
        )
        #expect(bad.validate().map(\.keyPath) == [
            "hooks.subscribe", "routes.chat.url", "routes.chat.timeout_ms", "webhook.max_in_flight",
        ])
    }
}
