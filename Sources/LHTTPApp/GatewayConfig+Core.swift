import LHTTPConfig
import LHTTPGateway
import LHTTPProtocol
import NIOCore

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
                publish: PublishPolicy(rawValue: options.publish.rawValue) ?? .none,
                subscribe: options.subscribe.flatMap { SubscribePolicy(rawValue: $0.rawValue) } ?? hookDefault,
                userLimited: options.userLimited,
                presence: options.presence ? PresenceOptions(joinLeave: options.joinLeave, leaveGraceS: options.leaveGraceS) : nil
            )
        }
        let fallback = rules.first { $0.prefix.isEmpty } ?? Rule(prefix: "", publish: .anyone, subscribe: hookDefault)
        self.init(rules: rules.filter { !$0.prefix.isEmpty }, fallback: fallback)
    }
}

extension HistoryPolicies {
    /// `history.size`/`history.ttl_s` for every channel, overridden per prefix by the `channels:` list's
    /// `history_size`/`history_ttl_s` (a prefix entry without them keeps the defaults).
    public init(_ config: GatewayConfig) {
        func ttl(_ seconds: Double) -> TimeAmount? { seconds > 0 ? TimeAmount(.seconds(seconds)) : nil }
        let fallback = HistoryPolicy(size: config.history.size, ttl: ttl(config.history.ttlS))
        let rules = config.channels.map { options in
            (prefix: options.prefix, policy: HistoryPolicy(
                size: options.historySize ?? config.history.size,
                ttl: ttl(options.historyTTLS ?? config.history.ttlS)
            ))
        }
        self.init(rules: rules.filter { !$0.prefix.isEmpty }, fallback: rules.first { $0.prefix.isEmpty }?.policy ?? fallback)
    }
}

extension ChannelHistory {
    /// The one-node history of a configuration; nil when no channel keeps any.
    public static func make(_ config: GatewayConfig, limits: LHTTPLimits) -> ChannelHistory? {
        let policies = HistoryPolicies(config)
        guard policies.isAnyEnabled else { return nil }
        let store = MemoryHistory(maxBytes: config.history.maxBytes, metaTTL: TimeAmount(.seconds(config.history.metaTTLS)))
        return ChannelHistory(store: store, policies: policies, limits: limits)
    }
}
