import LHTTPProtocol
import NIOCore
import Testing

@Suite("Parser")
struct ParserTests {
    let parser = LHTTPParser()

    func parse(_ text: String) throws(LHTTPProtocolError) -> LHTTPMessage {
        try parser.parse(ByteBuffer(string: text))
    }

    @Test func seedChatExample() throws {
        let message = try parse(
            "LHTTP/1.0 chat\r\ncontent-type:json\r\npublish:channel_jack\r\n\r\n{\r\n    to:jack\r\n}"
        )
        #expect(message.command == "chat")
        #expect(message.headers["content-type"] == "json")
        #expect(message.headers["publish"] == "channel_jack")
        #expect(message.bodyString == "{\r\n    to:jack\r\n}")
    }

    @Test func laterColonsStayInTheValue() throws {
        let message = try parse("LHTTP/1.0 chat\r\nupstream:POST http://h:80/x\r\n\r\n")
        #expect(message.headers["upstream"] == "POST http://h:80/x")
    }

    @Test func whitespaceAroundKeysAndValuesIsTrimmed() throws {
        let message = try parse("LHTTP/1.0 chat\r\n  subscribe :  room \t\r\n\r\n")
        #expect(message.headers["subscribe"] == "room")
        #expect(message.headers[0].name == "subscribe")
    }

    @Test func keysMatchCaseInsensitivelyButKeepSpelling() throws {
        let message = try parse("LHTTP/1.0 chat\r\nSubScribe:room\r\n\r\n")
        #expect(message.headers["subscribe"] == "room")
        #expect(message.headers["SUBSCRIBE"] == "room")
        #expect(message.headers[0].name == "SubScribe")
        #expect(String(buffer: try message.serialized()).contains("SubScribe:room\r\n"))
    }

    @Test func blankLineMayBeAbsentWithoutBody() throws {
        let a = try parse("LHTTP/1.0 chat\r\nsubscribe:room\r\n")
        #expect(a.headers["subscribe"] == "room")
        #expect(a.body.readableBytes == 0)
        let b = try parse("LHTTP/1.0 ping\r\n")
        #expect(b.command == "ping")
        #expect(b.headers.isEmpty)
        let c = try parse("LHTTP/1.0 chat\r\nsubscribe:room")
        #expect(c.headers["subscribe"] == "room")
    }

    @Test func bareLFIsALineEnd() throws {
        let message = try parse("LHTTP/1.0 chat\nsubscribe:a b\n\nbody\r\nline2")
        #expect(message.command == "chat")
        #expect(message.headers["subscribe"] == "a b")
        #expect(message.bodyString == "body\r\nline2")
    }

    @Test func bodyIsVerbatim() throws {
        let body = "\r\n\r\nLHTTP/1.0 x\r\nk:v\r\n\r\n\u{0}binary"
        let message = try parse("LHTTP/1.0 chat\r\n\r\n" + body)
        #expect(message.bodyString == body)
    }

    @Test func repeatedHeadersAreAllKept() throws {
        let message = try parse("LHTTP/1.0 chat\r\nsubscribe:a\r\nSubscribe:b\r\n\r\n")
        #expect(message.headers.values(for: "subscribe") == ["a", "b"])
        #expect(message.headers["subscribe"] == "a")
    }

    @Test func roundTripKeepsOrderAndSpelling() throws {
        let original = LHTTPMessage(
            command: "upload",
            headers: LHTTPHeaders([("Zeta", "1"), ("alpha", "2"), ("Mid-Key", "a:b:c"), ("alpha", "3")]),
            body: "payload\r\n\r\nwith blank lines"
        )
        let bytes = try original.serialized()
        #expect(bytes.readableBytes == original.serializedByteCount)
        let parsed = try parser.parse(bytes)
        #expect(parsed == original)
        #expect(parsed.headers.map(\.name) == ["Zeta", "alpha", "Mid-Key", "alpha"])
        #expect(String(buffer: try parsed.serialized()) == String(buffer: bytes))
    }

    @Test func roundTripOfEmptyBody() throws {
        let original = LHTTPMessage(command: "ping")
        #expect(String(buffer: try original.serialized()) == "LHTTP/1.0 ping\r\n\r\n")
        #expect(try parser.parse(try original.serialized()) == original)
    }

    @Test func errorReplyFormat() throws {
        let reply = LHTTPMessage.errorReply(status: 400, reason: "bad\r\nthing")
        #expect(String(buffer: try reply.serialized()) == "LHTTP/1.0 error\r\nstatus:400\r\nreason:badthing\r\n\r\n")
    }

    // MARK: malformed input

    @Test(arguments: [
        ("LHTTP/1.0 chat", LHTTPProtocolError.missingLineEnd),
        ("", .missingLineEnd),
        ("garbage without any line end", .missingLineEnd),
        ("LHTTP/1.0\r\n", .missingCommand),
        ("LHTTP/1.0   \r\n", .missingCommand),
        ("LHTTP/2.0 chat\r\n", .unsupportedVersion("LHTTP/2.0")),
        ("HTTP/1.1 chat\r\n", .unsupportedVersion("HTTP/1.1")),
        ("lhttp/1.0 chat\r\n", .unsupportedVersion("lhttp/1.0")),
        ("\r\n", .emptyStartLine),
        ("LHTTP/1.0 chat\r\nno colon here\r\n\r\n", .headerWithoutColon(line: 1)),
        ("LHTTP/1.0 chat\r\na:b\r\n:value\r\n\r\n", .emptyHeaderName(line: 2)),
        ("LHTTP/1.0 two words\r\n", .invalidCommand("two words")),
    ])
    func malformed(input: String, expected: LHTTPProtocolError) {
        #expect(throws: expected) { try parse(input) }
    }

    @Test func malformedErrorsHaveStatuses() {
        #expect(LHTTPProtocolError.missingLineEnd.status == 400)
        #expect(LHTTPProtocolError.unsupportedVersion("x").status == 505)
        #expect(LHTTPProtocolError.messageTooLarge(size: 2, limit: 1).status == 413)
        #expect(LHTTPProtocolError.tooManyHeaders(limit: 1).status == 431)
    }

    @Test func invalidUTF8InHeadersIsRejected() {
        var buffer = ByteBuffer(string: "LHTTP/1.0 chat\r\nkey:")
        buffer.writeBytes([0xFF, 0xFE])
        buffer.writeString("\r\n\r\n")
        #expect(throws: LHTTPProtocolError.invalidUTF8) { try parser.parse(buffer) }
    }

    @Test func nonUTF8BodyIsFine() throws {
        var buffer = ByteBuffer(string: "LHTTP/1.0 blob\r\n\r\n")
        buffer.writeBytes([0xFF, 0x00, 0xFE])
        let message = try parser.parse(buffer)
        #expect(Array(message.body.readableBytesView) == [0xFF, 0x00, 0xFE])
    }

    // MARK: limits

    @Test func oversizeMessage() {
        let parser = LHTTPParser(limits: LHTTPLimits(maxMessageBytes: 32))
        let text = "LHTTP/1.0 chat\r\n\r\n" + String(repeating: "x", count: 40)
        #expect(throws: LHTTPProtocolError.messageTooLarge(size: text.utf8.count, limit: 32)) {
            try parser.parse(ByteBuffer(string: text))
        }
    }

    @Test func tooManyHeaders() {
        let parser = LHTTPParser(limits: LHTTPLimits(maxHeaders: 3))
        let ok = "LHTTP/1.0 c\r\na:1\r\nb:2\r\nc:3\r\n\r\n"
        #expect(throws: Never.self) { try parser.parse(ByteBuffer(string: ok)) }
        let bad = "LHTTP/1.0 c\r\na:1\r\nb:2\r\nc:3\r\nd:4\r\n\r\n"
        #expect(throws: LHTTPProtocolError.tooManyHeaders(limit: 3)) { try parser.parse(ByteBuffer(string: bad)) }
    }

    @Test func headerLineTooLong() {
        let parser = LHTTPParser(limits: LHTTPLimits(maxHeaderLineBytes: 16))
        let bad = "LHTTP/1.0 c\r\nkey:" + String(repeating: "v", count: 13) + "\r\n\r\n"
        #expect(throws: LHTTPProtocolError.headerLineTooLong(limit: 16)) { try parser.parse(ByteBuffer(string: bad)) }
        let ok = "LHTTP/1.0 c\r\nkey:" + String(repeating: "v", count: 12) + "\r\n\r\n"
        #expect(throws: Never.self) { try parser.parse(ByteBuffer(string: ok)) }
    }

    // MARK: Fields that could forge lines

    @Test func theSerializerRefusesWhatCouldForgeALine() {
        let forged: [(LHTTPMessage, LHTTPProtocolError)] = [
            (LHTTPMessage(command: "chat\r\nfrom:admin"), .invalidCommand("chat\r\nfrom:admin")),
            (LHTTPMessage(command: "two words"), .invalidCommand("two words")),
            (LHTTPMessage(command: ""), .invalidCommand("")),
            (LHTTPMessage(command: "chat", headers: ["from:admin\r\nx": "1"]), .invalidHeaderName("from:admin\r\nx")),
            (LHTTPMessage(command: "chat", headers: ["a b": "1"]), .invalidHeaderName("a b")),
            (LHTTPMessage(command: "chat", headers: ["a:b": "1"]), .invalidHeaderName("a:b")),
            (LHTTPMessage(command: "chat", headers: ["": "1"]), .invalidHeaderName("")),
            (LHTTPMessage(command: "chat", headers: ["x": "1\r\n\r\nFORGED"]), .invalidHeaderValue(name: "x")),
            (LHTTPMessage(command: "chat", headers: ["x": "1\nfrom:admin"]), .invalidHeaderValue(name: "x")),
            (LHTTPMessage(command: "chat", headers: ["x": "nul\0"]), .invalidHeaderValue(name: "x")),
        ]
        for (message, error) in forged {
            #expect(throws: error) { try message.serialized() }
            var buffer = ByteBuffer()
            #expect(throws: error) { try message.write(to: &buffer) }
            #expect(buffer.readableBytes == 0, "nothing is written when a field is refused")
        }
        // Values keep spaces, tabs, colons and UTF-8; the body is free.
        let fine = LHTTPMessage(command: "chat", headers: ["from": "ann: the\tfirst caf\u{E9}"], body: "line\r\n\r\nLHTTP/1.0 x\r\n")
        #expect(throws: Never.self) { try fine.serialized() }
    }

    @Test func theParserRefusesHeadersTheSerializerWouldRefuse() throws {
        #expect(throws: LHTTPProtocolError.invalidHeaderName("a b")) { try parse("LHTTP/1.0 chat\r\na b:1\r\n\r\n") }
        #expect(throws: LHTTPProtocolError.invalidHeaderName("a\u{01}")) { try parse("LHTTP/1.0 chat\r\na\u{01}:1\r\n\r\n") }
        #expect(throws: LHTTPProtocolError.invalidHeaderValue(name: "x")) { try parse("LHTTP/1.0 chat\r\nx:1\r2\r\n\r\n") }
        #expect(throws: LHTTPProtocolError.invalidHeaderValue(name: "x")) { try parse("LHTTP/1.0 chat\r\nx:1\u{0}2\r\n\r\n") }
        // Surrounding spaces are trimmed, inner ones kept in values.
        #expect(try parse("LHTTP/1.0 chat\r\n  from : ann  lee \r\n\r\n").headers["from"] == "ann  lee")
    }
}
