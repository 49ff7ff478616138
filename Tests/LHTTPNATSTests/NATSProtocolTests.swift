@testable import LHTTPNATS
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
            .message(NATSMessage(subject: "lhttp.room", sid: 7, replyTo: nil, payload: ByteBuffer(string: "hello"))),
            .message(NATSMessage(subject: "lhttp.room", sid: 7, replyTo: "_INBOX.1", payload: ByteBuffer(string: "hi"))),
        ])
    }

    /// `HMSG`: JetStream's answers and republished messages carry headers (and a status line).
    @Test func parsesMessagesWithHeaders() throws {
        let block = "NATS/1.0\r\nNats-Sequence: 12\r\nNats-Last-Sequence: 9\r\n\r\n"
        let noResponders = "NATS/1.0 503 No Responders\r\n\r\n"
        let ops = try ops([
            "HMSG lhttp.r.room 3 \(block.utf8.count) \(block.utf8.count + 5)\r\n\(block)hello\r\n",
            "HMSG _INBOX.a.1 4 _INBOX.b \(noResponders.utf8.count) \(noResponders.utf8.count)\r\n\(noResponders)\r\n",
        ])
        #expect(ops == [
            .message(NATSMessage(subject: "lhttp.r.room", sid: 3, headers: ["Nats-Sequence": "12", "Nats-Last-Sequence": "9"], payload: ByteBuffer(string: "hello"))),
            .message(NATSMessage(subject: "_INBOX.a.1", sid: 4, replyTo: "_INBOX.b", headers: NATSHeaders(status: 503, statusDescription: "No Responders"), payload: ByteBuffer())),
        ])
        if case .message(let message) = ops[0] { #expect(message.headers?["nats-sequence"] == "12", "names match in any case") }
        // A header size beyond the total, or a block without its empty line, is a protocol violation.
        var parser = NATSParser()
        parser.append(ByteBuffer(string: "HMSG a 1 20 10\r\n0123456789\r\n"))
        #expect(throws: NATSError.self) { _ = try parser.next() }
        var unterminated = NATSParser()
        unterminated.append(ByteBuffer(string: "HMSG a 1 16 16\r\nNATS/1.0\r\nX: y\r\n\r\n"))
        #expect(throws: NATSError.self) { _ = try unterminated.next() }
    }

    /// What `HPUB` writes is what `HMSG` reads back.
    @Test func headersRoundTrip() throws {
        var buffer = ByteBuffer()
        let headers: NATSHeaders = ["Nats-Msg-Id": "abc", "Nats-Expected-Stream": "LHTTP"]
        NATSClientOp.publish(subject: "lhttp.h.room", replyTo: "_INBOX.x.1", headers: headers, payload: ByteBuffer(string: "body"), into: &buffer)
        let wire = String(buffer: buffer)
        #expect(wire.hasPrefix("HPUB lhttp.h.room _INBOX.x.1 "))
        var parser = NATSParser()
        parser.append(ByteBuffer(string: wire.replacingOccurrences(of: "HPUB lhttp.h.room ", with: "HMSG lhttp.h.room 9 ")))
        #expect(try parser.next() == .message(NATSMessage(subject: "lhttp.h.room", sid: 9, replyTo: "_INBOX.x.1", headers: headers, payload: ByteBuffer(string: "body"))))
    }

    @Test func messagesSplitAnywhereAreReassembledAndPayloadsAreVerbatim() throws {
        let wire = "MSG a.b 1 13\r\nline\r\n\r\nMSG x\r\nPING\r\n"
        for cut in 1..<wire.utf8.count {
            let bytes = Array(wire.utf8)
            let ops = try ops([String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)])
            #expect(ops == [.message(NATSMessage(subject: "a.b", sid: 1, replyTo: nil, payload: ByteBuffer(string: "line\r\n\r\nMSG x"))), .ping], "cut at \(cut)")
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
