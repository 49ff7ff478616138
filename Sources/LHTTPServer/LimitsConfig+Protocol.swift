import LHTTPConfig
import LHTTPGateway
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

extension SubscriptionCaps {
    /// The subscription caps of a `limits:` config section.
    public init(_ config: LimitsConfig) {
        self.init(maxSubscriptionsPerConnection: config.maxSubscriptionsPerConnection, maxChannels: config.maxChannels)
    }
}
