/// Everything that can be wrong with an LHTTP message. The one error type of `LHTTPProtocol`.
///
/// ``status`` and ``reason`` are the single mapping from a protocol error to the error reply
/// (`LHTTP/1.0 error`, `status:`, `reason:`) and to the HTTP status of `POST /publish`.
public enum LHTTPProtocolError: Error, Sendable, Equatable {
    /// The message has no line end at all (a start line must end with CRLF or LF).
    case missingLineEnd
    /// The start line is empty.
    case emptyStartLine
    /// The start line names a protocol other than `LHTTP/1.0`.
    case unsupportedVersion(String)
    /// The start line has a version but no command (`LHTTP/1.0\r\n`).
    case missingCommand
    /// The command holds whitespace or control characters.
    case invalidCommand(String)
    /// The start line or a header is not valid UTF-8.
    case invalidUTF8
    /// A header line has no `:`.
    case headerWithoutColon(line: Int)
    /// A header line's key is empty (`:value`).
    case emptyHeaderName(line: Int)
    /// A start line or header line is longer than `max_header_line_bytes`.
    case headerLineTooLong(limit: Int)
    /// More than `max_headers` header lines.
    case tooManyHeaders(limit: Int)
    /// The message is larger than `max_message_bytes`.
    case messageTooLarge(size: Int, limit: Int)
    /// The `multipart` header is not a list of decimal offsets.
    case invalidMultipartOffset(String)
    /// The `multipart` offsets are not strictly ascending.
    case multipartOffsetsNotAscending
    /// A `multipart` offset is at or past the end of the body.
    case multipartOffsetOutOfRange(offset: Int, bodyBytes: Int)
    /// A multipart part has no blank line between its headers and its body.
    case partWithoutBlankLine(part: Int)
    /// A part's header is malformed (no colon, empty key, too long, too many).
    case invalidPartHeader(part: Int, String)
    /// A channel list names more than `max_channels_per_message` channels.
    case tooManyChannels(count: Int, limit: Int)
    /// A channel name is longer than `max_channel_name_bytes`.
    case channelNameTooLong(limit: Int)
    /// A channel name holds a control character (see ``LHTTPFieldRules``).
    case invalidChannelName(String)
    /// A header name holds a space, a `:` or a control character (see ``LHTTPFieldRules``).
    case invalidHeaderName(String)
    /// The value of header `name` holds a CR, LF or NUL (see ``LHTTPFieldRules``).
    case invalidHeaderValue(name: String)

    /// The status code of the error reply (HTTP semantics).
    public var status: Int {
        switch self {
        case .missingLineEnd, .emptyStartLine, .missingCommand, .invalidCommand, .invalidUTF8,
            .headerWithoutColon, .emptyHeaderName, .invalidMultipartOffset, .multipartOffsetsNotAscending,
            .multipartOffsetOutOfRange, .partWithoutBlankLine, .invalidPartHeader, .invalidChannelName,
            .invalidHeaderName, .invalidHeaderValue:
            return 400
        case .unsupportedVersion:
            return 505
        case .messageTooLarge, .tooManyChannels, .channelNameTooLong:
            return 413
        case .headerLineTooLong, .tooManyHeaders:
            return 431
        }
    }

    /// A one-line human-readable reason, safe to put in a header value.
    public var reason: String {
        switch self {
        case .missingLineEnd: return "no line end: a message starts with 'LHTTP/1.0 <command>' and CRLF"
        case .emptyStartLine: return "empty start line"
        case .unsupportedVersion(let v): return "unsupported protocol '\(v.lhttpSanitized(max: 32))', want LHTTP/1.0"
        case .missingCommand: return "start line has no command"
        case .invalidCommand(let c): return "invalid command '\(c.lhttpSanitized(max: 32))'"
        case .invalidUTF8: return "start line or headers are not valid UTF-8"
        case .headerWithoutColon(let line): return "header line \(line) has no ':'"
        case .emptyHeaderName(let line): return "header line \(line) has an empty key"
        case .headerLineTooLong(let limit): return "a line is longer than \(limit) bytes"
        case .tooManyHeaders(let limit): return "more than \(limit) headers"
        case .messageTooLarge(let size, let limit): return "message of \(size) bytes exceeds \(limit) bytes"
        case .invalidMultipartOffset(let v): return "multipart offset '\(v.lhttpSanitized(max: 32))' is not a number"
        case .multipartOffsetsNotAscending: return "multipart offsets must be strictly ascending"
        case .multipartOffsetOutOfRange(let offset, let bytes):
            return "multipart offset \(offset) is outside the body of \(bytes) bytes"
        case .partWithoutBlankLine(let part): return "multipart part \(part) has no blank line after its headers"
        case .invalidPartHeader(let part, let why): return "multipart part \(part): \(why)"
        case .tooManyChannels(let count, let limit): return "\(count) channels exceed the limit of \(limit)"
        case .channelNameTooLong(let limit): return "a channel name is longer than \(limit) bytes"
        case .invalidChannelName(let name): return "channel name '\(name.lhttpSanitized(max: 64))' holds a control character"
        case .invalidHeaderName(let name): return "header name '\(name.lhttpSanitized(max: 64))' holds a space, ':' or a control character"
        case .invalidHeaderValue(let name): return "the value of header '\(name.lhttpSanitized(max: 64))' holds CR, LF or NUL"
        }
    }
}

extension String {
    /// Cuts to `max` characters and drops control characters so the text fits in one header value.
    func lhttpSanitized(max: Int) -> String {
        let cleaned = String(String.UnicodeScalarView(self.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }))
        return cleaned.count > max ? String(cleaned.prefix(max)) + "..." : cleaned
    }
}
