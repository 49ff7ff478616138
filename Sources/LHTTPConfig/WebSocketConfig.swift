/// The `websocket:` section: where upgrades are accepted, from which origins, and the keep-alive.
public struct WebSocketConfig: Sendable, Equatable {
    /// Request paths that accept a websocket upgrade.
    public var paths: [String]
    /// Browser origins allowed to open a websocket (`https://app.example.com`). Empty: only the request's
    /// own host (the `Origin`'s host:port equals the `Host` header). `["*"]`: any origin. A request without
    /// an `Origin` header is not from a browser and is always allowed (authenticate it in the connect hook).
    public var allowedOrigins: [String]
    /// Seconds between the server's pings on an otherwise quiet connection.
    public var pingIntervalS: Double
    /// Seconds without receiving anything (a message, a pong) after which a connection is closed (4009).
    public var idleTimeoutS: Double
    /// Seconds the closing handshake may take after the server's close frame (or its answer to the
    /// client's) before the connection is reset (a TCP RST frees what the kernel still holds for it).
    public var closeTimeoutS: Double
    /// Microseconds a delivery to a busy connection may wait to go out with the next ones, in one write
    /// (0...1000). A connection is busy when it was last written to less than this long ago; a message to
    /// a quiet connection goes out at the end of the loop tick, as with 0. 0: coalesce within a tick only.
    public var writeCoalescingUs: Int

    /// Creates the section with the documented defaults.
    public init(
        paths: [String] = ["/", "/ws", "/echo"],
        allowedOrigins: [String] = [],
        pingIntervalS: Double = 30,
        idleTimeoutS: Double = 75,
        closeTimeoutS: Double = 3,
        writeCoalescingUs: Int = 1000
    ) {
        self.writeCoalescingUs = writeCoalescingUs
        self.closeTimeoutS = closeTimeoutS
        self.paths = paths
        self.allowedOrigins = allowedOrigins
        self.pingIntervalS = pingIntervalS
        self.idleTimeoutS = idleTimeoutS
    }
}

extension WebSocketConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case paths
        case allowedOrigins = "allowed_origins"
        case pingIntervalS = "ping_interval_s"
        case idleTimeoutS = "idle_timeout_s"
        case closeTimeoutS = "close_timeout_s"
        case writeCoalescingUs = "write_coalescing_us"
    }

    static let schema = ConfigSchema.section(CodingKeys.self)

    /// Decodes the section; missing or null keys keep their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = WebSocketConfig()
        self.init(
            paths: try c.decodeIfPresent([String].self, forKey: .paths) ?? d.paths,
            allowedOrigins: try c.decodeIfPresent([String].self, forKey: .allowedOrigins) ?? d.allowedOrigins,
            pingIntervalS: try c.decodeIfPresent(Double.self, forKey: .pingIntervalS) ?? d.pingIntervalS,
            idleTimeoutS: try c.decodeIfPresent(Double.self, forKey: .idleTimeoutS) ?? d.idleTimeoutS,
            closeTimeoutS: try c.decodeIfPresent(Double.self, forKey: .closeTimeoutS) ?? d.closeTimeoutS,
            writeCoalescingUs: try c.decodeIfPresent(Int.self, forKey: .writeCoalescingUs) ?? d.writeCoalescingUs
        )
    }
}
