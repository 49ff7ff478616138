/// The `http:` section: bounds on plain HTTP requests (publish, health, metrics, static files, upgrades).
///
/// Pipelined requests need no bound of their own: NIO's pipelining handler serves one request at a time
/// per connection and stops reading while requests wait.
public struct HTTPConfig: Sendable, Equatable {
    /// Seconds a request may take from its first byte to its last (head and body); a client that sends
    /// slower (slow-loris) gets 408 and is disconnected.
    public var requestTimeoutS: Double
    /// Seconds an idle keep-alive connection is kept open.
    public var keepaliveTimeoutS: Double
    /// Largest request body on any path, in bytes (413 and close beyond). Publish bodies are also bounded
    /// by `limits.max_message_bytes`.
    public var maxBodyBytes: Int

    /// Creates the section with the documented defaults.
    public init(requestTimeoutS: Double = 10, keepaliveTimeoutS: Double = 60, maxBodyBytes: Int = 1_048_576) {
        self.requestTimeoutS = requestTimeoutS
        self.keepaliveTimeoutS = keepaliveTimeoutS
        self.maxBodyBytes = maxBodyBytes
    }
}

extension HTTPConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case requestTimeoutS = "request_timeout_s"
        case keepaliveTimeoutS = "keepalive_timeout_s"
        case maxBodyBytes = "max_body_bytes"
    }

    static let schema = ConfigSchema.section(CodingKeys.self)

    /// Decodes the section; missing or null keys keep their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = HTTPConfig()
        self.init(
            requestTimeoutS: try c.decodeIfPresent(Double.self, forKey: .requestTimeoutS) ?? d.requestTimeoutS,
            keepaliveTimeoutS: try c.decodeIfPresent(Double.self, forKey: .keepaliveTimeoutS) ?? d.keepaliveTimeoutS,
            maxBodyBytes: try c.decodeIfPresent(Int.self, forKey: .maxBodyBytes) ?? d.maxBodyBytes
        )
    }
}
