/// Which channels keep history and how much: the `history:` defaults and the `channels:` list's
/// `history_size`/`history_ttl_s` by prefix (the longest matching prefix wins, as for every channel option).
public struct HistoryPolicies: Sendable, Equatable {
    /// Longest prefix first.
    private let rules: [(prefix: String, policy: HistoryPolicy)]
    /// Where no prefix matches (`history.size`, `history.ttl_s`).
    public let fallback: HistoryPolicy
    /// Whether some channel keeps history (otherwise every publication stays on the plain path).
    public let isAnyEnabled: Bool

    public init(rules: [(prefix: String, policy: HistoryPolicy)] = [], fallback: HistoryPolicy = .none) {
        self.rules = rules.sorted { $0.prefix.utf8.count > $1.prefix.utf8.count }
        self.fallback = fallback
        self.isAnyEnabled = fallback.isEnabled || rules.contains { $0.policy.isEnabled }
    }

    /// No history anywhere (today's behaviour, the default).
    public static let none = HistoryPolicies()

    /// Every policy some channel can get (the rules' and the fallback).
    public var allPolicies: [HistoryPolicy] { self.rules.map(\.policy) + [self.fallback] }

    /// The policy of `channel`.
    public func policy(for channel: String) -> HistoryPolicy {
        guard self.isAnyEnabled else { return .none }
        return self.rules.first { channel.hasPrefix($0.prefix) }?.policy ?? self.fallback
    }

    public static func == (lhs: HistoryPolicies, rhs: HistoryPolicies) -> Bool {
        lhs.fallback == rhs.fallback && lhs.rules.map(\.prefix) == rhs.rules.map(\.prefix) && lhs.rules.map(\.policy) == rhs.rules.map(\.policy)
    }
}
