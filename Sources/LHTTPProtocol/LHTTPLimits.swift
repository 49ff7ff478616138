/// Size limits the parser enforces. Every field is a named config key (`limits.*`) with this default.
public struct LHTTPLimits: Sendable, Equatable {
    /// Largest whole message, in bytes (`max_message_bytes`).
    public var maxMessageBytes: Int
    /// Most header lines in a message or in one multipart part (`max_headers`).
    public var maxHeaders: Int
    /// Longest start line or header line, in bytes, without its line end (`max_header_line_bytes`).
    public var maxHeaderLineBytes: Int
    /// Most channels named by one `subscribe`/`unsubscribe`/`publish` list (`max_channels_per_message`).
    public var maxChannelsPerMessage: Int
    /// Longest channel name, in bytes (`max_channel_name_bytes`).
    public var maxChannelNameBytes: Int

    public init(
        maxMessageBytes: Int = 1 << 20,
        maxHeaders: Int = 64,
        maxHeaderLineBytes: Int = 8 << 10,
        maxChannelsPerMessage: Int = 64,
        maxChannelNameBytes: Int = 256
    ) {
        self.maxMessageBytes = maxMessageBytes
        self.maxHeaders = maxHeaders
        self.maxHeaderLineBytes = maxHeaderLineBytes
        self.maxChannelsPerMessage = maxChannelsPerMessage
        self.maxChannelNameBytes = maxChannelNameBytes
    }

    /// The defaults documented in `docs/protocol.md`.
    public static let `default` = LHTTPLimits()
}
