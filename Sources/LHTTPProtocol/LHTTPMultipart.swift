import NIOCore

/// One part of a `multipart` message: its own headers and body.
public struct LHTTPPart: Sendable, Equatable {
    public var headers: LHTTPHeaders
    public var body: ByteBuffer

    public init(headers: LHTTPHeaders, body: ByteBuffer) {
        self.headers = headers
        self.body = body
    }

    public var bodyString: String { String(buffer: self.body) }
}

extension LHTTPMessage {
    /// The name of the header that carries multipart offsets.
    public static let multipartHeader = "multipart"

    /// Cuts the body into parts at the byte offsets of the `multipart` header.
    ///
    /// Part *i* is `body[o_i ..< o_(i+1)]`, the last runs to the end of the body; each part is
    /// `headers CRLF CRLF body`. Offsets must be decimal, strictly ascending, and inside the body
    /// (`0 <= o < body.count`). Bytes before the first offset are ignored. Returns `[]` when the
    /// message has no `multipart` header. Part bodies are slices of the message body: no copy.
    public func multipartParts(limits: LHTTPLimits = .default) throws(LHTTPProtocolError) -> [LHTTPPart] {
        guard let spec = self.headers[Self.multipartHeader] else { return [] }
        let offsets = try Self.parseOffsets(spec, bodyBytes: self.body.readableBytes)
        var parts: [LHTTPPart] = []
        parts.reserveCapacity(offsets.count)
        for (index, start) in offsets.enumerated() {
            let end = index + 1 < offsets.count ? offsets[index + 1] : self.body.readableBytes
            let slice = self.body.getSlice(at: self.body.readerIndex + start, length: end - start)!
            let outcome: Result<(LHTTPHeaders, Int), LHTTPProtocolError> = slice.withUnsafeReadableBytes { raw in
                var cursor = RawLineCursor(raw)
                switch HeaderBlockParser(limits: limits).parse(&cursor) {
                case .success(let block) where block.sawBlankLine: return .success((block.headers, cursor.position))
                case .success: return .failure(.partWithoutBlankLine(part: index))
                case .failure(let error): return .failure(.invalidPartHeader(part: index, error.reason))
                }
            }
            let (headers, bodyStart) = try outcome.get()
            let body = slice.getSlice(at: slice.readerIndex + bodyStart, length: slice.readableBytes - bodyStart) ?? ByteBuffer()
            parts.append(LHTTPPart(headers: headers, body: body))
        }
        return parts
    }

    private static func parseOffsets(_ spec: String, bodyBytes: Int) throws(LHTTPProtocolError) -> [Int] {
        let tokens = spec.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard !tokens.isEmpty else { throw .invalidMultipartOffset(spec) }
        var offsets: [Int] = []
        offsets.reserveCapacity(tokens.count)
        for token in tokens {
            guard token.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                let offset = Int(token)
            else {
                throw .invalidMultipartOffset(String(token))
            }
            guard offset < bodyBytes else { throw .multipartOffsetOutOfRange(offset: offset, bodyBytes: bodyBytes) }
            if let previous = offsets.last, offset <= previous { throw .multipartOffsetsNotAscending }
            offsets.append(offset)
        }
        return offsets
    }
}
