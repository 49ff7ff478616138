/// What a command, a header name, a header value and a channel name may hold. The one place these rules
/// live: the parser applies them to what arrives, the serializer to everything it writes, and the channel
/// lists to every name, so no input (a query string, a webhook's JSON, a NATS envelope) can smuggle a line
/// end into a message another client parses.
///
/// - command: one token, bytes above space and not DEL (no spaces, no control characters).
/// - header name: one token, bytes above space, not DEL, not `:`.
/// - header value: any UTF-8 but CR, LF and NUL (a tab and spaces are fine).
/// - channel name: bytes above space and not DEL (space and tab separate names in a list).
public enum LHTTPFieldRules {
    /// Whether `command` may be the command of a message.
    @inlinable
    public static func isValidCommand(_ command: String) -> Bool {
        !command.isEmpty && command.utf8.allSatisfy(isTokenByte)
    }

    /// Whether `name` may be a channel name (what ``LHTTPChannelList`` accepts in a list, length aside).
    @inlinable
    public static func isValidChannelName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy(isTokenByte)
    }

    /// Whether `name` may be a header name.
    @inlinable
    public static func isValidHeaderName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { isTokenByte($0) && $0 != UInt8(ascii: ":") }
    }

    /// Whether `value` may be a header value.
    @inlinable
    public static func isValidHeaderValue(_ value: String) -> Bool {
        value.utf8.allSatisfy(isValueByte)
    }

    /// A byte of a token (a command, a header name, a channel name: ``LHTTPChannelList`` checks each name
    /// with it as it splits the list): above space, not DEL (UTF-8 lead and continuation bytes are above 0x7F).
    @inlinable
    static func isTokenByte(_ byte: UInt8) -> Bool { byte > 0x20 && byte != 0x7F }

    /// A byte of a header value: anything but NUL, LF and CR.
    @inlinable
    static func isValueByte(_ byte: UInt8) -> Bool { byte != 0x00 && byte != 0x0A && byte != 0x0D }
}
