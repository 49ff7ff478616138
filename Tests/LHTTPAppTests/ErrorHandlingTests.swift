import LHTTPClient
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import Testing

@Suite("Errors over real sockets")
struct ErrorHandlingTests {
    @Test func malformedMessageGetsErrorReplyAndConnectionStaysUsable() async throws {
        try await TestServer.with { server in
            let client = try await server.client()
            let cases: [(String, String)] = [
                ("no line end at all", "400"),
                ("LHTTP/1.0\r\n", "400"),
                ("LHTTP/2.0 chat\r\n\r\n", "505"),
                ("LHTTP/1.0 chat\r\nheader without colon\r\n\r\n", "400"),
                ("LHTTP/1.0 up\r\nmultipart:0 99\r\n\r\nk:v\r\n\r\nb", "400"),
                ("LHTTP/1.0 up\r\nmultipart:0 3\r\n\r\nk:v\r\n\r\nb", "400"),
                ("LHTTP/1.0 up\r\nmultipart:0\r\n\r\nk:v no blank line", "400"),
            ]
            for (input, status) in cases {
                try await client.sendText(input)
                let reply = try await client.nextMessage()
                #expect(reply.command == "error", "for \(input.debugDescription)")
                #expect(reply.headers["status"] == status, "for \(input.debugDescription)")
                #expect(reply.headers["reason"]?.isEmpty == false)
            }
            // Still the same, working connection.
            try await client.send(LHTTPMessage(command: "chat", headers: ["subscribe": "ok", "publish": "ok"], body: "alive"))
            #expect(try await client.nextMessage().bodyString == "alive")
            try await client.close()
        }
    }

    @Test func tooManyHeadersAndChannelsGetLimitReplies() async throws {
        try await TestServer.with({ $0.limits.maxHeaders = 4; $0.limits.maxChannelsPerMessage = 3 }) { server in
            let client = try await server.client()
            try await client.sendText("LHTTP/1.0 c\r\na:1\r\nb:2\r\nc:3\r\nd:4\r\ne:5\r\n\r\n")
            #expect(try await client.nextMessage().headers["status"] == "431")
            try await client.send(LHTTPMessage(command: "c", headers: ["subscribe": "a b c d"]))
            #expect(try await client.nextMessage().headers["status"] == "413")
            #expect(server.gateway.hub.stats.subscriptions == 0)
            try await client.close()
        }
    }

    @Test func oversizeFrameClosesWith1009() async throws {
        try await TestServer.with { server in
            let victim = try await server.client()
            let bystander = try await server.client()
            try await server.subscribe(bystander, "room")
            var big = ByteBuffer(string: "LHTTP/1.0 chat\r\npublish:room\r\n\r\n")
            big.writeRepeatingByte(UInt8(ascii: "x"), count: 2 << 20)
            try? await victim.sendBinary(big)
            var event = try await victim.nextEvent(timeout: .seconds(10))
            while case .message = event { event = try await victim.nextEvent(timeout: .seconds(10)) }
            #expect(event == .closed(code: 1009, reason: "frame larger than 1048576 bytes"))
            // Nothing of it reached anyone, and other clients are unaffected.
            try await server.roundTrip(bystander)
            try await server.eventually { server.gateway.connectionCount == 1 }
            try await bystander.close()
        }
    }

    @Test func oversizeFragmentedMessageClosesWith1009() async throws {
        try await TestServer.with({ $0.limits.maxMessageBytes = 64 * 1024 }) { server in
            let client = try await server.client()
            let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 40 * 1024)
            try await client.sendRaw(opcode: .text, payload: chunk, fin: false)
            try? await client.sendRaw(opcode: .continuation, payload: chunk, fin: true)
            let event = try await client.nextEvent(timeout: .seconds(10))
            #expect(event == .closed(code: 1009, reason: "message larger than 65536 bytes"))
        }
    }

    @Test func pingIsAnsweredAndUnknownPathRefused() async throws {
        try await TestServer.with { server in
            let client = try await server.client()
            try await client.ping(ByteBuffer(string: "ping-payload-1234"))
            try await server.roundTrip(client)
            // The pong echoes the payload (unmasked on the server): it arrived before the round trip's reply.
            #expect(client.pongs == [ByteBuffer(string: "ping-payload-1234")])
            try await client.close()
            await #expect(throws: LHTTPClientError.upgradeFailed(status: 404)) {
                _ = try await server.client(path: "/not-a-websocket-path")
            }
        }
    }
}
