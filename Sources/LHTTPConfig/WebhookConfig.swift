/// The `webhook:` section: how the gateway calls the app's webhooks.
public struct WebhookConfig: Sendable, Equatable {
    /// HMAC-SHA256 key for `X-LHTTP-Signature`; empty sends no signature.
    public var secret: String
    /// Default timeout of a webhook call, in milliseconds (a route may set its own).
    public var timeoutMs: Int
    /// Webhook calls running at once across the node (size it to the backend's worker pool).
    public var maxInFlight: Int
    /// Events of one connection waiting behind its call in flight; beyond, an error reply 503.
    public var maxQueuedPerConnection: Int
    /// Bytes of the webhook calls waiting across the node (URL, headers and body of each); beyond, the call
    /// fails with error reply 503.
    public var maxQueuedBytes: Int

    public init(
        secret: String = "",
        timeoutMs: Int = 3000,
        maxInFlight: Int = 64,
        maxQueuedPerConnection: Int = 64,
        maxQueuedBytes: Int = 16_777_216
    ) {
        self.secret = secret
        self.timeoutMs = timeoutMs
        self.maxInFlight = maxInFlight
        self.maxQueuedPerConnection = maxQueuedPerConnection
        self.maxQueuedBytes = maxQueuedBytes
    }
}

extension WebhookConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case secret
        case timeoutMs = "timeout_ms"
        case maxInFlight = "max_in_flight"
        case maxQueuedPerConnection = "max_queued_per_connection"
        case maxQueuedBytes = "max_queued_bytes"
    }

    static let schema = ConfigSchema.section(CodingKeys.self)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = WebhookConfig()
        self.init(
            secret: try c.decodeIfPresent(String.self, forKey: .secret) ?? d.secret,
            timeoutMs: try c.decodeIfPresent(Int.self, forKey: .timeoutMs) ?? d.timeoutMs,
            maxInFlight: try c.decodeIfPresent(Int.self, forKey: .maxInFlight) ?? d.maxInFlight,
            maxQueuedPerConnection: try c.decodeIfPresent(Int.self, forKey: .maxQueuedPerConnection) ?? d.maxQueuedPerConnection,
            maxQueuedBytes: try c.decodeIfPresent(Int.self, forKey: .maxQueuedBytes) ?? d.maxQueuedBytes
        )
    }
}

/// The `hooks:` section: webhooks for connection events (each optional; empty = not called).
public struct HooksConfig: Sendable, Equatable {
    public var connect: String
    public var subscribe: String
    public var disconnect: String
    /// Told when a channel with presence is occupied or vacated, and when a member is added or removed.
    public var presence: String

    public init(connect: String = "", subscribe: String = "", disconnect: String = "", presence: String = "") {
        self.presence = presence
        self.connect = connect
        self.subscribe = subscribe
        self.disconnect = disconnect
    }
}

extension HooksConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case connect, subscribe, disconnect, presence
    }

    static let schema = ConfigSchema.section(CodingKeys.self)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            connect: try c.decodeIfPresent(String.self, forKey: .connect) ?? "",
            subscribe: try c.decodeIfPresent(String.self, forKey: .subscribe) ?? "",
            disconnect: try c.decodeIfPresent(String.self, forKey: .disconnect) ?? "",
            presence: try c.decodeIfPresent(String.self, forKey: .presence) ?? ""
        )
    }
}

/// One entry of `routes:` — the webhook a command goes to.
public struct RouteConfig: Sendable, Equatable {
    public var url: String
    /// Overrides `webhook.timeout_ms` for this route.
    public var timeoutMs: Int?

    public init(url: String, timeoutMs: Int? = nil) {
        self.url = url
        self.timeoutMs = timeoutMs
    }
}

extension RouteConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case url
        case timeoutMs = "timeout_ms"
    }

    static let schema = ConfigSchema.section(CodingKeys.self)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(url: try c.decode(String.self, forKey: .url), timeoutMs: try c.decodeIfPresent(Int.self, forKey: .timeoutMs))
    }
}
