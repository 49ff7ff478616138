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

extension SessionStateMachine.Configuration {
    /// The per-connection bounds of a configuration.
    public init(_ config: GatewayConfig) {
        self.init(
            maxSubscriptions: config.limits.maxSubscriptionsPerConnection,
            maxBacklog: config.webhook.maxQueuedPerConnection,
            maxUpstreamInFlight: config.upstream.maxInFlightPerConnection,
            maxBacklogBytes: config.upstream.maxQueuedBytesPerConnection
        )
    }
}
