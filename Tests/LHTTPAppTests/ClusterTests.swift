import Foundation
import LHTTPClient
import LHTTPConfig
import LHTTPGateway
import LHTTPNATS
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import NIOPosix
import Testing

/// Two lhttpd nodes (real servers on 127.0.0.1 port 0) sharing channels through a real nats-server,
/// started, killed and restarted by PID by the test.
@Suite("Cluster through NATS")
struct ClusterTests {
    /// Runs `body` with nodes `a` and `b` on `nats` (each a full TestServer with a NATS broker).
    /// Waits until node `id`'s NATS connection holds exactly the subjects of `channels`.
    static func waitForInterest(_ nats: NATSServerProcess, node id: String, _ channels: Set<String>) async throws {
        let wanted = Set(channels.map { NATSSubject.channel($0, prefix: "lhttp") })
        let deadline = ContinuousClock.now + .seconds(10)
        var last: Set<String> = []
        while ContinuousClock.now < deadline {
            last = Set(try await nats.subscriptions(ofClientsNamed: "lhttpd \(id)"))
            if last == wanted { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("node \(id) holds \(last.sorted()), wanted \(wanted.sorted())")
    }

    @Test func publishOnOneNodeReachesSubscribersOnBothExactlyOnce() async throws {
        let nats = try await NATSServerProcess()
        try await TestServer.withNodes(nats) { a, b in
            let onA = try await a.client()
            let onB = try await b.client()
            let publisher = try await a.client()
            try await a.subscribe(onA, "room")
            try await b.subscribe(onB, "room other")
            try await Self.waitForInterest(nats, node: "b", ["room", "other"])
            try await Self.waitForInterest(nats, node: "a", ["room"])

            // Over websocket, to two channels: each connection gets it once, the remote one too.
            try await publisher.send(LHTTPMessage(command: "chat", headers: ["publish": "room other"], body: "one"))
            try await publisher.send(LHTTPMessage(command: "chat", headers: ["publish": "room"], body: "two"))
            for client in [onA, onB] {
                let first = try await client.nextMessage()
                #expect(first.bodyString == "one")
                #expect(first.headers["publish"] == "room other")
                // Order per publisher: a duplicate of "one" would come before "two".
                #expect(try await client.nextMessage().bodyString == "two")
            }

            // Over HTTP, on either node.
            let httpA = try await a.publisher()
            let httpB = try await b.publisher()
            let response = try await httpA.request(path: "/publish?channel=room&channel=other", body: ByteBuffer(string: "via http on a"))
            #expect(response.status == 200)
            #expect(response.bodyString.contains("\"deliveries\":1"), "local deliveries only: \(response.bodyString)")
            #expect(try await httpB.request(path: "/publish?channel=room", body: ByteBuffer(string: "via http on b")).status == 200)
            // Two publishers (two nodes): no order between them, each arrives once.
            for client in [onA, onB] {
                let bodies = [try await client.nextMessage().bodyString, try await client.nextMessage().bodyString]
                #expect(bodies.sorted() == ["via http on a", "via http on b"])
            }
            try await publisher.send(LHTTPMessage(command: "chat", headers: ["publish": "room"], body: "sentinel"))
            for client in [onA, onB] {
                #expect(try await client.nextMessage().bodyString == "sentinel")
            }
            #expect(a.cluster?.client.currentStatus.droppedMessages == 0)
            for client in [onA, onB, publisher] { try await client.close() }
            try await httpA.close()
            try await httpB.close()
        }
    }

    @Test func aNodeHoldsOneSubscriptionPerChannelAndDropsItWithTheLastSubscriber() async throws {
        let nats = try await NATSServerProcess()
        try await TestServer.withNodes(nats) { a, b in
            let first = try await b.client()
            let second = try await b.client()
            try await b.subscribe(first, "room")
            try await b.subscribe(second, "room side")
            try await Self.waitForInterest(nats, node: "b", ["room", "side"])
            #expect(try await nats.subscriptions(ofClientsNamed: "lhttpd b").count == 2, "one per channel, not per connection")

            try await second.send(LHTTPMessage(command: "x", headers: ["unsubscribe": "side"]))
            try await Self.waitForInterest(nats, node: "b", ["room"])
            try await first.send(LHTTPMessage(command: "x", headers: ["unsubscribe": "room"]))
            try await b.roundTrip(first)
            // `second` still listens to room: the subscription stays.
            try await Self.waitForInterest(nats, node: "b", ["room"])
            // The last subscriber goes away without unsubscribing: the interest goes with it.
            await second.closeTCP()
            try await Self.waitForInterest(nats, node: "b", [])
            #expect(b.cluster?.health?["channels"] == .int(0))

            // Nothing on b listens: a publication on a reaches nobody there, and a still delivers locally.
            let local = try await a.client()
            try await a.subscribe(local, "room")
            let http = try await a.publisher()
            let response = try await http.request(path: "/publish?channel=room", body: ByteBuffer(string: "x"))
            #expect(response.bodyString.contains("\"deliveries\":1"))
            #expect(try await local.nextMessage().bodyString == "x")
            try await first.expectNoMessage(within: .milliseconds(100))
            try await local.close()
            try await first.close()
            try await http.close()
        }
    }

    @Test func channelNamesCannotReachOtherChannelsOrBreakTheLink() async throws {
        let nats = try await NATSServerProcess()
        try await TestServer.withNodes(nats) { a, b in
            let sneaky = try await b.client()
            try await b.subscribe(sneaky, "> * a.> a.b ~2E é")
            try await Self.waitForInterest(nats, node: "b", [">", "*", "a.>", "a.b", "~2E", "é"])
            // On NATS these are plain literal tokens: none is a wildcard.
            let subjects = try await nats.subscriptions(ofClientsNamed: "lhttpd b")
            #expect(subjects.allSatisfy { $0.hasPrefix("lhttp.") && !$0.contains("*") && !$0.contains(">") && $0.split(separator: ".").count == 2 })

            let http = try await a.publisher()
            for channel in ["a", "b", "a.c", "x", "a.b.c", "."] {
                let response = try await http.request(path: "/publish?channel=\(channel)", body: ByteBuffer(string: "secret \(channel)"))
                #expect(response.status == 200)
            }
            for channel in [">", "a.b", "é"] {
                let encoded = channel.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? channel
                #expect(try await http.request(path: "/publish?channel=\(encoded)", body: ByteBuffer(string: "for \(channel)")).status == 200)
            }
            #expect(try await sneaky.nextMessage().bodyString == "for >")
            #expect(try await sneaky.nextMessage().bodyString == "for a.b")
            #expect(try await sneaky.nextMessage().bodyString == "for é")

            // A foreign publisher on our subjects is ignored, not delivered and not fatal.
            var logger = a.gateway.logger
            logger.logLevel = .critical
            let foreign = NATSClient(configuration: .init(servers: [try NATSServerURL(parsing: nats.url)]), eventLoop: MultiThreadedEventLoopGroup.singleton.next(), logger: logger)
            foreign.start { _ in }
            try await eventually { foreign.currentStatus.state == .connected }
            try foreign.publish(ByteBuffer(string: "LHTTP/1.0 evil\r\n\r\nnot an envelope"), to: NATSSubject.channel("a.b", prefix: "lhttp"))
            try await foreign.flush()
            await foreign.shutdown()
            #expect(try await http.request(path: "/publish?channel=a.b", body: ByteBuffer(string: "after")).status == 200)
            #expect(try await sneaky.nextMessage().bodyString == "after")

            // The links never broke.
            #expect(a.cluster?.client.currentStatus.connections == 1)
            #expect(b.cluster?.client.currentStatus.connections == 1)
            try await sneaky.close()
            try await http.close()
        }
    }

    @Test func bothNodesReconnectAndDeliverAfterNATSIsKilledAndRestarted() async throws {
        let nats = try await NATSServerProcess()
        try await TestServer.withNodes(nats) { a, b in
            let onA = try await a.client()
            let onB = try await b.client()
            try await a.subscribe(onA, "room")
            try await b.subscribe(onB, "room")
            try await Self.waitForInterest(nats, node: "b", ["room"])

            nats.kill()
            try await eventually { a.cluster?.health?.isDegraded == true && b.cluster?.health?.isDegraded == true }
            // Down: each node still serves its own clients, and says so in /healthz.
            let http = try await a.publisher()
            let health = try await http.request(method: .GET, path: "/healthz")
            #expect(health.status == 200)
            #expect(health.bodyString.contains("\"status\":\"degraded\""), "\(health.bodyString)")
            #expect(health.bodyString.contains("\"state\":\"disconnected\""), "\(health.bodyString)")
            let local = try await http.request(path: "/publish?channel=room", body: ByteBuffer(string: "local while down"))
            #expect(local.bodyString.contains("\"deliveries\":1"))
            #expect(try await onA.nextMessage().bodyString == "local while down")

            try await nats.start()
            try await eventually { a.cluster?.client.currentStatus.connections == 2 && b.cluster?.client.currentStatus.connections == 2 }
            try await Self.waitForInterest(nats, node: "b", ["room"])
            try await Self.waitForInterest(nats, node: "a", ["room"])
            // What a published while down was kept and sent on reconnect; b may or may not have been
            // re-subscribed by then (at-most-once across nodes), so b skips it if it comes.
            let response = try await http.request(path: "/publish?channel=room", body: ByteBuffer(string: "after restart"))
            #expect(response.status == 200)
            #expect(try await onA.nextMessage().bodyString == "after restart")
            var body = try await onB.nextMessage().bodyString
            if body == "local while down" { body = try await onB.nextMessage().bodyString }
            #expect(body == "after restart")
            let healthAfter = try await http.request(method: .GET, path: "/healthz").bodyString
            #expect(healthAfter.contains("\"status\":\"ok\"") && healthAfter.contains("\"reconnects\":1"), "\(healthAfter)")
            try await onA.close()
            try await onB.close()
            try await http.close()
        }
    }

    @Test func aThousandChannelsAcrossNodes() async throws {
        let nats = try await NATSServerProcess()
        try await TestServer.withNodes(nats) { a, b in
            let channels = (0..<1000).map { "ch-\($0)" }
            var subscribers: [LHTTPWebSocketClient] = []
            // 20 connections × 50 channels (limits.max_channels_per_message is 64).
            for group in 0..<20 {
                let client = try await b.client()
                try await b.subscribe(client, channels[(group * 50)..<(group * 50 + 50)].joined(separator: " "))
                subscribers.append(client)
            }
            try await Self.waitForInterest(nats, node: "b", Set(channels))
            let publisher = try await a.client()
            for channel in channels {
                try await publisher.send(LHTTPMessage(command: "tick", headers: ["publish": channel], body: channel))
            }
            for (group, client) in subscribers.enumerated() {
                for index in 0..<50 {
                    #expect(try await client.nextMessage().bodyString == "ch-\(group * 50 + index)")
                }
            }
            try await publisher.send(LHTTPMessage(command: "tick", headers: ["publish": "ch-0"], body: "end"))
            #expect(try await subscribers[0].nextMessage().bodyString == "end")
            #expect(b.cluster?.health?["channels"] == .int(1000))
            for client in subscribers { try await client.close() }
            try await Self.waitForInterest(nats, node: "b", [])
            try await publisher.close()
        }
    }

    @Test func aMessageTooLargeForNATSIsRefusedEverywhereWithAClearError() async throws {
        let nats = try await NATSServerProcess(maxPayload: 4096)
        try await TestServer.withNodes(nats) { a, b in
            try await eventually { a.cluster?.client.maxPayload == 4096 }
            let local = try await a.client()
            try await a.subscribe(local, "room")
            let big = String(repeating: "x", count: 5000)
            try await local.send(LHTTPMessage(command: "chat", headers: ["publish": "room"], body: big))
            let reply = try await local.nextMessage()
            #expect(reply.command == "error")
            #expect(reply.headers["status"] == "413")
            let http = try await a.publisher()
            let response = try await http.request(path: "/publish?channel=room", body: ByteBuffer(string: big))
            #expect(response.status == 413)
            #expect(response.bodyString.contains("max_payload"))
            // Nothing was delivered, not even locally, and the link is intact.
            try await local.send(LHTTPMessage(command: "chat", headers: ["publish": "room"], body: "small"))
            #expect(try await local.nextMessage().bodyString == "small")
            #expect(a.cluster?.client.currentStatus.connections == 1)
            try await local.close()
            try await http.close()
        }
    }
}
