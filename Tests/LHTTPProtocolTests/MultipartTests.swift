import LHTTPProtocol
import NIOCore
import Testing

@Suite("Multipart")
struct MultipartTests {
    func parts(_ text: String) throws(LHTTPProtocolError) -> [LHTTPPart] {
        try LHTTPParser().parse(ByteBuffer(string: text)).multipartParts()
    }

    @Test func seedFourteenExample() throws {
        let parts = try parts("LHTTP/1.0 upload\r\nmultipart:0 14\r\n\r\nk1:v1\r\n\r\nbody1k2:v2\r\n\r\nbody2")
        #expect(parts.count == 2)
        #expect(parts[0].headers["k1"] == "v1")
        #expect(parts[0].bodyString == "body1")
        #expect(parts[1].headers["k2"] == "v2")
        #expect(parts[1].bodyString == "body2")
    }

    @Test func seedUploadExampleWithCorrectedOffset() throws {
        let body = "content-type:text/json\r\n\r\n{filename:file.txt,fileLen:5}content-type:text/plain\r\n\r\nhello"
        let parts = try self.parts("LHTTP/1.0 upload\r\nmultipart:0 55\r\n\r\n" + body)
        #expect(parts.map(\.bodyString) == ["{filename:file.txt,fileLen:5}", "hello"])
        #expect(parts.map { $0.headers["content-type"] } == ["text/json", "text/plain"])
        // The seed README's "0 56" cuts one byte into the second part's headers.
        let cut = try self.parts("LHTTP/1.0 upload\r\nmultipart:0 56\r\n\r\n" + body)
        #expect(cut[0].bodyString == "{filename:file.txt,fileLen:5}c")
        #expect(cut[1].headers["content-type"] == nil)
        #expect(cut[1].headers["ontent-type"] == "text/plain")
    }

    @Test func noMultipartHeaderMeansNoParts() throws {
        #expect(try parts("LHTTP/1.0 chat\r\n\r\nk:v\r\n\r\nbody").isEmpty)
    }

    @Test func partHeadersWithBareLF() throws {
        let parts = try parts("LHTTP/1.0 upload\r\nmultipart:0\r\n\r\nk: v \n\nbody")
        #expect(parts[0].headers["k"] == "v")
        #expect(parts[0].bodyString == "body")
    }

    @Test(arguments: [
        ("multipart:0 x", LHTTPProtocolError.invalidMultipartOffset("x")),
        ("multipart:-1", .invalidMultipartOffset("-1")),
        ("multipart:", .invalidMultipartOffset("")),
        ("multipart:0 +3", .invalidMultipartOffset("+3")),
        ("multipart:5 3", .multipartOffsetsNotAscending),
        ("multipart:0 0", .multipartOffsetsNotAscending),
        ("multipart:0 99", .multipartOffsetOutOfRange(offset: 99, bodyBytes: 14)),
        ("multipart:14", .multipartOffsetOutOfRange(offset: 14, bodyBytes: 14)),
    ])
    func badOffsets(header: String, expected: LHTTPProtocolError) {
        #expect(throws: expected) { try parts("LHTTP/1.0 upload\r\n\(header)\r\n\r\nk1:v1\r\n\r\nbody1") }
    }

    @Test func partWithoutBlankLine() {
        #expect(throws: LHTTPProtocolError.partWithoutBlankLine(part: 1)) {
            try parts("LHTTP/1.0 upload\r\nmultipart:0 14\r\n\r\nk1:v1\r\n\r\nbody1k2:v2 body2")
        }
    }

    @Test func partHeaderWithoutColon() {
        #expect(throws: LHTTPProtocolError.invalidPartHeader(part: 0, "header line 1 has no ':'")) {
            try parts("LHTTP/1.0 upload\r\nmultipart:0\r\n\r\nnocolon\r\n\r\nbody")
        }
    }
}
