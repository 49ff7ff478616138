/// One entry of the `channels:` list: options for every channel whose name starts with `prefix` (the
/// longest matching prefix wins; `""` matches every channel).
///
/// ```yaml
/// channels:
///   - prefix: ""
///     publish: anyone    # anyone | none (only POST /publish and webhook answers publish here)
///     subscribe: anyone  # anyone | hook (the subscribe hook must allow it)
///     history_size: 100  # messages kept (default: history.size)
///     history_ttl_s: 3600  # seconds a message is kept (default: history.ttl_s)
/// ```
public struct ChannelOptionsConfig: Sendable, Equatable {
    /// Who may publish from a websocket.
    public enum Publish: String, Sendable, Equatable, CaseIterable, Decodable {
        case anyone, none
    }

    /// Who may subscribe.
    public enum Subscribe: String, Sendable, Equatable, CaseIterable, Decodable {
        case anyone, hook
    }

    public var prefix: String
    public var publish: Publish
    /// Nil: `anyone`, or `hook` when `hooks.subscribe` is set (a configured hook keeps being asked).
    public var subscribe: Subscribe?
    /// Messages kept per channel; nil: `history.size`.
    public var historySize: Int?
    /// Seconds a message is kept; nil: `history.ttl_s`.
    public var historyTTLS: Double?

    public init(prefix: String, publish: Publish = .anyone, subscribe: Subscribe? = nil, historySize: Int? = nil, historyTTLS: Double? = nil) {
        self.prefix = prefix
        self.publish = publish
        self.subscribe = subscribe
        self.historySize = historySize
        self.historyTTLS = historyTTLS
    }
}

extension ChannelOptionsConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case prefix, publish, subscribe
        case historySize = "history_size"
        case historyTTLS = "history_ttl_s"
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
            historyTTLS: try c.decodeIfPresent(Double.self, forKey: .historyTTLS)
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
