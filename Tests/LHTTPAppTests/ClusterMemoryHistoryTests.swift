import Foundation
import LHTTPClient
import LHTTPConfig
import LHTTPNATS
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import Testing

/// `cluster.history: memory` against a real nats-server (no JetStream): each node keeps, with its own
/// positions, what it hears of the channels it has subscribers on, and starts a channel's stream anew
/// whenever it may have missed something (the channel's last subscriber gone, the NATS link lost), so a
/// position never spans a gap unseen.
@Suite("History in the cluster, each node its own (memory)")
struct ClusterMemoryHistoryTests {
    static func node(_ nats: NATSServerProcess, _ id: String) -> (inout GatewayConfig) -> Void {
        { config in
            ClusterHistoryTests.node(nats, id)(&config)
            config.cluster.history = .memory
        }
    }

    static func position(_ message: LHTTPMessage, _ index: Int = 0) throws -> HistoryPosition {
        let token = try #require(message.headers["seq"]?.split(separator: " ").dropFirst(index).first)
        return try #require(HistoryPosition(parsing: token))
    }

    /// Until node `id` holds (or no longer holds) the plain subscription of `channel`.
    static func waitForSubscription(_ nats: NATSServerProcess, node id: String, _ channel: String, held: Bool) async throws {
        let subject = NATSSubject.channel(channel, prefix: "lhttp")
        let deadline = ContinuousClock.now + .seconds(20)
        while try await nats.subscriptions(ofClientsNamed: "lhttpd \(id)").contains(subject) != held {
            guard ContinuousClock.now < deadline else { throw TestFailure("node \(id) subscription of \(subject) is not \(held)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Recovers `channel` from `since` on `node`: the replayed bodies and the `subscribed` answer.
    static func recover(_ node: TestServer, _ channel: String, since: HistoryPosition) async throws -> (bodies: [String], answer: LHTTPMessage, client: LHTTPWebSocketClient) {
        let client = try await node.client()
        try await client.send(LHTTPMessage(command: "sub", headers: ["subscribe": channel, "since": since.description]))
        var bodies: [String] = []
        while true {
            let message = try await client.nextMessage()
            if message.command == "subscribed" { return (bodies, message, client) }
            bodies.append(message.bodyString)
        }
    }

    @Test func eachNodeKeepsWhatItHearsWithItsOwnPositions() async throws {
        let nats = try await NATSServerProcess()
        try await ClusterHistoryTests.withNodes(nats, node: Self.node, streamReady: false) { a, b in
            let onA = try await a.client()
            let keeper = try await b.client()
            let onB = try await b.client()
            try await a.subscribe(onA, "chat-m")
            try await b.subscribe(keeper, "chat-m")
            try await b.subscribe(onB, "chat-m")
            try await Self.waitForSubscription(nats, node: "b", "chat-m", held: true)
            let http = try await a.publisher()
            let answered = try #require(try ClusterHistoryTests.position(try await ClusterHistoryTests.publish(http, "chat-m", "first"))[0])
            #expect(try Self.position(try await onA.nextMessage()) == answered)
            _ = try await keeper.nextMessage()
            let heardOnB = try await onB.nextMessage()
            let seen = try Self.position(heardOnB)
            #expect(seen.epoch != answered.epoch, "node B stamps its own stream")
            #expect(heardOnB.headers["prev"] == "0")
            try await onB.close()
            for index in 0..<2 { _ = try await ClusterHistoryTests.publish(http, "chat-m", "missed \(index)") }
            for index in 0..<2 { #expect(try await keeper.nextMessage().bodyString == "missed \(index)") }
            let (bodies, answer, back) = try await Self.recover(b, "chat-m", since: seen)
            #expect(bodies == ["missed 0", "missed 1"])
            #expect(answer.headers["recovered"] == "true" && answer.headers["missed"] == "2")
            for client in [onA, keeper, back] { try await client.close() }
            try await http.close()
        }
    }

    /// Node B's last subscriber leaves: it stops hearing the channel, so what A publishes then is not in
    /// B's stream, and a position from before gets `recovered:false` on B (a new epoch), never a silent gap.
    @Test func aNodeThatStoppedHearingAChannelReportsTheGap() async throws {
        let nats = try await NATSServerProcess()
        try await ClusterHistoryTests.withNodes(nats, node: Self.node, streamReady: false) { a, b in
            let onB = try await b.client()
            try await b.subscribe(onB, "chat-gap")
            try await Self.waitForSubscription(nats, node: "b", "chat-gap", held: true)
            let http = try await a.publisher()
            _ = try await ClusterHistoryTests.publish(http, "chat-gap", "heard")
            let seen = try Self.position(try await onB.nextMessage())
            try await onB.close()
            try await Self.waitForSubscription(nats, node: "b", "chat-gap", held: false)
            _ = try await ClusterHistoryTests.publish(http, "chat-gap", "unheard on b")
            let (bodies, answer, back) = try await Self.recover(b, "chat-gap", since: seen)
            #expect(answer.headers["recovered"] == "false", "\(answer.headers)")
            #expect(!bodies.contains("heard"), "an old epoch's messages are gone with it")
            try await back.close()
            try await http.close()
        }
    }

    /// The NATS link drops and comes back: the node may have missed anything meanwhile, so positions from
    /// before recover with `recovered:false`.
    @Test func aLostLinkStartsEveryStreamAnew() async throws {
        let nats = try await NATSServerProcess()
        try await TestServer.with(Self.node(nats, "b")) { b in
            try await eventually { b.isClustered }
            let keeper = try await b.client()
            try await b.subscribe(keeper, "chat-link")
            let http = try await b.publisher()
            _ = try await ClusterHistoryTests.publish(http, "chat-link", "before")
            let seen = try Self.position(try await keeper.nextMessage())
            nats.kill()
            try await eventually { !b.isClustered }
            try await nats.start()
            try await eventually { b.isClustered }
            let (_, answer, back) = try await Self.recover(b, "chat-link", since: seen)
            #expect(answer.headers["recovered"] == "false")
            #expect(answer.headers["stream"].flatMap { HistoryPosition(parsing: Substring($0)) }?.epoch != seen.epoch)
            for client in [keeper, back] { try await client.close() }
            try await http.close()
        }
    }

    /// To two channels with history: a connection on both, on a remote node, gets it once, with that
    /// node's position in each.
    @Test func aPublicationToTwoChannelsReachesARemoteConnectionOnceWithBothPositions() async throws {
        let nats = try await NATSServerProcess()
        try await ClusterHistoryTests.withNodes(nats, node: Self.node, streamReady: false) { a, b in
            let both = try await b.client()
            try await b.subscribe(both, "chat-x chat-y")
            try await Self.waitForSubscription(nats, node: "b", "chat-x", held: true)
            try await Self.waitForSubscription(nats, node: "b", "chat-y", held: true)
            let http = try await a.publisher()
            _ = try await ClusterHistoryTests.publish(http, "chat-x chat-y plain", "twice")
            let message = try await both.nextMessage()
            #expect(message.bodyString == "twice")
            let x = try Self.position(message, 0)
            let y = try Self.position(message, 1)
            #expect(x.offset == 1 && y.offset == 1 && x.epoch != y.epoch, "node B's own streams of each")
            #expect(message.headers["seq"]?.hasSuffix(" -") == true)
            try await b.roundTrip(both)  // nothing doubled
            try await both.close()
            try await http.close()
        }
    }
}
