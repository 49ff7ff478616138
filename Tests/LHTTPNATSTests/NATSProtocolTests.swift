import LHTTPNATS
import NIOCore
import Testing

@Suite("NATS protocol")
struct NATSProtocolTests {
    func ops(_ chunks: [String], parser: NATSParser = NATSParser()) throws -> [NATSServerOp] {
        var parser = parser
        var ops: [NATSServerOp] = []
        for chunk in chunks {
            parser.append(ByteBuffer(string: chunk))
            while let op = try parser.next() { ops.append(op) }
        }
        return ops
    }

    @Test func parsesEveryServerOp() throws {
        let ops = try ops([
            "INFO {\"server_id\":\"x\",\"max_payload\":1048576}\r\n",
            "PING\r\nPONG\r\n+OK\r\n-ERR 'Unknown Protocol Operation'\r\n",
            "MSG lhttp.room 7 5\r\nhello\r\n",
            "MSG lhttp.room 7 _INBOX.1 2\r\nhi\r\n",
        ])
        #expect(ops == [
            .info("{\"server_id\":\"x\",\"max_payload\":1048576}"),
            .ping, .pong, .ok, .error("Unknown Protocol Operation"),
            .message(subject: "lhttp.room", sid: 7, replyTo: nil, payload: ByteBuffer(string: "hello")),
            .message(subject: "lhttp.room", sid: 7, replyTo: "_INBOX.1", payload: ByteBuffer(string: "hi")),
        ])
    }

    @Test func messagesSplitAnywhereAreReassembledAndPayloadsAreVerbatim() throws {
        let wire = "MSG a.b 1 13\r\nline\r\n\r\nMSG x\r\nPING\r\n"
        for cut in 1..<wire.utf8.count {
            let bytes = Array(wire.utf8)
            let ops = try ops([String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)])
            #expect(ops == [.message(subject: "a.b", sid: 1, replyTo: nil, payload: ByteBuffer(string: "line\r\n\r\nMSG x")), .ping], "cut at \(cut)")
        }
    }

    @Test func malformedAndOversizeInputIsAnError() {
        #expect(throws: NATSError.self) { try ops(["HELLO\r\n"]) }
        #expect(throws: NATSError.self) { try ops(["MSG a b c\r\n"]) }
        #expect(throws: NATSError.self) { try ops(["PING\n"]) }
        #expect(throws: NATSError.self) { try ops(["MSG a 1 3\r\nabcXY"]) }
        #expect(throws: NATSError.tooLarge("payload of 11 bytes over 10")) {
            try ops(["MSG a 1 11\r\n"], parser: NATSParser(maxPayload: 10))
        }
        #expect(throws: NATSError.self) {
            try ops([String(repeating: "x", count: 5000)], parser: NATSParser(maxControlLine: 4096))
        }
    }

    @Test func channelNamesCannotEscapeTheirPrefix() {
        let names = [">", "*", "a.b", "a b", "room", "~", "", "é", "a.>", "_x-1"]
        var subjects = Set<String>()
        for name in names {
            let subject = NATSSubject.channel(name, prefix: "lhttp")
            #expect(subject.hasPrefix("lhttp."))
            let token = subject.dropFirst("lhttp.".count)
            #expect(!token.isEmpty)
            #expect(!token.contains(".") && !token.contains("*") && !token.contains(">") && !token.contains(" "))
            #expect(token.utf8.allSatisfy { $0 < 0x80 })
            #expect(NATSSubject.decode(token) == name)
            subjects.insert(subject)
        }
        #expect(subjects.count == names.count)
        #expect(NATSSubject.channel("room", prefix: "lhttp") == "lhttp.room")
    }
}
