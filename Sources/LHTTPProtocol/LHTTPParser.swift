import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Parses one LHTTP message from the bytes of one websocket message or HTTP body.
///
/// A plain value: it never sees a socket. See `docs/protocol.md` for every rule it applies.
/// It scans the bytes once, in place; only header keys and values become `String`s, and the body
/// is a slice of the input (no copy).
public struct LHTTPParser: Sendable {
    /// The limits applied to every message.
    public var limits: LHTTPLimits

    public init(limits: LHTTPLimits = .default) {
        self.limits = limits
    }

    /// Parses `bytes` (the readable bytes) into a message.
    public func parse(_ bytes: ByteBuffer) throws(LHTTPProtocolError) -> LHTTPMessage {
        guard bytes.readableBytes <= self.limits.maxMessageBytes else {
            throw .messageTooLarge(size: bytes.readableBytes, limit: self.limits.maxMessageBytes)
        }
        let limits = self.limits
        let outcome: Result<(String, LHTTPHeaders, Int), LHTTPProtocolError> = bytes.withUnsafeReadableBytes { raw in
            var cursor = RawLineCursor(raw)
            guard let startLine = cursor.nextLine(), startLine.terminated else {
                return .failure(.missingLineEnd)
            }
            let command: String
            switch Self.parseStartLine(UnsafeRawBufferPointer(rebasing: raw[startLine.range]), limits: limits) {
            case .success(let value): command = value
            case .failure(let error): return .failure(error)
            }
            switch HeaderBlockParser(limits: limits).parse(&cursor) {
            case .success(let block): return .success((command, block.headers, cursor.position))
            case .failure(let error): return .failure(error)
            }
        }
        let (command, headers, bodyStart) = try outcome.get()
        let body = bytes.getSlice(at: bytes.readerIndex + bodyStart, length: bytes.readableBytes - bodyStart) ?? ByteBuffer()
        return LHTTPMessage(command: command, headers: headers, body: body)
    }

    private static func parseStartLine(_ line: UnsafeRawBufferPointer, limits: LHTTPLimits) -> Result<String, LHTTPProtocolError> {
        guard line.count <= limits.maxHeaderLineBytes else { return .failure(.headerLineTooLong(limit: limits.maxHeaderLineBytes)) }
        let trimmed = line.lhttpTrimmed
        guard !trimmed.isEmpty else { return .failure(.emptyStartLine) }
        let separator = trimmed.firstIndex { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") } ?? trimmed.endIndex
        let version = UnsafeRawBufferPointer(rebasing: trimmed[trimmed.startIndex..<separator])
        guard version.elementsEqual(versionBytes) else {
            return .failure(.unsupportedVersion(String(decoding: version, as: UTF8.self)))
        }
        let rest = trimmed[separator...].lhttpTrimmed
        guard !rest.isEmpty else { return .failure(.missingCommand) }
        guard let command = String(lhttpValidating: UnsafeRawBufferPointer(rebasing: rest)) else { return .failure(.invalidUTF8) }
        guard rest.allSatisfy(LHTTPFieldRules.isTokenByte) else { return .failure(.invalidCommand(command)) }
        return .success(command)
    }

    private static let versionBytes = Array(LHTTPMessage.version.utf8)
}

/// Reads LF- or CRLF-terminated lines from raw bytes, by index.
struct RawLineCursor {
    let raw: UnsafeRawBufferPointer
    /// Offset of the first byte not read yet.
    private(set) var position = 0

    init(_ raw: UnsafeRawBufferPointer) { self.raw = raw }

    /// The next line's byte range without its line end, and whether a line end was found. Nil at the end.
    mutating func nextLine() -> (range: Range<Int>, terminated: Bool)? {
        let count = self.raw.count
        guard self.position < count, let base = self.raw.baseAddress else { return nil }
        let start = self.position
        guard let found = memchr(base + start, Int32(UInt8(ascii: "\n")), count - start) else {
            self.position = count
            return (start..<count, false)
        }
        let lf = base.distance(to: UnsafeRawPointer(found))
        self.position = lf + 1
        let end = lf > start && self.raw[lf - 1] == UInt8(ascii: "\r") ? lf - 1 : lf
        return (start..<end, true)
    }
}

/// Parses `key:value` lines up to a blank line; shared by messages and multipart parts.
struct HeaderBlockParser {
    var limits: LHTTPLimits

    struct Block {
        var headers: LHTTPHeaders
        /// Whether the block ended with a blank line (rather than the end of the input).
        var sawBlankLine: Bool
    }

    func parse(_ cursor: inout RawLineCursor) -> Result<Block, LHTTPProtocolError> {
        var headers: [LHTTPHeader] = []
        var index = 0
        while let (range, _) = cursor.nextLine() {
            index += 1
            if range.isEmpty {
                return .success(Block(headers: LHTTPHeaders(headers), sawBlankLine: true))
            }
            guard range.count <= self.limits.maxHeaderLineBytes else {
                return .failure(.headerLineTooLong(limit: self.limits.maxHeaderLineBytes))
            }
            guard headers.count < self.limits.maxHeaders else {
                return .failure(.tooManyHeaders(limit: self.limits.maxHeaders))
            }
            let line = UnsafeRawBufferPointer(rebasing: cursor.raw[range])
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                return .failure(.headerWithoutColon(line: index))
            }
            let key = UnsafeRawBufferPointer(rebasing: line[..<colon]).lhttpTrimmed
            let value = UnsafeRawBufferPointer(rebasing: line[(colon + 1)...]).lhttpTrimmed
            guard !key.isEmpty else { return .failure(.emptyHeaderName(line: index)) }
            guard let name = String(lhttpValidating: UnsafeRawBufferPointer(rebasing: key)),
                let text = String(lhttpValidating: UnsafeRawBufferPointer(rebasing: value))
            else {
                return .failure(.invalidUTF8)
            }
            // What arrives obeys the rules the serializer writes by, so every parsed message re-serializes.
            guard key.allSatisfy(LHTTPFieldRules.isTokenByte) else { return .failure(.invalidHeaderName(name)) }
            guard value.allSatisfy(LHTTPFieldRules.isValueByte) else { return .failure(.invalidHeaderValue(name: name)) }
            headers.append(LHTTPHeader(name: name, value: text))
        }
        return .success(Block(headers: LHTTPHeaders(headers), sawBlankLine: false))
    }
}

extension Slice where Base == UnsafeRawBufferPointer {
    /// The bytes without leading and trailing spaces and tabs (indices stay those of the base).
    var lhttpTrimmed: Slice<UnsafeRawBufferPointer> {
        var start = self.startIndex
        var end = self.endIndex
        while start < end, self.base[start] == 0x20 || self.base[start] == 0x09 { start += 1 }
        while end > start, self.base[end - 1] == 0x20 || self.base[end - 1] == 0x09 { end -= 1 }
        return self.base[start..<end]
    }
}

extension UnsafeRawBufferPointer {
    var lhttpTrimmed: Slice<UnsafeRawBufferPointer> { self[...].lhttpTrimmed }
}

extension String {
    /// A string from UTF-8 bytes, or nil when they are not valid UTF-8. ASCII takes a fast path.
    init?(lhttpValidating bytes: UnsafeRawBufferPointer) {
        let utf8 = bytes.assumingMemoryBound(to: UInt8.self)
        if utf8.allSatisfy({ $0 < 0x80 }) {
            self = String(decoding: utf8, as: UTF8.self)
        } else {
            guard let string = String(validating: utf8, as: UTF8.self) else { return nil }
            self = string
        }
    }
}
