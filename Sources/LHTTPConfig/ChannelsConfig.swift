/// One entry of the `channels:` list: options for every channel whose name starts with `prefix` (the
/// longest matching prefix wins; `""` matches every channel).
///
/// ```yaml
/// channels:
///   - prefix: ""
///     publish: anyone    # anyone | none (only POST /publish and webhook answers) | token (granted by the JWT)
///     subscribe: anyone  # anyone | hook (the subscribe hook must allow it) | token (granted by the JWT)
///     user_limited: false  # user u may subscribe (and publish) to "<prefix>u" only
///     presence: false    # keep who is subscribed (the presence header, GET /presence)
///     join_leave: false  # send join/leave to the channel's subscribers
///     leave_grace_s: 5   # seconds a user's last connection may be gone before leave is sent
///     history_size: 100  # messages kept (default: history.size)
///     history_ttl_s: 3600  # seconds a message is kept (default: history.ttl_s)
/// ```
public struct ChannelOptionsConfig: Sendable, Equatable {
    /// Who may publish from a websocket.
    public enum Publish: String, Sendable, Equatable, CaseIterable, Decodable {
        case anyone, none, token
    }

    /// Who may subscribe.
    public enum Subscribe: String, Sendable, Equatable, CaseIterable, Decodable {
        case anyone, hook, token
    }

    public var prefix: String
    public var publish: Publish
    /// Nil: `anyone`, or `hook` when `hooks.subscribe` is set (a configured hook keeps being asked).
    public var subscribe: Subscribe?
    /// Messages kept per channel; nil: `history.size`.
    public var historySize: Int?
    /// Seconds a message is kept; nil: `history.ttl_s`.
    public var historyTTLS: Double?
    /// User `u` may subscribe (and publish) to `<prefix>u` only.
    public var userLimited: Bool
    /// Who is subscribed is kept (the `presence` header, `GET /presence`).
    public var presence: Bool
    /// Subscribers get `join` and `leave` (needs `presence`).
    public var joinLeave: Bool
    /// Seconds a user's last connection may be gone before `leave` goes out (a reload is not a leave).
    public var leaveGraceS: Double

    public init(
        prefix: String, publish: Publish = .anyone, subscribe: Subscribe? = nil, historySize: Int? = nil, historyTTLS: Double? = nil,
        userLimited: Bool = false, presence: Bool = false, joinLeave: Bool = false, leaveGraceS: Double = 5
    ) {
        self.prefix = prefix
        self.publish = publish
        self.subscribe = subscribe
        self.historySize = historySize
        self.historyTTLS = historyTTLS
        self.userLimited = userLimited
        self.presence = presence
        self.joinLeave = joinLeave
        self.leaveGraceS = leaveGraceS
    }
}

extension ChannelOptionsConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case prefix, publish, subscribe
        case historySize = "history_size"
        case historyTTLS = "history_ttl_s"
        case userLimited = "user_limited"
        case presence
        case joinLeave = "join_leave"
        case leaveGraceS = "leave_grace_s"
    }

    static let schema = ConfigSchema.section(CodingKeys.self)

    /// Decodes one entry; `prefix` is required, the options default as documented.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            prefix: try c.decode(String.self, forKey: .prefix),
            publish: try Self.decodeChoice(Publish.self, c, .publish) ?? .anyone,
            subscribe: try Self.decodeChoice(Subscribe.self, c, .subscribe),
            historySize: try c.decodeIfPresent(Int.self, forKey: .historySize),
            historyTTLS: try c.decodeIfPresent(Double.self, forKey: .historyTTLS),
            userLimited: try c.decodeIfPresent(Bool.self, forKey: .userLimited) ?? false,
            presence: try c.decodeIfPresent(Bool.self, forKey: .presence) ?? false,
            joinLeave: try c.decodeIfPresent(Bool.self, forKey: .joinLeave) ?? false,
            leaveGraceS: try c.decodeIfPresent(Double.self, forKey: .leaveGraceS) ?? 5
        )
    }

    /// A choice by name, listing the valid names on failure.
    private static func decodeChoice<T: RawRepresentable & CaseIterable>(
        _ type: T.Type, _ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys
    ) throws -> T? where T.RawValue == String {
        guard let name = try c.decodeIfPresent(String.self, forKey: key) else { return nil }
        guard let value = T(rawValue: name) else {
            let names = T.allCases.map(\.rawValue).joined(separator: "|")
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "\"\(name)\" is not one of \(names)")
        }
        return value
    }
}
