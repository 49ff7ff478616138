import LHTTPConfig
import LHTTPProtocol

extension LHTTPLimits {
    /// The parser limits of a `limits:` config section.
    public init(_ config: LimitsConfig) {
        self.init(
            maxMessageBytes: config.maxMessageBytes,
            maxHeaders: config.maxHeaders,
            maxHeaderLineBytes: config.maxHeaderLineBytes,
            maxChannelsPerMessage: config.maxChannelsPerMessage,
            maxChannelNameBytes: config.maxChannelNameBytes
        )
    }
}
