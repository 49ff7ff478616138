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

    /// Creates the section with the documented defaults.
    public init(
        paths: [String] = ["/", "/ws", "/echo"],
        allowedOrigins: [String] = [],
        pingIntervalS: Double = 30,
        idleTimeoutS: Double = 75,
        closeTimeoutS: Double = 3
    ) {
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
            closeTimeoutS: try c.decodeIfPresent(Double.self, forKey: .closeTimeoutS) ?? d.closeTimeoutS
        )
    }
}
