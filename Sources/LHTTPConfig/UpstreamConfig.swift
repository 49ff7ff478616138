/// The `upstream:` section: where the `upstream` header may send messages, and the libcurl client's bounds.
public struct UpstreamConfig: Sendable, Equatable {
    /// URL prefixes the `upstream` header may reach; empty refuses the header (403).
    public var allow: [String]
    /// Whole-request timeout, in milliseconds.
    public var timeoutMs: Int
    /// Connect timeout, in milliseconds.
    public var connectTimeoutMs: Int
    /// Calls running at once across the node; more wait in a queue.
    public var maxInFlight: Int
    /// Calls waiting; beyond, the client gets status 503.
    public var maxQueued: Int
    /// Bytes of the calls waiting (URL, headers and body of each); beyond, the client gets status 503.
    public var maxQueuedBytes: Int
    /// Calls of one connection in flight (queued or running); at the cap, reading from that connection
    /// pauses until one finishes (its messages wait, in order).
    public var maxInFlightPerConnection: Int
    /// Bytes of one connection's messages waiting while its reading is paused (what was already read);
    /// beyond, that client gets status 429.
    public var maxQueuedBytesPerConnection: Int
    /// Largest backend response read, in bytes.
    public var maxResponseBytes: Int

    /// Creates the section with the documented defaults.
    public init(
        allow: [String] = [],
        timeoutMs: Int = 5000,
        connectTimeoutMs: Int = 1000,
        maxInFlight: Int = 256,
        maxQueued: Int = 10_000,
        maxResponseBytes: Int = 1_048_576,
        maxInFlightPerConnection: Int = 64,
        maxQueuedBytes: Int = 16_777_216,
        maxQueuedBytesPerConnection: Int = 4_194_304
    ) {
        self.maxQueuedBytesPerConnection = maxQueuedBytesPerConnection
        self.maxInFlightPerConnection = maxInFlightPerConnection
        self.allow = allow
        self.timeoutMs = timeoutMs
        self.connectTimeoutMs = connectTimeoutMs
        self.maxInFlight = maxInFlight
        self.maxQueued = maxQueued
        self.maxQueuedBytes = maxQueuedBytes
        self.maxResponseBytes = maxResponseBytes
    }
}

extension UpstreamConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case allow
        case timeoutMs = "timeout_ms"
        case connectTimeoutMs = "connect_timeout_ms"
        case maxInFlight = "max_in_flight"
        case maxQueued = "max_queued"
        case maxQueuedBytes = "max_queued_bytes"
        case maxResponseBytes = "max_response_bytes"
        case maxInFlightPerConnection = "max_in_flight_per_connection"
        case maxQueuedBytesPerConnection = "max_queued_bytes_per_connection"
    }

    static let schema = ConfigSchema.section(CodingKeys.self)

    /// Decodes the section; missing or null keys keep their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = UpstreamConfig()
        self.init(
            allow: try c.decodeIfPresent([String].self, forKey: .allow) ?? d.allow,
            timeoutMs: try c.decodeIfPresent(Int.self, forKey: .timeoutMs) ?? d.timeoutMs,
            connectTimeoutMs: try c.decodeIfPresent(Int.self, forKey: .connectTimeoutMs) ?? d.connectTimeoutMs,
            maxInFlight: try c.decodeIfPresent(Int.self, forKey: .maxInFlight) ?? d.maxInFlight,
            maxQueued: try c.decodeIfPresent(Int.self, forKey: .maxQueued) ?? d.maxQueued,
            maxResponseBytes: try c.decodeIfPresent(Int.self, forKey: .maxResponseBytes) ?? d.maxResponseBytes,
            maxInFlightPerConnection: try c.decodeIfPresent(Int.self, forKey: .maxInFlightPerConnection) ?? d.maxInFlightPerConnection,
            maxQueuedBytes: try c.decodeIfPresent(Int.self, forKey: .maxQueuedBytes) ?? d.maxQueuedBytes,
            maxQueuedBytesPerConnection: try c.decodeIfPresent(Int.self, forKey: .maxQueuedBytesPerConnection) ?? d.maxQueuedBytesPerConnection
        )
    }
}
