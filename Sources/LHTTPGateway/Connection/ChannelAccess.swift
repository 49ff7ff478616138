/// Who may publish to and subscribe to a channel from a websocket, by channel-name prefix (the config's
/// `channels:` list; the longest matching prefix wins, `""` matches every channel).
///
/// `POST /publish` and webhook answers are the app's own voice: they publish anywhere. A websocket
/// client's `publish:` list is checked channel by channel (refused channels get one error reply 403
/// naming them, the others are published to); a `subscribe:` list likewise, where `hook` channels are
/// joined only when the subscribe hook allows them.
public struct ChannelAccess: Sendable, Equatable {
    public enum Operation: Sendable, Equatable {
        case publish, subscribe, presence
    }

    /// Who may publish from a websocket.
    public enum PublishPolicy: String, Sendable, Equatable, CaseIterable {
        /// Any client (the original protocol's behaviour).
        case anyone
        /// Nobody from a websocket: only `POST /publish` and webhook answers.
        case none
        /// Clients whose token's `channels` claim grants the channel.
        case token
    }

    /// Who may subscribe.
    public enum SubscribePolicy: String, Sendable, Equatable, CaseIterable {
        /// Any client.
        case anyone
        /// Only when the subscribe hook allows it.
        case hook
        /// Clients whose token's `channels` claim grants the channel.
        case token
    }

    /// Presence on a prefix's channels (`presence: true`).
    public struct PresenceOptions: Sendable, Equatable {
        /// `join_leave`: subscribers get `join` and `leave`.
        public var joinLeave: Bool
        /// `leave_grace_s`.
        public var leaveGraceS: Double

        public init(joinLeave: Bool = false, leaveGraceS: Double = 5) {
            self.joinLeave = joinLeave
            self.leaveGraceS = leaveGraceS
        }
    }

    /// The options of one prefix.
    public struct Rule: Sendable, Equatable {
        public var prefix: String
        public var publish: PublishPolicy
        public var subscribe: SubscribePolicy
        /// `user_limited`: user `u` may subscribe and publish to `<prefix>u` only.
        public var userLimited: Bool
        /// Nil: no presence.
        public var presence: PresenceOptions?

        public init(prefix: String, publish: PublishPolicy, subscribe: SubscribePolicy, userLimited: Bool = false, presence: PresenceOptions? = nil) {
            self.prefix = prefix
            self.publish = publish
            self.subscribe = subscribe
            self.userLimited = userLimited
            self.presence = presence
        }

        /// Whether `channel` (of this rule) is the connection's own user-limited channel, or the rule is not user-limited.
        func userLimitAllows(_ channel: String, _ identity: ConnectionIdentity?) -> Bool {
            guard self.userLimited else { return true }
            guard let user = identity?.user, !user.isEmpty else { return false }
            return channel.utf8.count == self.prefix.utf8.count + user.utf8.count && channel.hasSuffix(user)
        }
    }

    /// Longest prefix first.
    private let rules: [Rule]
    /// What applies where no prefix matches.
    public let fallback: Rule
    /// Whether every channel is open to every client (nothing to check per channel).
    private let isOpen: Bool
    /// Whether some prefix keeps presence.
    public let hasPresence: Bool

    /// - Parameters:
    ///   - rules: per-prefix options (prefixes unique; order does not matter).
    ///   - fallback: for channels no prefix matches (`anyone`/`anyone`; `hook` for subscribing when a
    ///     subscribe hook is configured, so a configured hook keeps being asked).
    public init(rules: [Rule] = [], fallback: Rule = Rule(prefix: "", publish: .anyone, subscribe: .anyone)) {
        self.rules = rules.sorted { $0.prefix.utf8.count > $1.prefix.utf8.count }
        self.fallback = fallback
        self.isOpen = (rules + [fallback]).allSatisfy { $0.publish == .anyone && $0.subscribe == .anyone && !$0.userLimited }
        self.hasPresence = (rules + [fallback]).contains { $0.presence != nil }
    }

    /// Every channel open to everyone: the original protocol.
    public static let open = ChannelAccess()

    /// The options for `channel`.
    public func rule(for channel: String) -> Rule {
        self.rules.first { channel.hasPrefix($0.prefix) } ?? self.fallback
    }

    /// The presence options of `channel` (nil: no presence there).
    public func presence(for channel: String) -> PresenceOptions? {
        self.hasPresence ? self.rule(for: channel).presence : nil
    }

    /// `channels` split into those a websocket client with `identity` may publish to and those it may not
    /// (order kept).
    func publishable(_ channels: [String], identity: ConnectionIdentity?) -> (allowed: [String], refused: [String]) {
        guard !self.isOpen else { return (channels, []) }
        var allowed: [String] = []
        var refused: [String] = []
        for channel in channels {
            let rule = self.rule(for: channel)
            let mayPublish: Bool
            switch rule.publish {
            case .anyone: mayPublish = true
            case .none: mayPublish = false
            case .token: mayPublish = identity?.grants.allows(channel) ?? false
            }
            if mayPublish, rule.userLimitAllows(channel, identity) { allowed.append(channel) } else { refused.append(channel) }
        }
        return (allowed, refused)
    }

    /// The channels of a subscribe list that a client with `identity` may not join whatever the subscribe
    /// hook says: `token` channels its token does not grant, other users' user-limited channels (order kept).
    func unsubscribable(_ channels: [String], identity: ConnectionIdentity?) -> [String] {
        guard !self.isOpen else { return [] }
        return channels.filter { !self.maySubscribe($0, identity: identity, hookAllows: true) }
    }

    /// Whether a client with `identity` may join `channel` (`hookAllows`: what the subscribe hook said, for
    /// `hook` channels).
    public func maySubscribe(_ channel: String, identity: ConnectionIdentity?, hookAllows: Bool) -> Bool {
        let rule = self.rule(for: channel)
        guard rule.userLimitAllows(channel, identity) else { return false }
        switch rule.subscribe {
        case .anyone: return true
        case .hook: return hookAllows
        case .token: return identity?.grants.allows(channel) ?? false
        }
    }

    /// The channels of a subscribe list that only the subscribe hook may allow (order kept).
    func needingHook(_ channels: [String]) -> [String] {
        guard !self.isOpen else { return [] }
        return channels.filter { self.rule(for: $0).subscribe == .hook }
    }
}
