import LHTTPGateway
import LHTTPProtocol
import NIOCore
import NIOEmbedded
import Testing

/// Records the order in which processor and filter hooks run.
final class Journal: @unchecked Sendable {
    // Only touched on the one EmbeddedEventLoop thread of a test.
    var entries: [String] = []
}

struct JournalingProcessor: LHTTPProcessor {
    let journal: Journal
    func onOpen(_ session: Session) { journal.entries.append("open") }
    func onMessage(_ session: Session) throws {
        journal.entries.append("message:\(session.subscriptions.sorted())")
        session.message?.headers.add(name: "processed", value: "yes")
    }
    func onClose(_ session: Session) { journal.entries.append("close") }
}

struct RejectingProcessor: LHTTPProcessor {
    func onMessage(_ session: Session) throws {
        throw GatewayError.rejected(status: 403, reason: "not allowed")
    }
}

struct JournalingFilter: HeaderFilter {
    let journal: Journal
    func onOpen(_ session: Session) { journal.entries.append("filter-open") }
    func beforeMessage(_ session: Session) throws { journal.entries.append("before") }
    func afterMessage(_ session: Session) throws { journal.entries.append("after") }
    func onClose(_ session: Session) { journal.entries.append("filter-close") }
}

@Suite("Gateway")
struct GatewayTests {
    let loop = EmbeddedEventLoop()

    func message(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    @Test func processorRunsBeforePubSubAndSeesTheMessage() throws {
        let journal = Journal()
        let gateway = Gateway(processors: ["chat": JournalingProcessor(journal: journal)], filters: [JournalingFilter(journal: journal)])
        let transport = RecordingTransport()
        let session = gateway.open(transport: transport, eventLoop: loop)
        gateway.receive(message("LHTTP/1.0 chat\r\nsubscribe:room\r\npublish:room\r\n\r\nhi"), on: session)
        loop.run()
        // onMessage ran before the subscribe took effect, and the subscriber got the processed message.
        #expect(journal.entries == ["filter-open", "open", "before", "message:[]", "after"])
        let received = try transport.messages()
        #expect(received.count == 1)
        #expect(received[0].headers["processed"] == "yes")
        #expect(received[0].bodyString == "hi")
        gateway.close(session)
        #expect(journal.entries.suffix(2) == ["filter-close", "close"])
    }

    @Test func publisherGetsOwnMessageOnlyIfSubscribed() throws {
        let gateway = Gateway()
        let publisher = RecordingTransport()
        let subscriber = RecordingTransport()
        let p = gateway.open(transport: publisher, eventLoop: loop)
        let s = gateway.open(transport: subscriber, eventLoop: loop)
        gateway.receive(message("LHTTP/1.0 chat\r\nsubscribe:room\r\n\r\n"), on: s)
        gateway.receive(message("LHTTP/1.0 chat\r\npublish:room\r\n\r\none"), on: p)
        loop.run()
        #expect(try subscriber.messages().map(\.bodyString) == ["one"])
        #expect(publisher.flushed.isEmpty)
        gateway.receive(message("LHTTP/1.0 chat\r\nsubscribe:room\r\npublish:room\r\n\r\ntwo"), on: p)
        loop.run()
        #expect(try publisher.messages().map(\.bodyString) == ["two"])
        #expect(try subscriber.messages().map(\.bodyString) == ["one", "two"])
    }

    @Test func unsubscribeRunsAfterPublish() throws {
        let gateway = Gateway()
        let t = RecordingTransport()
        let s = gateway.open(transport: t, eventLoop: loop)
        gateway.receive(message("LHTTP/1.0 chat\r\nsubscribe:room\r\n\r\n"), on: s)
        gateway.receive(message("LHTTP/1.0 chat\r\npublish:room\r\nunsubscribe:room\r\n\r\nlast"), on: s)
        loop.run()
        #expect(try t.messages().map(\.bodyString) == ["last"])
        #expect(gateway.hub.stats == HubStats(channels: 0, subscriptions: 0))
    }

    @Test func multiChannelPublishDeliveredOnceAndFrameShared() throws {
        let gateway = Gateway()
        let a = RecordingTransport()
        let b = RecordingTransport()
        let sa = gateway.open(transport: a, eventLoop: loop)
        let sb = gateway.open(transport: b, eventLoop: loop)
        gateway.receive(message("LHTTP/1.0 chat\r\nsubscribe:x y z\r\n\r\n"), on: sa)
        gateway.receive(message("LHTTP/1.0 chat\r\nsubscribe:x y\r\n\r\n"), on: sb)
        let deliveries = try gateway.publish(message("LHTTP/1.0 chat\r\npublish:x y z\r\n\r\nonce"), to: ["x", "y", "z"])
        #expect(deliveries == 2)
        loop.run()
        #expect(try a.messages().map(\.bodyString) == ["once"])
        #expect(try b.messages().map(\.bodyString) == ["once"])
        // Every subscriber's frame is the same bytes in the same storage: encoded once.
        let addressA = a.flushed[0].withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let addressB = b.flushed[0].withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(addressA == addressB)
    }

    @Test func duplicateSubscribeIsANoOpAndCountsReturnToZero() throws {
        let gateway = Gateway()
        let t = RecordingTransport()
        let s = gateway.open(transport: t, eventLoop: loop)
        gateway.receive(message("LHTTP/1.0 chat\r\nsubscribe:a a b\r\n\r\n"), on: s)
        gateway.receive(message("LHTTP/1.0 chat\r\nsubscribe:a\r\n\r\n"), on: s)
        #expect(gateway.hub.stats == HubStats(channels: 2, subscriptions: 2))
        #expect(try gateway.publish(message("LHTTP/1.0 c\r\npublish:a\r\n\r\n"), to: ["a"]) == 1)
        gateway.receive(message("LHTTP/1.0 chat\r\nunsubscribe:never-subscribed\r\n\r\n"), on: s)
        #expect(gateway.hub.stats == HubStats(channels: 2, subscriptions: 2))
        #expect(gateway.connectionCount == 1)
        gateway.close(s)
        #expect(gateway.hub.stats == HubStats(channels: 0, subscriptions: 0))
        #expect(gateway.connectionCount == 0)
        #expect(try gateway.publish(message("LHTTP/1.0 c\r\npublish:a\r\n\r\n"), to: ["a"]) == 0)
    }

    @Test func malformedMessageGetsErrorReplyAndSessionStaysUsable() throws {
        let gateway = Gateway()
        let t = RecordingTransport()
        let s = gateway.open(transport: t, eventLoop: loop)
        gateway.receive(message("LHTTP/1.0 chat\r\nno colon\r\n\r\n"), on: s)
        gateway.receive(message("LHTTP/1.0 chat\r\nmultipart:0 99\r\n\r\nshort"), on: s)
        gateway.receive(message("LHTTP/1.0 chat\r\nsubscribe:me\r\npublish:me\r\n\r\nok"), on: s)
        loop.run()
        let replies = try t.messages()
        #expect(replies.count == 3)
        #expect(replies[0].command == "error")
        #expect(replies[0].headers["status"] == "400")
        #expect(replies[1].headers["status"] == "400")
        #expect(replies[2].bodyString == "ok")
        #expect(t.closedWith == nil)
    }

    @Test func badChannelListChangesNothing() throws {
        let gateway = Gateway(limits: LHTTPLimits(maxChannelsPerMessage: 2))
        let t = RecordingTransport()
        let s = gateway.open(transport: t, eventLoop: loop)
        gateway.receive(message("LHTTP/1.0 chat\r\nsubscribe:a\r\npublish:a b c\r\n\r\n"), on: s)
        loop.run()
        #expect(try t.messages().map { $0.headers["status"] } == ["413"])
        #expect(gateway.hub.stats.subscriptions == 0)
    }

    @Test func processorErrorBecomesErrorReply() throws {
        let gateway = Gateway(processors: ["secret": RejectingProcessor()])
        let t = RecordingTransport()
        let s = gateway.open(transport: t, eventLoop: loop)
        gateway.receive(message("LHTTP/1.0 secret\r\nsubscribe:a\r\n\r\n"), on: s)
        loop.run()
        let reply = try t.messages()
        #expect(reply.first?.headers["status"] == "403")
        #expect(reply.first?.headers["reason"] == "not allowed")
        // The after-filters did not run: no subscription.
        #expect(gateway.hub.stats.subscriptions == 0)
    }

    @Test func multipartPartsReachTheProcessor() throws {
        final class Box: @unchecked Sendable { var parts: [String] = [] }
        struct PartsProcessor: LHTTPProcessor {
            let box: Box
            func onMessage(_ session: Session) throws { box.parts = session.parts.map(\.bodyString) }
        }
        let box = Box()
        let gateway = Gateway(processors: ["upload": PartsProcessor(box: box)])
        let s = gateway.open(transport: RecordingTransport(), eventLoop: loop)
        gateway.receive(message("LHTTP/1.0 upload\r\nmultipart:0 14\r\n\r\nk1:v1\r\n\r\nbody1k2:v2\r\n\r\nbody2"), on: s)
        #expect(box.parts == ["body1", "body2"])
    }

    @Test func largeChannelsKeepExactMembershipAcrossTheIndexThreshold() throws {
        let gateway = Gateway()
        var members: [(RecordingTransport, Session)] = []
        for _ in 0..<40 {
            let t = RecordingTransport()
            let s = gateway.open(transport: t, eventLoop: loop)
            try s.subscribe(["big"])
            try s.subscribe(["big"])
            members.append((t, s))
        }
        #expect(gateway.hub.subscriberCount(of: "big") == 40)
        // Leave from the middle, the ends, and twice.
        for index in [0, 39, 7, 8, 20, 21, 33, 1, 38, 15, 16, 17, 30, 31, 32] {
            members[index].1.unsubscribe(["big"])
            members[index].1.unsubscribe(["big"])
        }
        let left: Set<Int> = [0, 39, 7, 8, 20, 21, 33, 1, 38, 15, 16, 17, 30, 31, 32]
        #expect(try gateway.publish(message("LHTTP/1.0 c\r\npublish:big\r\n\r\nx"), to: ["big"]) == 25)
        loop.run()
        for (index, member) in members.enumerated() {
            #expect(try member.0.messages().count == (left.contains(index) ? 0 : 1), "member \(index)")
        }
        for member in members { gateway.close(member.1) }
        #expect(gateway.hub.stats == HubStats(channels: 0, subscriptions: 0))
    }

    @Test func flushesOncePerTick() throws {
        let gateway = Gateway()
        let t = RecordingTransport()
        let s = gateway.open(transport: t, eventLoop: loop)
        gateway.receive(message("LHTTP/1.0 chat\r\nsubscribe:a\r\n\r\n"), on: s)
        for index in 0..<10 {
            try gateway.publish(message("LHTTP/1.0 c\r\npublish:a\r\n\r\n\(index)"), to: ["a"])
        }
        #expect(t.flushCount == 0)
        loop.run()
        #expect(t.flushCount == 1)
        #expect(try t.messages().count == 10)
    }

    @Test func nonUTF8PublishGoesOutAsBinaryFrame() throws {
        let gateway = Gateway()
        let t = RecordingTransport()
        let s = gateway.open(transport: t, eventLoop: loop)
        try s.subscribe(["a"])
        var payload = ByteBuffer(string: "LHTTP/1.0 c\r\npublish:a\r\n\r\n")
        payload.writeBytes([0xFF, 0xFE])
        try gateway.publish(payload, to: ["a"])
        try gateway.publish(message("LHTTP/1.0 c\r\npublish:a\r\n\r\ntext"), to: ["a"])
        loop.run()
        #expect(t.flushed.map { $0.getInteger(at: 0, as: UInt8.self) } == [0x82, 0x81])
    }
}
