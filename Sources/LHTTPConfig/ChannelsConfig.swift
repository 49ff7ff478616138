/// One entry of the `channels:` list: options for every channel whose name starts with `prefix` (the
/// longest matching prefix wins; `""` matches every channel).
///
/// ```yaml
/// channels:
///   - prefix: ""
///     publish: anyone    # anyone | none (only POST /publish and webhook answers publish here)
///     subscribe: anyone  # anyone | hook (the subscribe hook must allow it)
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

    public init(prefix: String, publish: Publish = .anyone, subscribe: Subscribe? = nil) {
        self.prefix = prefix
        self.publish = publish
        self.subscribe = subscribe
    }
}

extension ChannelOptionsConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case prefix, publish, subscribe
    }

    static let schema = ConfigSchema.section(CodingKeys.self)

    /// Decodes one entry; `prefix` is required, the options default as documented.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            prefix: try c.decode(String.self, forKey: .prefix),
            publish: try Self.decodeChoice(Publish.self, c, .publish) ?? .anyone,
            subscribe: try Self.decodeChoice(Subscribe.self, c, .subscribe)
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
