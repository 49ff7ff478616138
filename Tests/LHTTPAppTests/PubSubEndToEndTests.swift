import LHTTPClient
import LHTTPGateway
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import Testing

@Suite("Pub/sub over real sockets")
struct PubSubEndToEndTests {
    @Test func twoClientsSubscribePublishUnsubscribe() async throws {
        try await TestServer.with { server in
            let alice = try await server.client(path: "/ws")
            let bob = try await server.client(path: "/echo")
            try await server.subscribe(alice, "room")

            try await bob.send(LHTTPMessage(command: "chat", headers: ["publish": "room"], body: "hello alice"))
            let received = try await alice.nextMessage()
            #expect(received.command == "chat")
            #expect(received.headers["publish"] == "room")
            #expect(received.bodyString == "hello alice")
            // The publisher is not subscribed: it gets nothing back.
            try await server.roundTrip(bob)

            try await alice.send(LHTTPMessage(command: "chat", headers: ["unsubscribe": "room"]))
            try await server.roundTrip(alice)
            try await bob.send(LHTTPMessage(command: "chat", headers: ["publish": "room"], body: "gone"))
            try await server.roundTrip(bob)
            // Two round trips: a delivery queued for alice's loop would come before the second reply.
            try await server.roundTrip(alice)
            try await server.roundTrip(alice)
            try await alice.close()
            try await bob.close()
        }
    }

    @Test func multiChannelPublishIsDeliveredOnce() async throws {
        try await TestServer.with { server in
            let sub = try await server.client()
            let pub = try await server.client()
            try await server.subscribe(sub, "a b c")
            try await pub.send(LHTTPMessage(command: "chat", headers: ["publish": "a b c"], body: "once"))
            #expect(try await sub.nextMessage().bodyString == "once")
            try await server.roundTrip(sub)  // would fail if a second copy had arrived first
            try await sub.close()
            try await pub.close()
        }
    }

    @Test func duplicateSubscribeIsDeliveredOnce() async throws {
        try await TestServer.with { server in
            let sub = try await server.client()
            try await server.subscribe(sub, "room room")
            try await server.subscribe(sub, "room")
            #expect(server.gateway.hub.stats.subscriptions == 1)
            let publisher = try await server.publisher()
            let response = try await publisher.request(path: "/publish?channel=room", body: ByteBuffer(string: "x"))
            #expect(response.status == 200)
            #expect(response.bodyString.contains("\"deliveries\":1"))
            #expect(try await sub.nextMessage().bodyString == "x")
            try await server.roundTrip(sub)
            try await sub.close()
            try await publisher.close()
        }
    }

    @Test func publisherReceivesOwnMessageWhenSubscribed() async throws {
        try await TestServer.with { server in
            let client = try await server.client()
            try await client.send(LHTTPMessage(command: "chat", headers: ["subscribe": "me", "publish": "me"], body: "echo"))
            #expect(try await client.nextMessage().bodyString == "echo")
            try await client.close()
        }
    }

    @Test func subscriptionsAreFreedOnClose() async throws {
        try await TestServer.with { server in
            var clients: [LHTTPWebSocketClient] = []
            for index in 0..<5 {
                let client = try await server.client()
                try await server.subscribe(client, "shared own-\(index)")
                clients.append(client)
            }
            #expect(server.gateway.hub.stats.channels == 6)
            #expect(server.gateway.hub.stats.subscriptions == 10)
            #expect(server.gateway.connectionCount == 5)
            // Three close politely, two just vanish (TCP close without a close frame).
            for client in clients[0..<3] { try await client.close() }
            for client in clients[3...] { await client.closeTCP() }
            try await server.eventually { server.gateway.connectionCount == 0 }
            #expect(server.gateway.hub.stats.channels == 0)
            #expect(server.gateway.hub.stats.subscriptions == 0)
        }
    }

    @Test func manySubscribersAllReceiveInOrder() async throws {
        try await TestServer.with { server in
            var subscribers: [LHTTPWebSocketClient] = []
            for _ in 0..<20 {
                let client = try await server.client()
                try await server.subscribe(client, "news")
                subscribers.append(client)
            }
            let publisher = try await server.publisher()
            for index in 0..<50 {
                let response = try await publisher.request(path: "/publish?channel=news", body: ByteBuffer(string: "\(index)"))
                #expect(response.status == 200)
            }
            for client in subscribers {
                for index in 0..<50 {
                    #expect(try await client.nextMessage().bodyString == "\(index)")
                }
                try await client.close()
            }
            try await publisher.close()
        }
    }

    @Test func fragmentedAndBinaryMessagesAreAccepted() async throws {
        try await TestServer.with { server in
            let client = try await server.client()
            try await server.subscribe(client, "me")
            let text = "LHTTP/1.0 chat\r\npublish:me\r\n\r\nfragmented body"
            let bytes = Array(text.utf8)
            try await client.sendRaw(opcode: .text, payload: ByteBuffer(bytes: bytes[0..<10]), fin: false)
            try await client.sendRaw(opcode: .continuation, payload: ByteBuffer(bytes: bytes[10..<20]), fin: false)
            try await client.sendRaw(opcode: .continuation, payload: ByteBuffer(bytes: bytes[20...]), fin: true)
            #expect(try await client.nextMessage().bodyString == "fragmented body")

            var binary = ByteBuffer(string: "LHTTP/1.0 blob\r\npublish:me\r\n\r\n")
            binary.writeBytes([0x00, 0xFF, 0xFE])
            try await client.sendBinary(binary)
            let event = try await client.nextEvent()
            guard case .message(let message, _, let isBinary) = event else {
                Issue.record("expected a message, got \(event)")
                return
            }
            #expect(isBinary)
            #expect(Array(message.body.readableBytesView) == [0x00, 0xFF, 0xFE])
            try await client.close()
        }
    }
}
