import NIOCore

/// Parses one LHTTP message from the bytes of one websocket message or HTTP body.
///
/// A plain value: it never sees a socket. See `docs/protocol.md` for every rule it applies.
public struct LHTTPParser: Sendable {
    /// The limits applied to every message.
    public var limits: LHTTPLimits

    public init(limits: LHTTPLimits = .default) {
        self.limits = limits
    }

    /// Parses `bytes` (the readable bytes) into a message. The body is a slice of `bytes`: no copy.
    public func parse(_ bytes: ByteBuffer) throws(LHTTPProtocolError) -> LHTTPMessage {
        guard bytes.readableBytes <= self.limits.maxMessageBytes else {
            throw .messageTooLarge(size: bytes.readableBytes, limit: self.limits.maxMessageBytes)
        }
        var cursor = LineCursor(buffer: bytes)
        guard let startLine = cursor.nextLine() else {
            throw .missingLineEnd
        }
        guard startLine.terminated else {
            throw .missingLineEnd
        }
        let command = try self.parseStartLine(startLine.bytes)
        let headers = try HeaderBlockParser(limits: self.limits).parse(&cursor) { error in error }
        return LHTTPMessage(command: command, headers: headers.headers, body: cursor.remainder())
    }

    private func parseStartLine(_ line: ByteBuffer) throws(LHTTPProtocolError) -> String {
        guard line.readableBytes <= self.limits.maxHeaderLineBytes else {
            throw .headerLineTooLong(limit: self.limits.maxHeaderLineBytes)
        }
        guard let text = String(validating: line.readableBytesView, as: UTF8.self) else {
            throw .invalidUTF8
        }
        let trimmed = text.lhttpTrimmed
        guard !trimmed.isEmpty else { throw .emptyStartLine }
        let protocolToken: Substring
        let rest: Substring
        if let space = trimmed.firstIndex(where: { $0 == " " || $0 == "\t" }) {
            protocolToken = trimmed[..<space]
            rest = trimmed[trimmed.index(after: space)...]
        } else {
            protocolToken = trimmed[...]
            rest = ""
        }
        guard protocolToken == LHTTPMessage.version else {
            throw .unsupportedVersion(String(protocolToken))
        }
        let command = String(rest).lhttpTrimmed
        guard !command.isEmpty else { throw .missingCommand }
        guard command.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) else {
            throw .invalidCommand(command)
        }
        return command
    }
}

/// Reads LF- or CRLF-terminated lines from a buffer.
struct LineCursor {
    private(set) var buffer: ByteBuffer

    init(buffer: ByteBuffer) { self.buffer = buffer }

    /// 1-based number of the next line, for error messages.
    private(set) var lineNumber = 0

    /// The next line without its line end, and whether a line end was found. Nil at the end of the buffer.
    mutating func nextLine() -> (bytes: ByteBuffer, terminated: Bool)? {
        guard self.buffer.readableBytes > 0 else { return nil }
        self.lineNumber += 1
        let view = self.buffer.readableBytesView
        guard let lf = view.firstIndex(of: UInt8(ascii: "\n")) else {
            let line = self.buffer.readSlice(length: self.buffer.readableBytes)!
            return (line, false)
        }
        let lengthWithCR = lf - view.startIndex
        var line = self.buffer.readSlice(length: lengthWithCR)!
        self.buffer.moveReaderIndex(forwardBy: 1)
        if line.readableBytes > 0, line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == UInt8(ascii: "\r") {
            line.moveWriterIndex(to: line.writerIndex - 1)
        }
        return (line, true)
    }

    /// Everything not read yet.
    func remainder() -> ByteBuffer { self.buffer }
}

/// Parses `key:value` lines up to a blank line; shared by messages and multipart parts.
struct HeaderBlockParser {
    var limits: LHTTPLimits

    struct Result {
        var headers: LHTTPHeaders
        /// Whether the block ended with a blank line (rather than the end of the input).
        var sawBlankLine: Bool
    }

    func parse(
        _ cursor: inout LineCursor,
        mapError: (LHTTPProtocolError) -> LHTTPProtocolError
    ) throws(LHTTPProtocolError) -> Result {
        var headers: [LHTTPHeader] = []
        var index = 0
        while let (line, _) = cursor.nextLine() {
            index += 1
            if line.readableBytes == 0 {
                return Result(headers: LHTTPHeaders(headers), sawBlankLine: true)
            }
            guard line.readableBytes <= self.limits.maxHeaderLineBytes else {
                throw mapError(.headerLineTooLong(limit: self.limits.maxHeaderLineBytes))
            }
            guard headers.count < self.limits.maxHeaders else {
                throw mapError(.tooManyHeaders(limit: self.limits.maxHeaders))
            }
            let view = line.readableBytesView
            guard let colon = view.firstIndex(of: UInt8(ascii: ":")) else {
                throw mapError(.headerWithoutColon(line: index))
            }
            guard let key = String(validating: view[view.startIndex..<colon], as: UTF8.self),
                let value = String(validating: view[(colon + 1)...], as: UTF8.self)
            else {
                throw mapError(.invalidUTF8)
            }
            let name = key.lhttpTrimmed
            guard !name.isEmpty else { throw mapError(.emptyHeaderName(line: index)) }
            headers.append(LHTTPHeader(name: name, value: value.lhttpTrimmed))
        }
        return Result(headers: LHTTPHeaders(headers), sawBlankLine: false)
    }
}

extension String {
    /// The string without leading and trailing spaces and tabs.
    var lhttpTrimmed: String {
        let utf8 = self.utf8
        guard let first = utf8.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }) else { return "" }
        let last = utf8.lastIndex(where: { $0 != 0x20 && $0 != 0x09 })!
        if first == utf8.startIndex && last == utf8.index(before: utf8.endIndex) { return self }
        return String(self[first...last])
    }
}
