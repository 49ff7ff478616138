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
            maxBacklogBytes: config.upstream.maxQueuedBytesPerConnection,
            rate: RateLimit(
                messagesPerSecond: config.limits.maxMessagesPerSecond,
                bytesPerSecond: config.limits.maxBytesPerSecond,
                burstMessages: config.limits.burstMessages,
                burstBytes: config.limits.burstBytes,
                maxViolations: config.limits.maxRateViolations
            )
        )
    }
}

extension ChannelAccess {
    /// The `channels:` options of a configuration. A channel no prefix matches may be published to by
    /// anyone, and subscribed to by anyone — or only as the subscribe hook allows, when one is configured
    /// (a configured hook keeps being asked for every channel, as before the options existed).
    public init(_ config: GatewayConfig) {
        let hookDefault: SubscribePolicy = config.hooks.subscribe.isEmpty ? .anyone : .hook
        let rules = config.channels.map { options in
            Rule(
                prefix: options.prefix,
                publish: options.publish == .none ? .none : .anyone,
                subscribe: options.subscribe.map { $0 == .hook ? .hook : .anyone } ?? hookDefault
            )
        }
        let fallback = rules.first { $0.prefix.isEmpty } ?? Rule(prefix: "", publish: .anyone, subscribe: hookDefault)
        self.init(rules: rules.filter { !$0.prefix.isEmpty }, fallback: fallback)
    }
}
