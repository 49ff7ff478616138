import Foundation
import LHTTPClient
import LHTTPConfig
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import Testing

/// Issue 13, findings 5 and 6 over real sockets: per-connection rate limits, and who may publish and
/// subscribe where (the `channels:` options), each next to the legitimate case.
@Suite("Rate limits and channel options")
struct RateLimitAndChannelOptionsTests {
    /// Every event a client receives until `count` messages arrived or it was closed.
    static func events(_ client: LHTTPWebSocketClient, upTo count: Int) async throws -> (messages: [LHTTPMessage], closed: UInt16?) {
        var messages: [LHTTPMessage] = []
        while messages.count < count {
            switch try await client.nextEvent() {
            case .message(let message, _, _): messages.append(message)
            case .closed(let code, _): return (messages, code)
            case .unparsable: Issue.record("unparsable frame")
            }
        }
        return (messages, nil)
    }

    /// Ten messages in one flush arrive in one read: with 1 message per second and a burst of 3, the
    /// first three are published and seven are refused with 429; other connections are not affected.
    @Test func aFloodIsRefusedWith429AndTheRestIsServed() async throws {
        try await TestServer.with({ config in
            config.limits.maxMessagesPerSecond = 1
            config.limits.burstMessages = 3
            config.limits.maxRateViolations = 0
        }) { server in
            let flooder = try await server.client()
            // One flush, one read: the allowance cannot refill in between.
            try await flooder.send(
                [LHTTPMessage(command: "sub", headers: ["subscribe": "self"])]
                    + (0..<10).map { LHTTPMessage(command: "say", headers: ["publish": "self"], body: "\($0)") }
            )
            let (messages, closed) = try await Self.events(flooder, upTo: 10)
            #expect(closed == nil)
            let delivered = messages.filter { $0.command == "say" }.map(\.bodyString)
            let refused = messages.filter { $0.command == "error" }
            // The subscribe took the first token.
            #expect(delivered == ["0", "1"])
            #expect(refused.count == 8)
            #expect(refused.allSatisfy { $0.headers["status"] == "429" && $0.headers["reason"]?.contains("rate limit") == true })
            // Someone else still publishes and receives freely.
            let witness = try await server.client()
            try await server.subscribe(witness, "room")
            let http = try await server.publisher()
            #expect(try await http.request(path: "/publish?channel=room", body: ByteBuffer(string: "news")).status == 200)
            #expect(try await witness.nextMessage().bodyString == "news")
            try await http.close()
            try await witness.close()
            try await flooder.close()
        }
    }

    @Test func aClientThatKeepsFloodingIsClosedWith4029() async throws {
        try await TestServer.with({ config in
            config.limits.maxMessagesPerSecond = 1
            config.limits.burstMessages = 1
            config.limits.maxRateViolations = 5
        }) { server in
            let flooder = try await server.client()
            try await flooder.send((0..<20).map { _ in LHTTPMessage(command: "ping") })
            let (messages, closed) = try await Self.events(flooder, upTo: 100)
            #expect(closed == 4029)
            #expect(messages.count == 5, "five refusals, then the close")
            #expect(messages.allSatisfy { $0.headers["status"] == "429" })
            try await server.eventually { server.gateway.connectionCount == 0 }
        }
    }

    /// The amplification attack: 64 channels nobody listens to, 100 KB each, as fast as it goes. The byte
    /// rate counts every channel, so the connection is cut long before it has published 2 GB.
    @Test func aWideFanOutSpendsTheByteAllowanceOncePerChannel() async throws {
        try await TestServer.with({ config in
            config.limits.maxBytesPerSecond = 1 << 20
            config.limits.burstBytes = 8 << 20
            config.limits.maxRateViolations = 10
        }) { server in
            let flooder = try await server.client()
            let channels = (0..<64).map { "nobody-\($0)" }.joined(separator: " ")
            let body = String(repeating: "x", count: 100_000)
            let message = LHTTPMessage(command: "spam", headers: ["publish": channels], body: body)
            do {
                try await flooder.send(Array(repeating: message, count: 40))
            } catch LHTTPClientError.connectionClosed {
                // The server may cut it before the last frame is written: that is the point.
            }
            let (replies, closed) = try await Self.events(flooder, upTo: 100)
            #expect(closed == 4029)
            #expect(replies.count == 10 && replies.allSatisfy { $0.headers["status"] == "429" })
            // 8 MiB of allowance pays for one 6.4 MB fan-out and lets a second go into debt; then nothing
            // passes for seconds: 2 publications (13 MB to the cluster, not 2.2 GB), 10 refusals, closed.
            let metrics = try await MetricsTests.scrape(server)
            #expect(metrics.values["lhttp_publications_total{source=\"websocket\"}"] == 2)
            #expect(metrics.values["lhttp_closes_total{code=\"4029\"}"] == 1)
        }
    }

    /// The README's PHP chat, locked down: clients publish only to `chat-` rooms, the app everywhere;
    /// `private-` channels need the subscribe hook, which may answer 200 with a `refused` list.
    @Test func channelOptionsDecideWhoPublishesAndSubscribesWhere() async throws {
        let backend = try await TestBackend.start { request in
            let event = (try? JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any]) ?? [:]
            switch event["event"] as? String {
            case "subscribe":
                return .init(contentType: "application/json", body: #"{"refused": ["private-b"]}"#)
            default:
                let body = event["body"] as? String ?? ""
                if body == "relay" { return .init(contentType: "application/json", body: #"{"relay": true}"#) }
                return .init(contentType: "application/json", body: #"{"publish": [{"channels": ["lobby"], "headers": {"from": "app"}, "body": "ann: \#(body)"}]}"#)
            }
        }
        defer { Task { await backend.stop() } }
        try await TestServer.with({ config in
            config.routes = ["chat": RouteConfig(url: "http://127.0.0.1:\(backend.port)/chat.php")]
            config.hooks.subscribe = "http://127.0.0.1:\(backend.port)/subscribe.php"
            config.channels = [
                ChannelOptionsConfig(prefix: "chat-", publish: .anyone, subscribe: .anyone),
                ChannelOptionsConfig(prefix: "private-", publish: .none, subscribe: .hook),
                ChannelOptionsConfig(prefix: "", publish: .none, subscribe: .anyone),
            ]
        }) { server in
            let listener = try await server.client()
            try await server.subscribe(listener, "lobby chat-1")
            #expect(backend.requests.isEmpty, "anyone-channels are joined without asking the hook")
            let ann = try await server.client()

            // An impersonation: byte for byte what the app would publish, refused; the open room still gets it.
            try await ann.send(LHTTPMessage(command: "say", headers: ["publish": "lobby chat-1", "from": "app"], body: "ann: I quit"))
            let refused = try await ann.nextMessage()
            #expect(refused.headers["status"] == "403")
            #expect(refused.headers["channels"] == "lobby")
            let open = try await listener.nextMessage()
            // The copy names what it was published to.
            #expect(open.bodyString == "ann: I quit" && open.headers["publish"] == "chat-1")
            try await server.roundTrip(listener)  // once, from chat-1 only

            // A routed command belongs to the app: its own publish list is not applied, the answer's is.
            try await ann.send(LHTTPMessage(command: "chat", headers: ["publish": "lobby"], body: "hello"))
            let fromApp = try await listener.nextMessage()
            #expect(fromApp.headers["from"] == "app" && fromApp.bodyString == "ann: hello")
            try await server.roundTrip(listener)
            // ... unless the app relays it, which it may do anywhere.
            try await ann.send(LHTTPMessage(command: "chat", headers: ["publish": "lobby"], body: "relay"))
            #expect(try await listener.nextMessage().bodyString == "relay")

            // The app's HTTP publish reaches a locked channel.
            let http = try await server.publisher()
            #expect(try await http.request(path: "/publish?channel=lobby", body: ByteBuffer(string: "cron")).status == 200)
            #expect(try await listener.nextMessage().bodyString == "cron")

            // The subscribe hook's 200 with a refused list refuses those channels only.
            try await ann.send(LHTTPMessage(command: "join", headers: ["subscribe": "private-a private-b chat-2"]))
            let partly = try await ann.nextMessage()
            #expect(partly.headers["status"] == "403")
            #expect(partly.headers["channels"] == "private-b")
            try await server.eventually { server.gateway.hub.subscriberCount(of: "private-a") == 1 }
            #expect(server.gateway.hub.subscriberCount(of: "private-b") == 0)
            #expect(server.gateway.hub.subscriberCount(of: "chat-2") == 1)
            let asked = try await backend.waitForRequests(3).compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.body.utf8)) as? [String: Any])?["channels"] as? [String]
            }
            #expect(asked == [["private-a", "private-b"]], "only hook channels are sent to the hook")
            try await http.close()
            try await ann.close()
            try await listener.close()
        }
    }
}
