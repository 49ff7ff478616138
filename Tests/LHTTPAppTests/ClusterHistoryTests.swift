import Foundation
import LHTTPClient
import LHTTPConfig
import LHTTPNATS
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import Testing

/// History in the cluster (`cluster.history: jetstream`) against a real `nats-server -js`: the stream
/// assigns the offsets and every node delivers in its order, a client recovers on any node (one that
/// restarted too), history outlives a nats-server restart with file storage, and without JetStream live
/// delivery goes on and recovery says `recovered:false`.
@Suite("History in the cluster (JetStream)")
struct ClusterHistoryTests {
    static func node(_ nats: NATSServerProcess, _ id: String) -> (inout GatewayConfig) -> Void {
        { config in
            config.cluster = ClusterConfig(nats: [nats.url], nodeID: id, reconnectMinMs: 20, reconnectMaxMs: 200)
            config.cluster.jetstream.timeoutMs = 5000
            config.channels = [ChannelOptionsConfig(prefix: "chat-", historySize: 100)]
            config.publish.idempotencyWindowS = 60
        }
    }

    /// A node connected to NATS whose history stream is ready.
    static func ready(_ node: TestServer) async throws {
        try await eventually { node.isClustered && node.cluster?.history?.epoch != nil }
    }

    /// Nodes `a` and `b` on `nats` (configured by `node`), linked, and with `streamReady` their stream known.
    static func withNodes(
        _ nats: NATSServerProcess, node: @escaping (NATSServerProcess, String) -> (inout GatewayConfig) -> Void = ClusterHistoryTests.node,
        streamReady: Bool = true, _ body: (TestServer, TestServer) async throws -> Void
    ) async throws {
        try await TestServer.with(node(nats, "a")) { a in
            try await TestServer.with(node(nats, "b")) { b in
                try await eventually { a.isClustered && b.isClustered }
                if streamReady {
                    try await Self.ready(a)
                    try await Self.ready(b)
                }
                try await body(a, b)
            }
        }
    }

    /// Waits until node `id` holds the live and the RePublish subscription of every channel.
    static func waitForInterest(_ nats: NATSServerProcess, node id: String, _ channels: [String]) async throws {
        let wanted = Set(channels.flatMap { [NATSSubject.channel($0, prefix: "lhttp"), "lhttp.r.\(NATSSubject.encode($0))"] })
        let deadline = ContinuousClock.now + .seconds(20)
        while !Set(try await nats.subscriptions(ofClientsNamed: "lhttpd \(id)")).isSuperset(of: wanted) {
            guard ContinuousClock.now < deadline else { throw TestFailure("node \(id) does not hold \(wanted.sorted())") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    static func position(_ response: HTTPResponse) throws -> [HistoryPosition?] {
        struct Answer: Decodable { var seq: [String?] }
        let answer = try JSONDecoder().decode(Answer.self, from: Data(response.bodyString.utf8))
        return answer.seq.map { $0.flatMap { HistoryPosition(parsing: Substring($0)) } }
    }

    static func publish(_ http: HTTPPublisher, _ channels: String, _ body: String, key: String? = nil) async throws -> HTTPResponse {
        let query = channels.split(separator: " ").map { "channel=\($0)" }.joined(separator: "&")
        var headers: [(String, String)] = []
        if let key { headers.append(("Idempotency-Key", key)) }
        let response = try await http.request(path: "/publish?\(query)", headers: headers, body: ByteBuffer(string: body))
        #expect(response.status == 200, "\(response.bodyString)")
        return response
    }

    @Test func theStreamAssignsOffsetsAndEveryNodeDeliversInItsOrder() async throws {
        let nats = try await NATSServerProcess(jetStream: true)
        try await Self.withNodes(nats) { a, b in
            let onA = try await a.client()
            let onB = try await b.client()
            try await a.subscribe(onA, "chat-1")
            try await b.subscribe(onB, "chat-1")
            try await Self.waitForInterest(nats, node: "a", ["chat-1"])
            try await Self.waitForInterest(nats, node: "b", ["chat-1"])
            let httpA = try await a.publisher()
            let httpB = try await b.publisher()
            var answered: [HistoryPosition] = []
            for index in 0..<6 {
                let http = index % 2 == 0 ? httpA : httpB
                answered.append(try #require(try Self.position(try await Self.publish(http, "chat-1", "m\(index)"))[0]))
            }
            #expect(answered.map(\.offset) == answered.map(\.offset).sorted(), "offsets only grow")
            #expect(Set(answered.map(\.epoch)).count == 1)
            var seen: [[String]] = []
            for client in [onA, onB] {
                var lines: [String] = []
                var last: UInt64 = 0
                for _ in 0..<6 {
                    let message = try await client.nextMessage()
                    let seq = try #require(message.headers["seq"].flatMap { HistoryPosition(parsing: Substring($0)) })
                    #expect(message.headers["prev"] == String(last), "prev is the channel's previous offset")
                    last = seq.offset
                    lines.append("\(message.bodyString) \(seq)")
                }
                seen.append(lines)
            }
            #expect(seen[0] == seen[1], "both nodes deliver the same stream in the same order")
            #expect(seen[0].map { $0.split(separator: " ")[1] } == answered.map { Substring($0.description) })
            for client in [onA, onB] { try await client.close() }
            try await httpA.close()
            try await httpB.close()
        }
    }

    /// Published on node A while the client was away and node B restarted: B recovers it from the stream.
    @Test func publishedOnOneNodeIsRecoveredOnAnotherAfterItRestarted() async throws {
        let nats = try await NATSServerProcess(jetStream: true)
        try await TestServer.with(Self.node(nats, "a")) { a in
            try await Self.ready(a)
            let http = try await a.publisher()
            var seen = HistoryPosition(epoch: "x", offset: 0)
            try await TestServer.with(Self.node(nats, "b")) { b in
                try await Self.ready(b)
                let client = try await b.client()
                try await client.send(LHTTPMessage(command: "sub", headers: ["subscribe": "chat-away", "since": "-"]))
                let start = try await client.nextMessage()
                #expect(start.command == "subscribed" && start.headers["recovered"] == "true" && start.headers["missed"] == "0")
                try await Self.waitForInterest(nats, node: "b", ["chat-away"])
                _ = try await Self.publish(http, "chat-away", "seen")
                let delivered = try await client.nextMessage()
                #expect(delivered.bodyString == "seen")
                seen = try #require(delivered.headers["seq"].flatMap { HistoryPosition(parsing: Substring($0)) })
                try await client.close()
            }
            // B is gone; four more on A.
            var missed: [HistoryPosition] = []
            for index in 0..<4 {
                missed.append(try #require(try Self.position(try await Self.publish(http, "chat-away", "m\(index)"))[0]))
            }
            try await TestServer.with(Self.node(nats, "b")) { b in
                try await Self.ready(b)
                let back = try await b.client()
                try await back.send(LHTTPMessage(command: "sub", headers: ["subscribe": "chat-away", "since": seen.description]))
                for index in 0..<4 {
                    let message = try await back.nextMessage()
                    #expect(message.bodyString == "m\(index)")
                    #expect(message.headers["seq"] == missed[index].description)
                }
                let answer = try await back.nextMessage()
                #expect(answer.command == "subscribed")
                #expect(answer.headers["recovered"] == "true")
                #expect(answer.headers["missed"] == "4")
                #expect(answer.headers["stream"] == missed.last?.description)
                // A wrong epoch gets everything retained and recovered:false.
                let stranger = try await b.client()
                try await stranger.send(LHTTPMessage(command: "sub", headers: ["subscribe": "chat-away", "since": "other:3"]))
                var bodies: [String] = []
                while true {
                    let message = try await stranger.nextMessage()
                    if message.command == "subscribed" {
                        #expect(message.headers["recovered"] == "false")
                        #expect(message.headers["missed"] == "5")
                        break
                    }
                    bodies.append(message.bodyString)
                }
                #expect(bodies == ["seen", "m0", "m1", "m2", "m3"])
                try await back.close()
                try await stranger.close()
            }
            try await http.close()
        }
    }

    /// Publications keep landing on node A while clients on node B recover: each offset once, in order.
    @Test func aPublicationRacingTheRecoveryIsDeliveredOnce() async throws {
        let nats = try await NATSServerProcess(jetStream: true)
        try await Self.withNodes(nats) { a, b in
            let http = try await a.publisher()
            let total = 40
            let first = try #require(try Self.position(try await Self.publish(http, "chat-race", "0"))[0])
            let publishing = Task {
                let racer = try await a.publisher()
                for index in 1..<total { _ = try await Self.publish(racer, "chat-race", "\(index)") }
                try await racer.close()
            }
            var clients: [LHTTPWebSocketClient] = []
            for _ in 0..<3 {
                let client = try await b.client()
                try await client.send(LHTTPMessage(command: "sub", headers: ["subscribe": "chat-race", "since": first.description]))
                clients.append(client)
            }
            try await publishing.value
            for client in clients {
                var bodies: [Int] = []
                var answers = 0
                while bodies.count < total - 1 || answers == 0 {
                    let message = try await client.nextMessage()
                    if message.command == "subscribed" {
                        answers += 1
                        #expect(message.headers["recovered"] == "true")
                        continue
                    }
                    bodies.append(try #require(Int(message.bodyString)))
                }
                #expect(bodies == Array(1..<total), "each once, in order")
                #expect(answers == 1)
                try await b.roundTrip(client)
                try await client.close()
            }
            try await http.close()
        }
    }

    /// To two channels with history: stored once per channel, delivered once per connection with both
    /// positions; a connection recovering both gets it once.
    @Test func aPublicationToTwoChannelsWithHistoryReachesEachConnectionOnce() async throws {
        let nats = try await NATSServerProcess(jetStream: true)
        try await Self.withNodes(nats) { a, b in
            let both = try await b.client()
            let onlyOne = try await b.client()
            try await b.subscribe(both, "chat-x chat-y")
            try await b.subscribe(onlyOne, "chat-y")
            try await Self.waitForInterest(nats, node: "b", ["chat-x", "chat-y"])
            let http = try await a.publisher()
            let positions = try Self.position(try await Self.publish(http, "chat-x chat-y plain", "twice"))
            #expect(positions.count == 3 && positions[0] != nil && positions[1] != nil && positions[2] == nil)
            let message = try await both.nextMessage()
            #expect(message.bodyString == "twice")
            #expect(message.headers["seq"] == "\(positions[0]!) \(positions[1]!) -")
            let single = try await onlyOne.nextMessage()
            #expect(single.bodyString == "twice")
            #expect(single.headers["seq"]?.split(separator: " ")[1] == Substring(positions[1]!.description))
            // Nothing doubled: the next thing each gets is the round trip.
            try await b.roundTrip(both)
            try await b.roundTrip(onlyOne)

            let back = try await b.client()
            let epoch = positions[0]!.epoch
            try await back.send(LHTTPMessage(command: "sub", headers: ["subscribe": "chat-x chat-y", "since": "\(epoch):0 \(epoch):0"]))
            #expect(try await back.nextMessage().bodyString == "twice")
            let x = try await back.nextMessage()
            #expect(x.command == "subscribed" && x.headers["channel"] == "chat-x" && x.headers["missed"] == "1")
            let y = try await back.nextMessage()
            #expect(y.command == "subscribed" && y.headers["channel"] == "chat-y" && y.headers["missed"] == "0", "once per connection")
            for client in [both, onlyOne, back] { try await client.close() }
            try await http.close()
        }
    }

    /// An `Idempotency-Key` retried on another node is JetStream's duplicate: stored and delivered once,
    /// answered with the first one's positions.
    @Test func aRetryOnAnotherNodeIsPublishedOnce() async throws {
        let nats = try await NATSServerProcess(jetStream: true)
        try await Self.withNodes(nats) { a, b in
            let client = try await a.client()
            try await a.subscribe(client, "chat-once")
            try await Self.waitForInterest(nats, node: "a", ["chat-once"])
            let httpA = try await a.publisher()
            let httpB = try await b.publisher()
            // A key that cannot be one is refused, as on one node.
            for bad in ["", String(repeating: "k", count: 300)] {
                let refused = try await httpA.request(path: "/publish?channel=chat-once", headers: [("Idempotency-Key", bad)], body: ByteBuffer(string: "x"))
                #expect(refused.status == 400, "\(bad.count) bytes")
            }
            let first = try await Self.publish(httpA, "chat-once", "cron", key: "job-42")
            let retry = try await Self.publish(httpB, "chat-once", "cron", key: "job-42")
            #expect(try Self.position(retry) == Self.position(first))
            #expect(retry.headers.first(name: "idempotent-replayed") == "true")
            #expect(try await client.nextMessage().bodyString == "cron")
            try await a.roundTrip(client)
            try await client.close()
            try await httpA.close()
            try await httpB.close()
        }
    }

    /// File storage: the stream, its epoch and what it holds survive a nats-server restart.
    @Test func historyOutlivesANATSServerRestart() async throws {
        let nats = try await NATSServerProcess(jetStream: true)
        try await TestServer.with(Self.node(nats, "a")) { a in
            try await Self.ready(a)
            let http = try await a.publisher()
            var kept: [HistoryPosition] = []
            for index in 0..<3 { kept.append(try #require(try Self.position(try await Self.publish(http, "chat-kept", "k\(index)"))[0])) }
            nats.stop()
            try await nats.start()
            try await eventually { a.isClustered }
            let client = try await a.client()
            try await client.send(LHTTPMessage(command: "sub", headers: ["subscribe": "chat-kept", "since": "\(kept[0].epoch):0"]))
            for index in 0..<3 { #expect(try await client.nextMessage().bodyString == "k\(index)") }
            let answer = try await client.nextMessage()
            #expect(answer.headers["recovered"] == "true")
            #expect(answer.headers["stream"] == kept[2].description, "same epoch, same offsets")
            try await client.close()
            try await http.close()
        }
    }

    /// No JetStream on the server: publications still reach every node live (without positions), and a
    /// recovery answers at once with `recovered:false`.
    @Test func withoutJetStreamLiveDeliveryGoesOnAndRecoveryIsNotPromised() async throws {
        let nats = try await NATSServerProcess()
        try await Self.withNodes(nats, streamReady: false) { a, b in
            // Linked, but the history stream is not there: /healthz says so.
            try await eventually { b.cluster?.health?["history"] == .string("unavailable") && b.cluster?.health?.isDegraded == true }
            let onB = try await b.client()
            try await b.subscribe(onB, "chat-live")
            try await Self.waitForInterest(nats, node: "b", ["chat-live"])
            let http = try await a.publisher()
            let response = try await Self.publish(http, "chat-live", "still here")
            #expect(try Self.position(response) == [nil])
            let message = try await onB.nextMessage()
            #expect(message.bodyString == "still here")
            #expect(message.headers["seq"] == nil)
            let back = try await b.client()
            try await back.send(LHTTPMessage(command: "sub", headers: ["subscribe": "chat-live", "since": "js1:1"]))
            let answer = try await back.nextMessage()
            #expect(answer.command == "subscribed" && answer.headers["recovered"] == "false")
            #expect(try await http.request(method: .GET, path: "/history?channel=chat-live").status == 503)
            for client in [onB, back] { try await client.close() }
            try await http.close()
        }
    }

    /// The Swift client that reconnects by itself: its node restarts (same port) while publications land on
    /// the other; back, it gets what it missed once, in order, and `recovered: true`.
    @Test func theRecoveringSwiftClientGetsWhatItMissedAcrossANodeRestart() async throws {
        let nats = try await NATSServerProcess(jetStream: true)
        try await TestServer.with(Self.node(nats, "a")) { a in
            try await Self.ready(a)
            let http = try await a.publisher()
            var port = 0
            let client: LHTTPRecoveringClient
            do {
                let b = try await TestServer.start(Self.node(nats, "b"))
                try await Self.ready(b)
                port = b.port
                client = LHTTPRecoveringClient(host: "127.0.0.1", port: port, channels: ["chat-swift"], reconnectDelay: .milliseconds(20))
                try await client.start()
                guard case .recovered(let start) = try await client.next() else { throw TestFailure("no starting point") }
                #expect(start.recovered && start.missed == 0)
                try await Self.waitForInterest(nats, node: "b", ["chat-swift"])
                _ = try await Self.publish(http, "chat-swift", "before")
                guard case .message(let before) = try await client.next() else { throw TestFailure("no live message") }
                #expect(before.bodyString == "before")
                try await b.stop()
            }
            guard case .disconnected(_, let willReconnect) = try await client.next() else { throw TestFailure("no disconnect") }
            #expect(willReconnect)
            for index in 0..<3 { _ = try await Self.publish(http, "chat-swift", "missed \(index)") }
            try await TestServer.with({ config in
                Self.node(nats, "b")(&config)
                config.listen = ListenAddress(host: "127.0.0.1", port: port)
            }) { b in
                try await Self.ready(b)
                var events: [LHTTPRecoveringClient.Event] = []
                while events.count < 5 { events.append(try await client.next()) }
                guard case .reconnected = events[0] else { throw TestFailure("expected a reconnect, got \(events)") }
                let bodies = events[1...3].compactMap { event -> String? in
                    if case .message(let message) = event { return message.bodyString }
                    return nil
                }
                #expect(bodies == ["missed 0", "missed 1", "missed 2"])
                guard case .recovered(let answer) = events[4] else { throw TestFailure("expected the answer, got \(events[4])") }
                #expect(answer.recovered && answer.missed == 3)
                // Live again on the new node, once.
                try await Self.waitForInterest(nats, node: "b", ["chat-swift"])
                _ = try await Self.publish(http, "chat-swift", "after")
                guard case .message(let after) = try await client.next() else { throw TestFailure("no live message after") }
                #expect(after.bodyString == "after")
                await client.close()
            }
            try await http.close()
        }
    }

    /// `GET /history` on any node reads the stream: the newest `limit`, or the first `limit` after a position.
    @Test func getHistoryReadsTheStreamOnAnyNode() async throws {
        let nats = try await NATSServerProcess(jetStream: true)
        try await Self.withNodes(nats) { a, b in
            let httpA = try await a.publisher()
            var positions: [HistoryPosition] = []
            for index in 0..<5 {
                positions.append(try #require(try Self.position(try await Self.publish(httpA, "chat-log", "line \(index)"))[0]))
                _ = try await Self.publish(httpA, "chat-other", "noise")  // offsets of chat-log are not contiguous
            }
            let httpB = try await b.publisher()
            let newest = try await httpB.request(method: .GET, path: "/history?channel=chat-log&limit=2")
            #expect(newest.status == 200)
            let answer = try JSONDecoder().decode(HistoryEndToEndTests.HistoryJSON.self, from: Data(newest.bodyString.utf8))
            #expect(answer.stream == positions[4].description)
            #expect(answer.messages.map(\.body) == ["line 3", "line 4"])
            #expect(answer.messages.map(\.seq) == [positions[3].description, positions[4].description])
            #expect(answer.messages.last?.prev == positions[3].offset, "prev is the channel's previous offset")
            let after = try await httpB.request(method: .GET, path: "/history?channel=chat-log&since=\(positions[1])&limit=2")
            let following = try JSONDecoder().decode(HistoryEndToEndTests.HistoryJSON.self, from: Data(after.bodyString.utf8))
            #expect(following.messages.map(\.body) == ["line 2", "line 3"])
            #expect(following.recovered)
            #expect(try await httpB.request(method: .GET, path: "/history?channel=plain").status == 404)
            try await httpA.close()
            try await httpB.close()
        }
    }

    /// JetStream goes away while the nodes run (nats-server killed): a publication is still delivered to
    /// the node's own subscribers at once, answered without positions, and nothing waits longer than the
    /// store's timeout.
    @Test func whenNATSDiesPublicationsStillReachLocalSubscribers() async throws {
        let nats = try await NATSServerProcess(jetStream: true)
        try await TestServer.with({ config in
            Self.node(nats, "a")(&config)
            config.cluster.jetstream.timeoutMs = 500
        }) { a in
            try await Self.ready(a)
            let local = try await a.client()
            try await a.subscribe(local, "chat-down")
            let http = try await a.publisher()
            _ = try await Self.publish(http, "chat-down", "up")
            #expect(try await local.nextMessage().headers["seq"] != nil)
            nats.kill()
            try await eventually { !a.isClustered }
            let response = try await Self.publish(http, "chat-down", "down")
            #expect(try Self.position(response) == [nil])
            let message = try await local.nextMessage()
            #expect(message.bodyString == "down" && message.headers["seq"] == nil)
            // A recovery meanwhile: answered, recovered:false.
            let back = try await a.client()
            try await back.send(LHTTPMessage(command: "sub", headers: ["subscribe": "chat-down", "since": "-"]))
            let answer = try await back.nextMessage()
            #expect(answer.command == "subscribed" && answer.headers["recovered"] == "false")
            for client in [local, back] { try await client.close() }
            try await http.close()
        }
    }

    /// A publication too large for NATS is refused before anything is stored or delivered: 413 over HTTP,
    /// an error reply over the websocket, as without history.
    @Test func aPublicationTooLargeForTheStreamIsRefusedAtOnce() async throws {
        let nats = try await NATSServerProcess(maxPayload: 4096, jetStream: true)
        try await TestServer.with(Self.node(nats, "a")) { a in
            try await Self.ready(a)
            let listener = try await a.client()
            try await a.subscribe(listener, "chat-big")
            let http = try await a.publisher()
            let big = String(repeating: "x", count: 5000)
            #expect(try await http.request(path: "/publish?channel=chat-big", body: ByteBuffer(string: big)).status == 413)
            let publisher = try await a.client()
            try await publisher.send(LHTTPMessage(command: "chat", headers: ["publish": "chat-big"], body: big))
            let reply = try await publisher.nextMessage()
            #expect(reply.command == "error" && reply.headers["status"] == "413")
            try await a.roundTrip(listener)  // nothing was delivered
            for client in [listener, publisher] { try await client.close() }
            try await http.close()
        }
    }

    /// The stream keeps the largest size of any channel; a channel's own smaller `history_size` applies when
    /// it is read: more missed than that gives the newest ones and `recovered:false`.
    @Test func aChannelsOwnSizeAppliesWhenItIsRead() async throws {
        let nats = try await NATSServerProcess(jetStream: true)
        try await TestServer.with({ config in
            Self.node(nats, "a")(&config)
            config.channels.append(ChannelOptionsConfig(prefix: "tiny-", historySize: 3))
        }) { a in
            try await Self.ready(a)
            #expect(a.cluster?.history?.streamConfig.maxMsgsPerSubject == 100)
            let http = try await a.publisher()
            var positions: [HistoryPosition] = []
            for index in 0..<6 { positions.append(try #require(try Self.position(try await Self.publish(http, "tiny-x", "t\(index)"))[0])) }
            let client = try await a.client()
            try await client.send(LHTTPMessage(command: "sub", headers: ["subscribe": "tiny-x", "since": positions[0].description]))
            var bodies: [String] = []
            while true {
                let message = try await client.nextMessage()
                if message.command == "subscribed" {
                    #expect(message.headers["recovered"] == "false", "two of the five missed are beyond the channel's 3")
                    #expect(message.headers["missed"] == "3")
                    break
                }
                bodies.append(message.bodyString)
            }
            #expect(bodies == ["t3", "t4", "t5"])
            // Within the channel's size: complete.
            let near = try await a.client()
            try await near.send(LHTTPMessage(command: "sub", headers: ["subscribe": "tiny-x", "since": positions[3].description]))
            #expect(try await near.nextMessage().bodyString == "t4")
            #expect(try await near.nextMessage().bodyString == "t5")
            #expect(try await near.nextMessage().headers["recovered"] == "true")
            for client in [client, near] { try await client.close() }
            try await http.close()
        }
    }
}
