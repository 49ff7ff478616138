/// The `metrics:` section: the Prometheus endpoint.
public struct MetricsConfig: Sendable, Equatable {
    /// Path of the Prometheus text endpoint; empty turns it off.
    public var path: String
    /// When set, a scrape must carry `Authorization: Bearer <token>`.
    public var token: String

    public init(path: String = "/metrics", token: String = "") {
        self.path = path
        self.token = token
    }
}

extension MetricsConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case path, token
    }

    static let schema = ConfigSchema.section(CodingKeys.self)

    /// Decodes the section; missing or null keys keep their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = MetricsConfig()
        self.init(
            path: try c.decodeIfPresent(String.self, forKey: .path) ?? d.path,
            token: try c.decodeIfPresent(String.self, forKey: .token) ?? d.token
        )
    }
}
