/// The whole gateway configuration, as read from `lhttpd.yaml`.
///
/// Every field has a default, so `GatewayConfig()` and an empty file mean the same thing.
/// The section types below are plain data shared with the server and protocol modules.
///
/// Decoding is hand-written (`decodeIfPresent ?? default`) so any key may be left out;
/// the `CodingKeys` of each type are also its schema for the unknown-key check
/// (see `ConfigSchema`), so a key is declared exactly once.
public struct GatewayConfig: Sendable, Equatable {
    /// Address the HTTP/websocket listener binds to.
    public var listen: ListenAddress
    /// Event-loop threads; 0 means one per core (cgroup limits respected, CPU affinity not).
    public var threads: Int
    /// Websocket endpoint settings.
    public var websocket: WebSocketConfig
    /// Bounds on plain HTTP requests.
    public var http: HTTPConfig
    /// The Prometheus endpoint.
    public var metrics: MetricsConfig
    /// Seconds a graceful stop (SIGTERM, SIGINT) waits for calls in flight and disconnect hooks.
    public var shutdownTimeoutS: Double
    /// Directory served for plain GET requests; empty serves nothing.
    public var staticDir: String
    /// HTTP publish endpoint settings.
    public var publish: PublishConfig
    /// Size and count limits for the wire protocol.
    public var limits: LimitsConfig
    /// Where the `upstream` header may forward messages, and the HTTP client's bounds.
    public var upstream: UpstreamConfig
    /// How webhooks are called.
    public var webhook: WebhookConfig
    /// Webhooks for connect, subscribe and disconnect events.
    public var hooks: HooksConfig
    /// Command → webhook; `"*"` matches any command without its own route.
    public var routes: [String: RouteConfig]
    /// Several nodes sharing channels through NATS; empty `nats` means one node.
    public var cluster: ClusterConfig
    /// Per-prefix channel options (who may publish and subscribe); the longest matching prefix wins.
    public var channels: [ChannelOptionsConfig]
    /// What channels keep across reconnects (defaults; per prefix in `channels`).
    public var history: HistoryConfig
    /// Logging settings.
    public var log: LogConfig
    /// Signed connection tokens.
    public var auth: AuthConfig
    /// The app's own HTTP, proxied for every request lhttpd does not serve itself.
    public var proxy: ProxyConfig
    /// https and wss on the listener.
    public var tls: TLSConfig

    /// Creates a config; every argument defaults to the documented default.
    public init(
        listen: ListenAddress = ListenAddress(host: "127.0.0.1", port: 8081),
        threads: Int = 0,
        websocket: WebSocketConfig = WebSocketConfig(),
        http: HTTPConfig = HTTPConfig(),
        metrics: MetricsConfig = MetricsConfig(),
        shutdownTimeoutS: Double = 10,
        staticDir: String = "",
        publish: PublishConfig = PublishConfig(),
        limits: LimitsConfig = LimitsConfig(),
        upstream: UpstreamConfig = UpstreamConfig(),
        webhook: WebhookConfig = WebhookConfig(),
        hooks: HooksConfig = HooksConfig(),
        routes: [String: RouteConfig] = [:],
        cluster: ClusterConfig = ClusterConfig(),
        channels: [ChannelOptionsConfig] = [],
        history: HistoryConfig = HistoryConfig(),
        log: LogConfig = LogConfig(),
        auth: AuthConfig = AuthConfig(),
        proxy: ProxyConfig = ProxyConfig(),
        tls: TLSConfig = TLSConfig()
    ) {
        self.auth = auth
        self.proxy = proxy
        self.tls = tls
        self.channels = channels
        self.history = history
        self.listen = listen
        self.threads = threads
        self.websocket = websocket
        self.http = http
        self.metrics = metrics
        self.shutdownTimeoutS = shutdownTimeoutS
        self.staticDir = staticDir
        self.publish = publish
        self.limits = limits
        self.upstream = upstream
        self.webhook = webhook
        self.hooks = hooks
        self.routes = routes
        self.cluster = cluster
        self.log = log
    }
}

extension GatewayConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case listen, threads, websocket, http, metrics
        case shutdownTimeoutS = "shutdown_timeout_s"
        case staticDir = "static_dir"
        case publish, limits, upstream, webhook, hooks, routes, cluster, channels, history, log, auth, proxy, tls
    }

    static let schema = ConfigSchema.section(CodingKeys.self, nested: [
        .websocket: WebSocketConfig.schema,
        .http: HTTPConfig.schema,
        .metrics: MetricsConfig.schema,
        .publish: PublishConfig.schema,
        .limits: LimitsConfig.schema,
        .upstream: UpstreamConfig.schema,
        .webhook: WebhookConfig.schema,
        .hooks: HooksConfig.schema,
        .routes: .map(RouteConfig.schema),
        .cluster: ClusterConfig.schema,
        .channels: .list(ChannelOptionsConfig.schema),
        .history: HistoryConfig.schema,
        .log: LogConfig.schema,
        .auth: AuthConfig.schema,
        .proxy: ProxyConfig.schema,
        .tls: TLSConfig.schema,
    ])

    /// Decodes a YAML mapping; missing or null keys keep their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = GatewayConfig()
        self.init(
            listen: try c.decodeIfPresent(ListenAddress.self, forKey: .listen) ?? d.listen,
            threads: try c.decodeIfPresent(Int.self, forKey: .threads) ?? d.threads,
            websocket: try c.decodeIfPresent(WebSocketConfig.self, forKey: .websocket) ?? d.websocket,
            http: try c.decodeIfPresent(HTTPConfig.self, forKey: .http) ?? d.http,
            metrics: try c.decodeIfPresent(MetricsConfig.self, forKey: .metrics) ?? d.metrics,
            shutdownTimeoutS: try c.decodeIfPresent(Double.self, forKey: .shutdownTimeoutS) ?? d.shutdownTimeoutS,
            staticDir: try c.decodeIfPresent(String.self, forKey: .staticDir) ?? d.staticDir,
            publish: try c.decodeIfPresent(PublishConfig.self, forKey: .publish) ?? d.publish,
            limits: try c.decodeIfPresent(LimitsConfig.self, forKey: .limits) ?? d.limits,
            upstream: try c.decodeIfPresent(UpstreamConfig.self, forKey: .upstream) ?? d.upstream,
            webhook: try c.decodeIfPresent(WebhookConfig.self, forKey: .webhook) ?? d.webhook,
            hooks: try c.decodeIfPresent(HooksConfig.self, forKey: .hooks) ?? d.hooks,
            routes: try c.decodeIfPresent([String: RouteConfig].self, forKey: .routes) ?? d.routes,
            cluster: try c.decodeIfPresent(ClusterConfig.self, forKey: .cluster) ?? d.cluster,
            channels: try c.decodeIfPresent([ChannelOptionsConfig].self, forKey: .channels) ?? d.channels,
            history: try c.decodeIfPresent(HistoryConfig.self, forKey: .history) ?? d.history,
            log: try c.decodeIfPresent(LogConfig.self, forKey: .log) ?? d.log,
            auth: try c.decodeIfPresent(AuthConfig.self, forKey: .auth) ?? d.auth,
            proxy: try c.decodeIfPresent(ProxyConfig.self, forKey: .proxy) ?? d.proxy,
            tls: try c.decodeIfPresent(TLSConfig.self, forKey: .tls) ?? d.tls
        )
    }
}

// MARK: - publish

/// The `publish:` section: the HTTP endpoint that injects messages into channels.
public struct PublishConfig: Sendable, Equatable {
    /// Path accepting `POST` publishes.
    public var path: String
    /// When non-empty, a publish must carry `Authorization: Bearer <token>`.
    public var token: String
    /// Seconds within which a retried publish with the same `Idempotency-Key` header publishes once.
    public var idempotencyWindowS: Double
    /// Most `Idempotency-Key`s remembered at once (the oldest is forgotten first).
    public var idempotencyMaxKeys: Int

    /// Creates the section; defaults to `/publish` with no token.
    public init(path: String = "/publish", token: String = "", idempotencyWindowS: Double = 300, idempotencyMaxKeys: Int = 10000) {
        self.path = path
        self.token = token
        self.idempotencyWindowS = idempotencyWindowS
        self.idempotencyMaxKeys = idempotencyMaxKeys
    }
}

extension PublishConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case path, token
        case idempotencyWindowS = "idempotency_window_s"
        case idempotencyMaxKeys = "idempotency_max_keys"
    }

    static let schema = ConfigSchema.section(CodingKeys.self)

    /// Decodes the section; missing or null keys keep their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = PublishConfig()
        self.init(
            path: try c.decodeIfPresent(String.self, forKey: .path) ?? d.path,
            token: try c.decodeIfPresent(String.self, forKey: .token) ?? d.token,
            idempotencyWindowS: try c.decodeIfPresent(Double.self, forKey: .idempotencyWindowS) ?? d.idempotencyWindowS,
            idempotencyMaxKeys: try c.decodeIfPresent(Int.self, forKey: .idempotencyMaxKeys) ?? d.idempotencyMaxKeys
        )
    }
}

// MARK: - limits

/// The `limits:` section: bounds the protocol parser enforces on untrusted input.
public struct LimitsConfig: Sendable, Equatable {
    /// Largest accepted message (headers and body), in bytes.
    public var maxMessageBytes: Int
    /// Most header lines in one message.
    public var maxHeaders: Int
    /// Longest single header line, in bytes.
    public var maxHeaderLineBytes: Int
    /// Most channels one message may address.
    public var maxChannelsPerMessage: Int
    /// Longest channel name, in bytes.
    public var maxChannelNameBytes: Int
    /// Most bytes queued for one slow websocket client before it is closed with 4008 (the
    /// high write-buffer watermark of its connection).
    public var maxOutboundBytes: Int
    /// Websocket connections open at once on this node; beyond, the upgrade is answered 503.
    public var maxConnections: Int
    /// Channels one connection may be subscribed to; a subscribe beyond is refused (error reply 429).
    public var maxSubscriptionsPerConnection: Int
    /// Channels with subscribers on this node; a subscribe creating more is refused (error reply 503).
    public var maxChannels: Int
    /// The kernel send buffer of each client socket (`SO_SNDBUF`), part of a connection's memory next to
    /// `max_outbound_bytes`; 0 leaves it to the kernel (autotuned, up to several MiB per socket).
    public var socketSendBufferBytes: Int
    /// Messages one websocket connection may send per second on average (0: no limit); beyond, error
    /// reply 429 and the message is dropped.
    public var maxMessagesPerSecond: Int
    /// Bytes per second one connection may make the node publish on average (a message's size times
    /// the channels it publishes to, at least once; 0: no limit).
    public var maxBytesPerSecond: Int
    /// Messages that may arrive at once after a quiet time.
    public var burstMessages: Int
    /// Bytes that may arrive at once after a quiet time.
    public var burstBytes: Int
    /// Messages refused for the rate in a row after which the connection is closed with 4029 (0: never).
    public var maxRateViolations: Int

    /// Creates the section with the documented defaults.
    public init(
        maxMessageBytes: Int = 1_048_576,
        maxHeaders: Int = 64,
        maxHeaderLineBytes: Int = 8192,
        maxChannelsPerMessage: Int = 64,
        maxChannelNameBytes: Int = 256,
        maxOutboundBytes: Int = 1_048_576,
        maxConnections: Int = 50_000,
        maxSubscriptionsPerConnection: Int = 128,
        maxChannels: Int = 1_000_000,
        socketSendBufferBytes: Int = 262_144,
        maxMessagesPerSecond: Int = 1000,
        maxBytesPerSecond: Int = 8_388_608,
        burstMessages: Int = 2000,
        burstBytes: Int = 16_777_216,
        maxRateViolations: Int = 100
    ) {
        self.maxMessagesPerSecond = maxMessagesPerSecond
        self.maxBytesPerSecond = maxBytesPerSecond
        self.burstMessages = burstMessages
        self.burstBytes = burstBytes
        self.maxRateViolations = maxRateViolations
        self.socketSendBufferBytes = socketSendBufferBytes
        self.maxMessageBytes = maxMessageBytes
        self.maxHeaders = maxHeaders
        self.maxHeaderLineBytes = maxHeaderLineBytes
        self.maxChannelsPerMessage = maxChannelsPerMessage
        self.maxChannelNameBytes = maxChannelNameBytes
        self.maxOutboundBytes = maxOutboundBytes
        self.maxConnections = maxConnections
        self.maxSubscriptionsPerConnection = maxSubscriptionsPerConnection
        self.maxChannels = maxChannels
    }
}

extension LimitsConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case maxMessageBytes = "max_message_bytes"
        case maxHeaders = "max_headers"
        case maxHeaderLineBytes = "max_header_line_bytes"
        case maxChannelsPerMessage = "max_channels_per_message"
        case maxChannelNameBytes = "max_channel_name_bytes"
        case maxOutboundBytes = "max_outbound_bytes"
        case maxConnections = "max_connections"
        case maxSubscriptionsPerConnection = "max_subscriptions_per_connection"
        case maxChannels = "max_channels"
        case socketSendBufferBytes = "socket_send_buffer_bytes"
        case maxMessagesPerSecond = "max_messages_per_second"
        case maxBytesPerSecond = "max_bytes_per_second"
        case burstMessages = "burst_messages"
        case burstBytes = "burst_bytes"
        case maxRateViolations = "max_rate_violations"
    }

    static let schema = ConfigSchema.section(CodingKeys.self)

    /// Decodes the section; missing or null keys keep their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = LimitsConfig()
        self.init(
            maxMessageBytes: try c.decodeIfPresent(Int.self, forKey: .maxMessageBytes) ?? d.maxMessageBytes,
            maxHeaders: try c.decodeIfPresent(Int.self, forKey: .maxHeaders) ?? d.maxHeaders,
            maxHeaderLineBytes: try c.decodeIfPresent(Int.self, forKey: .maxHeaderLineBytes) ?? d.maxHeaderLineBytes,
            maxChannelsPerMessage: try c.decodeIfPresent(Int.self, forKey: .maxChannelsPerMessage)
                ?? d.maxChannelsPerMessage,
            maxChannelNameBytes: try c.decodeIfPresent(Int.self, forKey: .maxChannelNameBytes)
                ?? d.maxChannelNameBytes,
            maxOutboundBytes: try c.decodeIfPresent(Int.self, forKey: .maxOutboundBytes) ?? d.maxOutboundBytes,
            maxConnections: try c.decodeIfPresent(Int.self, forKey: .maxConnections) ?? d.maxConnections,
            maxSubscriptionsPerConnection: try c.decodeIfPresent(Int.self, forKey: .maxSubscriptionsPerConnection)
                ?? d.maxSubscriptionsPerConnection,
            maxChannels: try c.decodeIfPresent(Int.self, forKey: .maxChannels) ?? d.maxChannels,
            socketSendBufferBytes: try c.decodeIfPresent(Int.self, forKey: .socketSendBufferBytes) ?? d.socketSendBufferBytes,
            maxMessagesPerSecond: try c.decodeIfPresent(Int.self, forKey: .maxMessagesPerSecond) ?? d.maxMessagesPerSecond,
            maxBytesPerSecond: try c.decodeIfPresent(Int.self, forKey: .maxBytesPerSecond) ?? d.maxBytesPerSecond,
            burstMessages: try c.decodeIfPresent(Int.self, forKey: .burstMessages) ?? d.burstMessages,
            burstBytes: try c.decodeIfPresent(Int.self, forKey: .burstBytes) ?? d.burstBytes,
            maxRateViolations: try c.decodeIfPresent(Int.self, forKey: .maxRateViolations) ?? d.maxRateViolations
        )
    }
}

// MARK: - log

/// The `log:` section.
public struct LogConfig: Sendable, Equatable {
    /// Least severe level that is logged.
    public var level: LogLevel
    /// `text` (one human-readable line per event) or `json` (one JSON object per line, for log shippers).
    public var format: LogFormat

    /// Creates the section; defaults to `info` and `text`.
    public init(level: LogLevel = .info, format: LogFormat = .text) {
        self.level = level
        self.format = format
    }
}

extension LogConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case level, format
    }

    static let schema = ConfigSchema.section(CodingKeys.self)

    /// Decodes the section; missing or null keys keep their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = LogConfig()
        self.init(
            level: try c.decodeIfPresent(LogLevel.self, forKey: .level) ?? d.level,
            format: try c.decodeIfPresent(LogFormat.self, forKey: .format) ?? d.format
        )
    }
}

/// Log severities, least to most severe; the names match swift-log's `Logger.Level`.
public enum LogLevel: String, Sendable, Equatable, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}

extension LogLevel: Decodable {
    /// Decodes a level name, listing the valid names on failure instead of Codable's generic message.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        guard let level = LogLevel(rawValue: name) else {
            let names = LogLevel.allCases.map(\.rawValue).joined(separator: "|")
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "\"\(name)\" is not a log level (expected \(names))")
        }
        self = level
    }
}

/// How log lines are written.
public enum LogFormat: String, Sendable, Equatable, CaseIterable {
    case text, json
}

extension LogFormat: Decodable {
    /// Decodes a format name, listing the valid names on failure.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        guard let format = LogFormat(rawValue: name) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\"\(name)\" is not a log format (expected text|json)")
        }
        self = format
    }
}
