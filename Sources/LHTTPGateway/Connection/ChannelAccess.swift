/// Who may publish to and subscribe to a channel from a websocket, by channel-name prefix (the config's
/// `channels:` list; the longest matching prefix wins, `""` matches every channel).
///
/// `POST /publish` and webhook answers are the app's own voice: they publish anywhere. A websocket
/// client's `publish:` list is checked channel by channel (refused channels get one error reply 403
/// naming them, the others are published to); a `subscribe:` list likewise, where `hook` channels are
/// joined only when the subscribe hook allows them.
public struct ChannelAccess: Sendable, Equatable {
    public enum Operation: Sendable, Equatable {
        case publish, subscribe
    }

    /// Who may publish from a websocket.
    public enum PublishPolicy: String, Sendable, Equatable, CaseIterable {
        /// Any client (the original protocol's behaviour).
        case anyone
        /// Nobody from a websocket: only `POST /publish` and webhook answers.
        case none
    }

    /// Who may subscribe.
    public enum SubscribePolicy: String, Sendable, Equatable, CaseIterable {
        /// Any client.
        case anyone
        /// Only when the subscribe hook allows it.
        case hook
    }

    /// The options of one prefix.
    public struct Rule: Sendable, Equatable {
        public var prefix: String
        public var publish: PublishPolicy
        public var subscribe: SubscribePolicy

        public init(prefix: String, publish: PublishPolicy, subscribe: SubscribePolicy) {
            self.prefix = prefix
            self.publish = publish
            self.subscribe = subscribe
        }
    }

    /// Longest prefix first.
    private let rules: [Rule]
    /// What applies where no prefix matches.
    public let fallback: Rule
    /// Whether every channel is open to every client (nothing to check per channel).
    private let isOpen: Bool

    /// - Parameters:
    ///   - rules: per-prefix options (prefixes unique; order does not matter).
    ///   - fallback: for channels no prefix matches (`anyone`/`anyone`; `hook` for subscribing when a
    ///     subscribe hook is configured, so a configured hook keeps being asked).
    public init(rules: [Rule] = [], fallback: Rule = Rule(prefix: "", publish: .anyone, subscribe: .anyone)) {
        self.rules = rules.sorted { $0.prefix.utf8.count > $1.prefix.utf8.count }
        self.fallback = fallback
        self.isOpen = (rules + [fallback]).allSatisfy { $0.publish == .anyone && $0.subscribe == .anyone }
    }

    /// Every channel open to everyone: the original protocol.
    public static let open = ChannelAccess()

    /// The options for `channel`.
    public func rule(for channel: String) -> Rule {
        self.rules.first { channel.hasPrefix($0.prefix) } ?? self.fallback
    }

    /// `channels` split into those a websocket client may publish to and those it may not (order kept).
    func publishable(_ channels: [String]) -> (allowed: [String], refused: [String]) {
        guard !self.isOpen else { return (channels, []) }
        var allowed: [String] = []
        var refused: [String] = []
        for channel in channels {
            if self.rule(for: channel).publish == .anyone { allowed.append(channel) } else { refused.append(channel) }
        }
        return (allowed, refused)
    }

    /// The channels of a subscribe list that only the subscribe hook may allow (order kept).
    func needingHook(_ channels: [String]) -> [String] {
        guard !self.isOpen else { return [] }
        return channels.filter { self.rule(for: $0).subscribe == .hook }
    }
}
