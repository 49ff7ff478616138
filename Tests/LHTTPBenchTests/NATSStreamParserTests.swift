import Testing

@testable import LHTTPBench

/// The bench's NATS subscriber parser: messages split over websocket frames, several per frame, PING.
@Suite struct NATSStreamParserTests {
    /// What the parser reported, copied out of the borrowed buffers.
    enum Seen: Equatable {
        case message(String)
        case ping, pong, ok, info
        case error(String)
    }

    /// Feeds `chunks` one by one, returning every event in order.
    func parse(_ chunks: [String], into parser: inout NATSStreamParser) throws -> [Seen] {
        var seen: [Seen] = []
        for chunk in chunks {
            try Array(chunk.utf8).withUnsafeBytes { bytes in
                try parser.parse(bytes) { event in
                    switch event {
                    case .message(let payload): seen.append(.message(String(decoding: payload, as: UTF8.self)))
                    case .ping: seen.append(.ping)
                    case .pong: seen.append(.pong)
                    case .ok: seen.append(.ok)
                    case .info: seen.append(.info)
                    case .error(let text): seen.append(.error(text))
                    }
                }
            }
        }
        return seen
    }

    func parse(_ chunks: [String]) throws -> [Seen] {
        var parser = NATSStreamParser()
        let seen = try parse(chunks, into: &parser)
        #expect(!parser.hasPending)
        return seen
    }

    static let stream = "INFO {\"server_id\":\"x\",\"max_payload\":1048576}\r\nMSG s 1 5\r\nhello\r\nPING\r\nMSG s 1 reply.to 0\r\n\r\n"
        + "MSG s 1 12\r\nline\r\nbreaks\r\n+OK\r\nHMSG s 1 18 21\r\nNATS/1.0\r\nA: b\r\n\r\nabc\r\nPONG\r\n"
    static let expected: [Seen] = [.info, .message("hello"), .ping, .message(""), .message("line\r\nbreaks"), .ok, .message("abc"), .pong]

    @Test func severalMessagesInOneChunk() throws {
        #expect(try parse([Self.stream]) == Self.expected)
    }

    @Test func everySplitPointOfTheStream() throws {
        let bytes = Array(Self.stream.utf8)
        for cut in 1..<bytes.count {
            let chunks = [String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)]
            #expect(try parse(chunks) == Self.expected, "split at \(cut)")
        }
    }

    @Test func oneByteAtATime() throws {
        #expect(try parse(Self.stream.map { String($0) }) == Self.expected)
    }

    @Test func aPartialMessageWaitsForTheRest() throws {
        var parser = NATSStreamParser()
        #expect(try parse(["MSG bench 1 10\r\n0123"], into: &parser) == [])
        #expect(parser.hasPending)
        #expect(try parse(["456789\r\nMSG bench 1 2\r\nab\r", "\nPI"], into: &parser) == [.message("0123456789"), .message("ab")])
        #expect(try parse(["NG\r\n"], into: &parser) == [.ping])
        #expect(!parser.hasPending)
    }

    @Test func serverErrorsAreReportedAndGarbageThrows() throws {
        #expect(try parse(["-ERR 'Slow Consumer'\r\n"]) == [.error("-ERR 'Slow Consumer'")])
        #expect(throws: NATSStreamParser.ProtocolError.self) { try parse(["HELLO\r\n"]) }
        #expect(throws: NATSStreamParser.ProtocolError.self) { try parse(["MSG s 1 x\r\n"]) }
        #expect(throws: NATSStreamParser.ProtocolError.self) { try parse(["MSG s 1 3\r\nabcd\r\n"]) }
    }

    @Test func natsDialectFramesMatchTheProtocol() {
        let dialect = BenchDialect.nats
        #expect(dialect.subscribeFrames(channel: "c") == [BenchDialect.natsConnect + "SUB c 1\r\n"])
        #expect(String(decoding: dialect.websocketPublishPayload(channel: "c", body: Array("xyz".utf8)), as: UTF8.self) == "PUB c 3\r\nxyz\r\n")
        #expect(dialect.deliveredPrefix(channel: "c").isEmpty)
        #expect(!dialect.publishesOverHTTP)
    }
}
