import LHTTPGateway
import LHTTPProtocol
import NIOCore
import NIOEmbedded
import Testing

/// History through the gateway: stamped positions, recovery on subscribe, the `subscribed` answer.
@Suite("Gateway history")
final class GatewayHistoryTests {
    let loop = EmbeddedEventLoop()

    deinit { try? self.loop.syncShutdownGracefully() }

    /// History on `chat-` (size 3), none elsewhere; the clock is the embedded loop's.
    func gateway(size: Int = 3) -> Gateway {
        let loop = self.loop
        let policies = HistoryPolicies(rules: [(prefix: "chat-", policy: HistoryPolicy(size: size))])
        let history = ChannelHistory(store: MemoryHistory(maxBytes: 1 << 20), policies: policies, now: { loop.now })
        return Gateway(history: history)
    }

    func positions(_ message: LHTTPMessage) -> [String] {
        (message.headers["seq"] ?? "").split(separator: " ").map(String.init)
    }

    @Test func aPublicationWithHistoryCarriesItsPositionAndTheOffsetBefore() throws {
        let gateway = gateway()
        let subscriber = TestConnection(gateway, on: loop)
        subscriber.receive("LHTTP/1.0 chat\r\nsubscribe:chat-1\r\n\r\n")
        let publisher = TestConnection(gateway, on: loop)
        publisher.receive("LHTTP/1.0 chat\r\npublish:chat-1\r\nseq:forged:99\r\nprev:98\r\n\r\none")
        publisher.receive("LHTTP/1.0 chat\r\npublish:chat-1\r\n\r\ntwo")
        loop.run()
        let received = try subscriber.messages()
        #expect(received.map(\.bodyString) == ["one", "two"])
        let first = try #require(HistoryPosition(parsing: Substring(positions(received[0])[0])))
        #expect(first.offset == 1)
        #expect(received[0].headers.values(for: "seq").count == 1, "the publisher's own seq is replaced")
        #expect(received[0].headers["prev"] == "0")
        #expect(positions(received[1]) == ["\(first.epoch):2"])
        #expect(received[1].headers["prev"] == "1")
    }

    @Test func aMixedListHasADashForTheChannelWithoutHistoryAndPlainChannelsAreUntouched() throws {
        let gateway = gateway()
        let subscriber = TestConnection(gateway, on: loop)
        subscriber.receive("LHTTP/1.0 chat\r\nsubscribe:plain chat-1\r\n\r\n")
        let published = try gateway.publishKeepingHistory(
            ByteBuffer(string: "LHTTP/1.0 chat\r\npublish:plain chat-1\r\n\r\nboth"), to: ["plain", "chat-1"], source: .http
        )
        #expect(published.deliveries == 1)
        #expect(published.positions.count == 2 && published.positions[0] == nil && published.positions[1]?.offset == 1)
        try gateway.publish(ByteBuffer(string: "LHTTP/1.0 chat\r\npublish:plain\r\nseq:app-own\r\n\r\nplain"), to: ["plain"], source: .http)
        loop.run()
        let received = try subscriber.messages()
        #expect(received.count == 2)
        #expect(positions(received[0]) == ["-", published.positions[1]!.description])
        #expect(received[0].headers["prev"] == "- 0")
        #expect(received[1].headers["seq"] == "app-own", "no history there: the app's own header")
    }

    @Test func aSubscribeWithAPositionGetsWhatItMissedThenTheAnswerThenLiveMessages() throws {
        let gateway = gateway(size: 10)
        let publisher = TestConnection(gateway, on: loop)
        var last: HistoryPosition?
        for body in ["a", "b", "c"] {
            last = try gateway.publishKeepingHistory(ByteBuffer(string: "LHTTP/1.0 chat\r\npublish:chat-1\r\n\r\n\(body)"), to: ["chat-1"], source: .http).positions[0]
        }
        let seen = HistoryPosition(epoch: last!.epoch, offset: 1)
        let client = TestConnection(gateway, on: loop)
        client.receive("LHTTP/1.0 chat\r\nsubscribe:chat-1\r\nsince:\(seen)\r\n\r\n")
        publisher.receive("LHTTP/1.0 chat\r\npublish:chat-1\r\n\r\nd")
        loop.run()
        let received = try client.messages()
        #expect(received.map(\.command) == ["chat", "chat", "subscribed", "chat"])
        #expect(received.map(\.bodyString) == ["b", "c", "", "d"])
        let answer = received[2]
        #expect(answer.headers["channel"] == "chat-1")
        #expect(answer.headers["stream"] == "\(seen.epoch):3")
        #expect(answer.headers["recovered"] == "true")
        #expect(answer.headers["missed"] == "2")
        #expect(positions(received[3]) == ["\(seen.epoch):4"])
    }

    @Test func moreMissedThanRetainedOrAWrongEpochIsNotRecovered() throws {
        let gateway = gateway(size: 2)
        var epoch = ""
        for body in ["a", "b", "c", "d"] {
            epoch = try gateway.publishKeepingHistory(ByteBuffer(string: "LHTTP/1.0 chat\r\npublish:chat-1\r\n\r\n\(body)"), to: ["chat-1"], source: .http).positions[0]!.epoch
        }
        for since in ["\(epoch):1", "gone:3", "\(epoch):40"] {
            let client = TestConnection(gateway, on: loop)
            client.receive("LHTTP/1.0 chat\r\nsubscribe:chat-1\r\nsince:\(since)\r\n\r\n")
            loop.run()
            let received = try client.messages()
            #expect(received.map(\.bodyString) == ["c", "d", ""], "\(since)")
            #expect(received.last?.headers["recovered"] == "false")
            #expect(received.last?.headers["missed"] == "2")
        }
    }

    @Test func sinceDashGivesThePositionOnlyAndAChannelWithoutHistorySaysSo() throws {
        let gateway = gateway()
        try gateway.publish(ByteBuffer(string: "LHTTP/1.0 chat\r\npublish:chat-1\r\n\r\nold"), to: ["chat-1"], source: .http)
        let client = TestConnection(gateway, on: loop)
        client.receive("LHTTP/1.0 chat\r\nsubscribe:chat-1 plain\r\nsince:- -\r\n\r\n")
        loop.run()
        let received = try client.messages()
        #expect(received.map(\.command) == ["subscribed", "subscribed"])
        #expect(received[0].headers["stream"]?.hasSuffix(":1") == true)
        #expect(received[0].headers["recovered"] == "true" && received[0].headers["missed"] == "0")
        #expect(received[1].headers["channel"] == "plain")
        #expect(received[1].headers["recovered"] == "false" && received[1].headers["stream"] == nil)
        #expect(gateway.hub.stats.subscriptions == 2)
    }

    @Test func aMessageTwoRecoveredChannelsHoldIsSentOnce() throws {
        let gateway = gateway()
        let published = try gateway.publishKeepingHistory(
            ByteBuffer(string: "LHTTP/1.0 chat\r\npublish:chat-a chat-b\r\n\r\nshared"), to: ["chat-a", "chat-b"], source: .http
        )
        let a = published.positions[0]!, b = published.positions[1]!
        let client = TestConnection(gateway, on: loop)
        client.receive("LHTTP/1.0 chat\r\nsubscribe:chat-a chat-b\r\nsince:\(a.epoch):0 \(b.epoch):0\r\n\r\n")
        loop.run()
        let received = try client.messages()
        #expect(received.map(\.bodyString) == ["shared", "", ""])
        #expect(received.filter { $0.command == "subscribed" }.map { $0.headers["missed"] } == ["1", "0"])
    }

    @Test func aMalformedSinceIsRefusedAndNothingIsJoined() throws {
        let gateway = gateway()
        for since in ["nonsense", "a:1 b:2", "a:-3"] {
            let client = TestConnection(gateway, on: loop)
            client.receive("LHTTP/1.0 chat\r\nsubscribe:chat-1\r\nsince:\(since)\r\n\r\n")
            loop.run()
            let received = try client.messages()
            #expect(received.map(\.command) == ["error"], "\(since)")
            #expect(received.first?.headers["status"] == "400")
        }
        #expect(gateway.hub.stats.subscriptions == 0)
    }
}

@Suite("Gateway history across loops")
final class GatewayHistoryLoopTests {
    let loopA = EmbeddedEventLoop()
    let loopB = EmbeddedEventLoop()

    deinit {
        try? self.loopA.syncShutdownGracefully()
        try? self.loopB.syncShutdownGracefully()
    }

    /// Offsets are handed over through every loop's task queue, the publisher's own included: a
    /// publication from loop A cannot overtake one loop B queued on A before it, and a plain publication
    /// cannot overtake a publisher's earlier one with history.
    @Test func deliveriesKeepTheHistoryOrderOnEveryLoop() throws {
        let policies = HistoryPolicies(rules: [(prefix: "chat-", policy: HistoryPolicy(size: 10))])
        let gateway = Gateway(history: ChannelHistory(store: MemoryHistory(maxBytes: 1 << 20), policies: policies))
        let subscriber = TestConnection(gateway, on: loopA)
        subscriber.receive("LHTTP/1.0 s\r\nsubscribe:chat-1 plain\r\n\r\n")
        let onB = TestConnection(gateway, on: loopB)
        let onA = TestConnection(gateway, on: loopA)
        onB.receive("LHTTP/1.0 chat\r\npublish:chat-1\r\n\r\nfirst")
        onA.receive("LHTTP/1.0 chat\r\npublish:chat-1\r\n\r\nsecond")
        onA.receive("LHTTP/1.0 chat\r\npublish:plain\r\n\r\nthird")
        #expect(subscriber.frames.isEmpty, "nothing handed over inline")
        loopA.run()
        loopB.run()
        let received = try subscriber.messages()
        #expect(received.map(\.bodyString) == ["first", "second", "third"])
        #expect(received.prefix(2).compactMap { $0.headers["seq"]?.split(separator: ":").last }.map(String.init) == ["1", "2"])
    }
}
