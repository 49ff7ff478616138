/// The `history:` section: what every channel keeps by default (the `channels:` list's `history_size` and
/// `history_ttl_s` override it per prefix), and the node-wide bounds of the memory store.
///
/// ```yaml
/// history:
///   size: 0              # messages kept per channel; 0 = no history (the default)
///   ttl_s: 0             # seconds a message is kept; 0 = until size or max_bytes pushes it out
///   max_bytes: 67108864  # all history on this node, oldest dropped first
///   meta_ttl_s: 3600     # an empty channel's position (epoch, offset) is kept this long after its last use
/// ```
public struct HistoryConfig: Sendable, Equatable {
    /// The largest `size` (and `history_size`) accepted: a recovery replays up to this many messages.
    public static let maxSize = 100_000

    public var size: Int
    public var ttlS: Double
    public var maxBytes: Int
    public var metaTTLS: Double

    public init(size: Int = 0, ttlS: Double = 0, maxBytes: Int = 64 << 20, metaTTLS: Double = 3600) {
        self.size = size
        self.ttlS = ttlS
        self.maxBytes = maxBytes
        self.metaTTLS = metaTTLS
    }
}

extension HistoryConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case size
        case ttlS = "ttl_s"
        case maxBytes = "max_bytes"
        case metaTTLS = "meta_ttl_s"
    }

    static let schema = ConfigSchema.section(CodingKeys.self)

    /// Decodes the section; missing or null keys keep their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = HistoryConfig()
        self.init(
            size: try c.decodeIfPresent(Int.self, forKey: .size) ?? d.size,
            ttlS: try c.decodeIfPresent(Double.self, forKey: .ttlS) ?? d.ttlS,
            maxBytes: try c.decodeIfPresent(Int.self, forKey: .maxBytes) ?? d.maxBytes,
            metaTTLS: try c.decodeIfPresent(Double.self, forKey: .metaTTLS) ?? d.metaTTLS
        )
    }
}
