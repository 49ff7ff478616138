import LHTTPGateway
import LHTTPProtocol
import NIOCore
import NIOEmbedded
import Testing

/// Records the order in which processor hooks run.
final class Journal: @unchecked Sendable {
    // Only touched on the one EmbeddedEventLoop thread of a test.
    var entries: [String] = []
}

struct JournalingProcessor: LHTTPProcessor {
    let journal: Journal
    func onOpen(_ connection: ConnectionInfo) { journal.entries.append("open") }
    func onMessage(_ message: inout LHTTPMessage, parts: [LHTTPPart], connection: ConnectionInfo) throws(GatewayError) -> [LHTTPMessage] {
        journal.entries.append("message:\(connection.subscriptions.sorted())")
        message.headers.add(name: "processed", value: "yes")
        return []
    }
    func onClose(_ connection: ConnectionInfo, code: CloseCode) { journal.entries.append("close:\(code)") }
}

struct RejectingProcessor: LHTTPProcessor {
    func onMessage(_ message: inout LHTTPMessage, parts: [LHTTPPart], connection: ConnectionInfo) throws(GatewayError) -> [LHTTPMessage] {
        throw GatewayError.rejected(status: 403, reason: "not allowed")
    }
}

@Suite("Gateway")
final class GatewayTests {
    let loop = EmbeddedEventLoop()

    deinit {
        // Runs what is still queued (flush passes refer back to the loop) and drops it.
        try? self.loop.syncShutdownGracefully()
    }

    func message(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    @Test func processorRunsBeforePubSubAndSeesTheMessage() throws {
        let journal = Journal()
        let gateway = Gateway(processors: ["chat": JournalingProcessor(journal: journal)])
        let connection = TestConnection(gateway, on: loop)
        connection.receive("LHTTP/1.0 chat\r\nsubscribe:room\r\npublish:room\r\n\r\nhi")
        loop.run()
        // onMessage ran before the subscribe took effect, and the subscriber got the processed message.
        #expect(journal.entries == ["open", "message:[]"])
        let received = try connection.messages()
        #expect(received.count == 1)
        #expect(received[0].headers["processed"] == "yes")
        #expect(received[0].bodyString == "hi")
        connection.close(code: .goingAway)
        #expect(journal.entries.last == "close:1001")
    }

    @Test func publisherGetsOwnMessageOnlyIfSubscribed() throws {
        let gateway = Gateway()
        let publisher = TestConnection(gateway, on: loop)
        let subscriber = TestConnection(gateway, on: loop)
        subscriber.receive("LHTTP/1.0 chat\r\nsubscribe:room\r\n\r\n")
        publisher.receive("LHTTP/1.0 chat\r\npublish:room\r\n\r\none")
        loop.run()
        #expect(try subscriber.messages().map(\.bodyString) == ["one"])
        #expect(publisher.frames.isEmpty)
        publisher.receive("LHTTP/1.0 chat\r\nsubscribe:room\r\npublish:room\r\n\r\ntwo")
        loop.run()
        #expect(try publisher.messages().map(\.bodyString) == ["two"])
        #expect(try subscriber.messages().map(\.bodyString) == ["one", "two"])
    }

    @Test func unsubscribeRunsAfterPublish() throws {
        let gateway = Gateway()
        let connection = TestConnection(gateway, on: loop)
        connection.receive("LHTTP/1.0 chat\r\nsubscribe:room\r\n\r\n")
        connection.receive("LHTTP/1.0 chat\r\npublish:room\r\nunsubscribe:room\r\n\r\nlast")
        loop.run()
        #expect(try connection.messages().map(\.bodyString) == ["last"])
        #expect(gateway.hub.stats == HubStats(channels: 0, subscriptions: 0))
    }

    @Test func multiChannelPublishDeliveredOnceAndFrameShared() throws {
        let gateway = Gateway()
        let a = TestConnection(gateway, on: loop)
        let b = TestConnection(gateway, on: loop)
        a.receive("LHTTP/1.0 chat\r\nsubscribe:x y z\r\n\r\n")
        b.receive("LHTTP/1.0 chat\r\nsubscribe:x y\r\n\r\n")
        let deliveries = try gateway.publish(message("LHTTP/1.0 chat\r\npublish:x y z\r\n\r\nonce"), to: ["x", "y", "z"], source: .http)
        #expect(deliveries == 2)
        loop.run()
        #expect(try a.messages().map(\.bodyString) == ["once"])
        #expect(try b.messages().map(\.bodyString) == ["once"])
        // Every subscriber's frame is the same bytes in the same storage: encoded once.
        let addressA = a.frames[0].withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let addressB = b.frames[0].withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(addressA == addressB)
    }

    @Test func theClusterCopyOfOneChannelSkipsConnectionsOnAnEarlierChannel() throws {
        let gateway = Gateway()
        // More than SubscriberList.indexThreshold on x and y: the indexed lists are compared too.
        let onXY = (0..<20).map { _ in TestConnection(gateway, on: loop) }
        for connection in onXY { connection.receive("LHTTP/1.0 s\r\nsubscribe:x y\r\n\r\n") }
        let onY = TestConnection(gateway, on: loop)
        onY.receive("LHTTP/1.0 s\r\nsubscribe:y\r\n\r\n")
        let onZY = TestConnection(gateway, on: loop)
        onZY.receive("LHTTP/1.0 s\r\nsubscribe:z y\r\n\r\n")
        let onZ = TestConnection(gateway, on: loop)
        onZ.receive("LHTTP/1.0 s\r\nsubscribe:z\r\n\r\n")
        let payload = message("LHTTP/1.0 chat\r\npublish:x y z\r\n\r\nonce")
        // The three copies of a publication to `x y z`, as a node receives them from NATS, in any order.
        #expect(gateway.hub.deliver(payload, to: "z", excluding: ["x", "y"]) == 1)
        #expect(gateway.hub.deliver(payload, to: "x", excluding: []) == 20)
        #expect(gateway.hub.deliver(payload, to: "y", excluding: ["x"]) == 2)
        // Channels nobody is on change nothing.
        #expect(gateway.hub.deliver(payload, to: "y", excluding: ["nobody", "x"]) == 2)
        #expect(gateway.hub.deliver(payload, to: "nobody", excluding: ["x"]) == 0)
        loop.run()
        for connection in onXY + [onZ] {
            #expect(try connection.messages().map(\.bodyString) == ["once"])
        }
        for connection in [onY, onZY] {
            #expect(try connection.messages().map(\.bodyString) == ["once", "once"], "the repeated y copy above")
        }
    }

    @Test func duplicateSubscribeIsANoOpAndCountsReturnToZero() throws {
        let gateway = Gateway()
        let connection = TestConnection(gateway, on: loop)
        connection.receive("LHTTP/1.0 chat\r\nsubscribe:a a b\r\n\r\n")
        connection.receive("LHTTP/1.0 chat\r\nsubscribe:a\r\n\r\n")
        #expect(gateway.hub.stats == HubStats(channels: 2, subscriptions: 2))
        #expect(try gateway.publish(message("LHTTP/1.0 c\r\npublish:a\r\n\r\n"), to: ["a"], source: .http) == 1)
        connection.receive("LHTTP/1.0 chat\r\nunsubscribe:never-subscribed\r\n\r\n")
        #expect(gateway.hub.stats == HubStats(channels: 2, subscriptions: 2))
        #expect(gateway.connectionCount == 1)
        connection.close()
        #expect(gateway.hub.stats == HubStats(channels: 0, subscriptions: 0))
        #expect(gateway.connectionCount == 0)
        #expect(try gateway.publish(message("LHTTP/1.0 c\r\npublish:a\r\n\r\n"), to: ["a"], source: .http) == 0)
    }

    @Test func malformedMessageGetsErrorReplyAndSessionStaysUsable() throws {
        let gateway = Gateway()
        let connection = TestConnection(gateway, on: loop)
        connection.receive("LHTTP/1.0 chat\r\nno colon\r\n\r\n")
        connection.receive("LHTTP/1.0 chat\r\nmultipart:0 99\r\n\r\nshort")
        connection.receive("LHTTP/1.0 chat\r\nsubscribe:me\r\npublish:me\r\n\r\nok")
        loop.run()
        let replies = try connection.messages()
        #expect(replies.count == 3)
        #expect(replies[0].command == "error")
        #expect(replies[0].headers["status"] == "400")
        #expect(replies[1].headers["status"] == "400")
        #expect(replies[2].bodyString == "ok")
        #expect(connection.closedWith == nil)
    }

    @Test func badChannelListChangesNothing() throws {
        let gateway = Gateway(limits: LHTTPLimits(maxChannelsPerMessage: 2))
        let connection = TestConnection(gateway, on: loop)
        connection.receive("LHTTP/1.0 chat\r\nsubscribe:a\r\npublish:a b c\r\n\r\n")
        loop.run()
        #expect(try connection.messages().map { $0.headers["status"] } == ["413"])
        #expect(gateway.hub.stats.subscriptions == 0)
    }

    @Test func processorErrorBecomesErrorReply() throws {
        let gateway = Gateway(processors: ["secret": RejectingProcessor()])
        let connection = TestConnection(gateway, on: loop)
        connection.receive("LHTTP/1.0 secret\r\nsubscribe:a\r\n\r\n")
        loop.run()
        let reply = try connection.messages()
        #expect(reply.first?.headers["status"] == "403")
        #expect(reply.first?.headers["reason"] == "not allowed")
        // Nothing of the message was applied: no subscription.
        #expect(gateway.hub.stats.subscriptions == 0)
    }

    @Test func multipartPartsReachTheProcessorAndItsRepliesGoFirst() throws {
        final class Box: @unchecked Sendable { var parts: [String] = [] }
        struct PartsProcessor: LHTTPProcessor {
            let box: Box
            func onMessage(_ message: inout LHTTPMessage, parts: [LHTTPPart], connection: ConnectionInfo) throws(GatewayError) -> [LHTTPMessage] {
                box.parts = parts.map(\.bodyString)
                return [LHTTPMessage(command: "got", body: "\(parts.count) parts")]
            }
        }
        let box = Box()
        let gateway = Gateway(processors: ["upload": PartsProcessor(box: box)])
        let connection = TestConnection(gateway, on: loop)
        connection.receive("LHTTP/1.0 upload\r\nsubscribe:me\r\npublish:me\r\nmultipart:0 14\r\n\r\nk1:v1\r\n\r\nbody1k2:v2\r\n\r\nbody2")
        loop.run()
        #expect(box.parts == ["body1", "body2"])
        #expect(try connection.messages().map(\.command) == ["got", "upload"])
    }

    @Test func largeChannelsKeepExactMembershipAcrossTheIndexThreshold() throws {
        let gateway = Gateway()
        var members: [TestConnection] = []
        for _ in 0..<40 {
            let connection = TestConnection(gateway, on: loop)
            connection.receive("LHTTP/1.0 c\r\nsubscribe:big\r\n\r\n")
            connection.receive("LHTTP/1.0 c\r\nsubscribe:big\r\n\r\n")
            members.append(connection)
        }
        #expect(gateway.hub.subscriberCount(of: "big") == 40)
        // Leave from the middle, the ends, and twice.
        let left: Set<Int> = [0, 39, 7, 8, 20, 21, 33, 1, 38, 15, 16, 17, 30, 31, 32]
        for index in left.sorted() {
            members[index].receive("LHTTP/1.0 c\r\nunsubscribe:big\r\n\r\n")
            members[index].receive("LHTTP/1.0 c\r\nunsubscribe:big\r\n\r\n")
        }
        #expect(try gateway.publish(message("LHTTP/1.0 c\r\npublish:big\r\n\r\nx"), to: ["big"], source: .http) == 25)
        loop.run()
        for (index, member) in members.enumerated() {
            #expect(try member.messages().count == (left.contains(index) ? 0 : 1), "member \(index)")
        }
        for member in members { member.close() }
        #expect(gateway.hub.stats == HubStats(channels: 0, subscriptions: 0))
    }

    @Test func nonUTF8PublishGoesOutAsBinaryFrame() throws {
        let gateway = Gateway()
        let connection = TestConnection(gateway, on: loop)
        connection.receive("LHTTP/1.0 chat\r\nsubscribe:a\r\n\r\n")
        var payload = ByteBuffer(string: "LHTTP/1.0 c\r\npublish:a\r\n\r\n")
        payload.writeBytes([0xFF, 0xFE])
        try gateway.publish(payload, to: ["a"], source: .http)
        try gateway.publish(message("LHTTP/1.0 c\r\npublish:a\r\n\r\ntext"), to: ["a"], source: .http)
        loop.run()
        #expect(connection.frames.map { $0.getInteger(at: 0, as: UInt8.self) } == [0x82, 0x81])
    }

    @Test func theNodesChannelCapRefusesTheWholeMessageAndRollsBack() throws {
        let gateway = Gateway(maxChannels: 2)
        let first = TestConnection(gateway, on: loop)
        first.receive("LHTTP/1.0 c\r\nsubscribe:a b\r\n\r\n")
        let second = TestConnection(gateway, on: loop)
        second.receive("LHTTP/1.0 c\r\nsubscribe:a c\r\npublish:a\r\n\r\nnever")
        loop.run()
        // The subscribe was refused by the hub: no publish, nothing kept, 503 to the sender.
        #expect(try second.messages().map { $0.headers["status"] } == ["503"])
        #expect(try first.messages().isEmpty)
        #expect(second.machine.subscriptions.isEmpty)
        #expect(gateway.hub.stats == HubStats(channels: 2, subscriptions: 2))
    }

    @Test func connectActionsRunOnOpenAndObserversHearTheEnd() throws {
        final class Observer: ConnectionObserver, @unchecked Sendable {
            var closed: [(ConnectionInfo, CloseCode)] = []
            func connectionClosed(_ connection: ConnectionInfo, code: CloseCode, on eventLoop: any EventLoop) {
                self.closed.append((connection, code))
            }
        }
        let observer = Observer()
        let gateway = Gateway(observers: [observer])
        let connection = TestConnection(gateway, on: loop, connectActions: [
            .reply(try LHTTPMessage(command: "welcome").serialized()), .subscribe(["lobby"]), .setMeta(["user": "ada"]),
        ])
        loop.run()
        #expect(try connection.messages().map(\.command) == ["welcome"])
        #expect(gateway.hub.subscriberCount(of: "lobby") == 1)
        connection.close(code: CloseCode(rawValue: 4000))
        #expect(observer.closed.count == 1)
        #expect(observer.closed[0].0.meta == ["user": "ada"])
        #expect(observer.closed[0].0.subscriptions == ["lobby"])
        #expect(observer.closed[0].1.rawValue == 4000)
        #expect(gateway.hub.subscriberCount(of: "lobby") == 0)
    }
}
