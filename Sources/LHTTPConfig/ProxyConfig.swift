/// The `proxy:` section: every HTTP request lhttpd does not serve itself goes to the app's backend.
///
/// Off (today's behaviour: 404) while `backend` is empty and no route is listed.
public struct ProxyConfig: Sendable, Equatable {
    /// The app's base URL (`http://127.0.0.1:9000`, optionally with a base path); empty: no default backend.
    public var backend: String
    /// Backends by path prefix; the longest matching prefix wins, `backend` takes what none matches.
    public var routes: [ProxyRouteConfig]
    /// Milliseconds to connect to a backend (then 504).
    public var connectTimeoutMs: Int
    /// Milliseconds from the request's last byte to the backend's response head (then 504).
    public var firstByteTimeoutMs: Int
    /// Milliseconds without a byte moving either way (request body, response body, the client reading it);
    /// then the exchange is cut: 504 before the response head, the connection closed after it.
    public var idleTimeoutMs: Int
    /// Largest proxied request body (413 beyond: at once for a `Content-Length`, mid-stream for chunked).
    public var maxRequestBodyBytes: Int
    /// Addresses (CIDR or single IPs) of proxies in front of lhttpd: only their `X-Forwarded-For` and
    /// `Forwarded` are kept and appended to; from anyone else they are replaced.
    public var trustedProxies: [String]
    /// A websocket upgrade on a path that is not one of `websocket.paths` is tunnelled to the backend byte
    /// for byte (false: refused with 404).
    public var websocket: Bool
    /// Proxied requests in flight at once across the node; beyond, 503.
    public var maxInFlight: Int

    /// Creates the section with the documented defaults (off).
    public init(
        backend: String = "",
        routes: [ProxyRouteConfig] = [],
        connectTimeoutMs: Int = 1000,
        firstByteTimeoutMs: Int = 30_000,
        idleTimeoutMs: Int = 60_000,
        maxRequestBodyBytes: Int = 104_857_600,
        trustedProxies: [String] = [],
        websocket: Bool = false,
        maxInFlight: Int = 4096
    ) {
        self.backend = backend
        self.routes = routes
        self.connectTimeoutMs = connectTimeoutMs
        self.firstByteTimeoutMs = firstByteTimeoutMs
        self.idleTimeoutMs = idleTimeoutMs
        self.maxRequestBodyBytes = maxRequestBodyBytes
        self.trustedProxies = trustedProxies
        self.websocket = websocket
        self.maxInFlight = maxInFlight
    }

    /// Whether any request can be proxied.
    public var isEnabled: Bool { !self.backend.isEmpty || !self.routes.isEmpty }
}

/// One `proxy.routes` entry: requests whose path starts with `prefix` go to `backend`.
public struct ProxyRouteConfig: Sendable, Equatable {
    /// A path prefix, starting with `/` (`/api/`).
    public var prefix: String
    /// The backend's base URL.
    public var backend: String
    /// The prefix is cut from the path before it is sent (`/api/users` → `/users`).
    public var stripPrefix: Bool

    public init(prefix: String, backend: String, stripPrefix: Bool = false) {
        self.prefix = prefix
        self.backend = backend
        self.stripPrefix = stripPrefix
    }
}

extension ProxyConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case backend, routes
        case connectTimeoutMs = "connect_timeout_ms"
        case firstByteTimeoutMs = "first_byte_timeout_ms"
        case idleTimeoutMs = "idle_timeout_ms"
        case maxRequestBodyBytes = "max_request_body_bytes"
        case trustedProxies = "trusted_proxies"
        case websocket
        case maxInFlight = "max_in_flight"
    }

    static let schema = ConfigSchema.section(CodingKeys.self, nested: [.routes: .list(ProxyRouteConfig.schema)])

    /// Decodes the section; missing or null keys keep their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ProxyConfig()
        self.init(
            backend: try c.decodeIfPresent(String.self, forKey: .backend) ?? d.backend,
            routes: try c.decodeIfPresent([ProxyRouteConfig].self, forKey: .routes) ?? d.routes,
            connectTimeoutMs: try c.decodeIfPresent(Int.self, forKey: .connectTimeoutMs) ?? d.connectTimeoutMs,
            firstByteTimeoutMs: try c.decodeIfPresent(Int.self, forKey: .firstByteTimeoutMs) ?? d.firstByteTimeoutMs,
            idleTimeoutMs: try c.decodeIfPresent(Int.self, forKey: .idleTimeoutMs) ?? d.idleTimeoutMs,
            maxRequestBodyBytes: try c.decodeIfPresent(Int.self, forKey: .maxRequestBodyBytes) ?? d.maxRequestBodyBytes,
            trustedProxies: try c.decodeIfPresent([String].self, forKey: .trustedProxies) ?? d.trustedProxies,
            websocket: try c.decodeIfPresent(Bool.self, forKey: .websocket) ?? d.websocket,
            maxInFlight: try c.decodeIfPresent(Int.self, forKey: .maxInFlight) ?? d.maxInFlight
        )
    }
}

extension ProxyRouteConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case prefix, backend
        case stripPrefix = "strip_prefix"
    }

    static let schema = ConfigSchema.section(CodingKeys.self)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            prefix: try c.decode(String.self, forKey: .prefix),
            backend: try c.decode(String.self, forKey: .backend),
            stripPrefix: try c.decodeIfPresent(Bool.self, forKey: .stripPrefix) ?? false
        )
    }
}
