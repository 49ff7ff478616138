/// The `cluster:` section: several lhttpd nodes sharing channels through NATS.
///
/// No server in `nats` (the default) means one node with the in-memory broker.
public struct ClusterConfig: Sendable, Equatable {
    /// NATS server URLs (`nats://[user:password@|token@]host[:port]`); tried in turn when one is down.
    public var nats: [String]
    /// First subject tokens of every channel subject (`<prefix>.<encoded channel>`).
    public var subjectPrefix: String
    /// This node's name in message envelopes and logs; empty picks a random one at start.
    public var nodeID: String
    /// Publications kept while NATS is unreachable (or not reading), in bytes; beyond, they are dropped and counted.
    public var maxPendingBytes: Int
    /// First reconnect delay, in milliseconds; it doubles per failed attempt (with jitter) up to `reconnectMaxMs`.
    public var reconnectMinMs: Int
    /// Longest reconnect delay, in milliseconds.
    public var reconnectMaxMs: Int
    /// TCP connect plus handshake timeout, in milliseconds.
    public var connectTimeoutMs: Int
    /// Interval of the keep-alive PING; two unanswered PINGs close the link and reconnect.
    public var pingIntervalMs: Int
    /// Shared by the nodes: every envelope is signed with it (HMAC-SHA256) and unsigned or badly signed
    /// ones are dropped. Empty (the default): envelopes are not signed and not checked.
    public var secret: String
    /// Largest difference between a signed envelope's timestamp and this node's clock, in milliseconds,
    /// either way; older or newer ones are dropped (bounds replays). 0: no check.
    public var maxEnvelopeAgeMs: Int
    /// Most bytes one publication may send to NATS: its envelope times the number of channel subjects it
    /// goes on. A larger publication is refused (413) before anything is delivered. 0: no cap.
    public var maxFanoutBytes: Int
    /// Where history lives with `nats` set: `jetstream` (one stream every node shares; the default) or
    /// `memory` (each node its own, of what it hears, started anew whenever the node may have missed some).
    public var history: HistoryStore
    /// The JetStream stream of `history: jetstream`.
    public var jetstream: JetStreamConfig
    /// How often a node tells the others it is alive (presence); a node not heard from for three times this
    /// is gone, and its members with it.
    public var presenceHeartbeatMs: Int

    /// `cluster.history`.
    public enum HistoryStore: String, Sendable, Equatable, Decodable, CaseIterable {
        case jetstream
        case memory
    }

    /// `cluster.jetstream: {stream, replicas, storage, timeout_ms}`.
    public struct JetStreamConfig: Sendable, Equatable, Decodable {
        /// The stream's name (letters, digits, `_`, `-`).
        public var stream: String
        /// Copies JetStream keeps (1 to 5; more than 1 needs a JetStream cluster).
        public var replicas: Int
        /// `file` (survives a nats-server restart) or `memory`.
        public var storage: String
        /// How long a store or read may take before it counts as unreachable, in milliseconds.
        public var timeoutMs: Int

        public init(stream: String = "LHTTP", replicas: Int = 1, storage: String = "file", timeoutMs: Int = 2000) {
            self.stream = stream
            self.replicas = replicas
            self.storage = storage
            self.timeoutMs = timeoutMs
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case stream, replicas, storage
            case timeoutMs = "timeout_ms"
        }

        static let schema = ConfigSchema.section(CodingKeys.self)

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = JetStreamConfig()
            self.init(
                stream: try c.decodeIfPresent(String.self, forKey: .stream) ?? d.stream,
                replicas: try c.decodeIfPresent(Int.self, forKey: .replicas) ?? d.replicas,
                storage: try c.decodeIfPresent(String.self, forKey: .storage) ?? d.storage,
                timeoutMs: try c.decodeIfPresent(Int.self, forKey: .timeoutMs) ?? d.timeoutMs
            )
        }
    }

    /// Creates the section with the documented defaults.
    public init(
        nats: [String] = [],
        subjectPrefix: String = "lhttp",
        nodeID: String = "",
        maxPendingBytes: Int = 8_388_608,
        reconnectMinMs: Int = 100,
        reconnectMaxMs: Int = 5000,
        connectTimeoutMs: Int = 2000,
        pingIntervalMs: Int = 20_000,
        secret: String = "",
        maxEnvelopeAgeMs: Int = 60_000,
        maxFanoutBytes: Int = 4_194_304,
        history: HistoryStore = .jetstream,
        jetstream: JetStreamConfig = JetStreamConfig(),
        presenceHeartbeatMs: Int = 2000
    ) {
        self.presenceHeartbeatMs = presenceHeartbeatMs
        self.nats = nats
        self.subjectPrefix = subjectPrefix
        self.nodeID = nodeID
        self.maxPendingBytes = maxPendingBytes
        self.reconnectMinMs = reconnectMinMs
        self.reconnectMaxMs = reconnectMaxMs
        self.connectTimeoutMs = connectTimeoutMs
        self.pingIntervalMs = pingIntervalMs
        self.secret = secret
        self.maxEnvelopeAgeMs = maxEnvelopeAgeMs
        self.maxFanoutBytes = maxFanoutBytes
        self.history = history
        self.jetstream = jetstream
    }

    /// Whether the node is clustered (at least one NATS server configured).
    public var isEnabled: Bool { !self.nats.isEmpty }

    /// The parsed `nats` list. - Throws: the first URL that does not parse.
    public func servers() throws(ConfigError) -> [NATSServerURL] {
        var servers: [NATSServerURL] = []
        for (index, text) in self.nats.enumerated() {
            do {
                servers.append(try NATSServerURL(parsing: text))
            } catch {
                throw ConfigError(ConfigProblem(keyPath: "cluster.nats[\(index)]", message: error.message))
            }
        }
        return servers
    }
}

extension ClusterConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case nats
        case subjectPrefix = "subject_prefix"
        case nodeID = "node_id"
        case maxPendingBytes = "max_pending_bytes"
        case reconnectMinMs = "reconnect_min_ms"
        case reconnectMaxMs = "reconnect_max_ms"
        case connectTimeoutMs = "connect_timeout_ms"
        case pingIntervalMs = "ping_interval_ms"
        case secret
        case maxEnvelopeAgeMs = "max_envelope_age_ms"
        case maxFanoutBytes = "max_fanout_bytes"
        case history, jetstream
        case presenceHeartbeatMs = "presence_heartbeat_ms"
    }

    static let schema = ConfigSchema.section(CodingKeys.self, nested: [.jetstream: JetStreamConfig.schema])

    /// Decodes the section; missing or null keys keep their defaults.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ClusterConfig()
        self.init(
            nats: try c.decodeIfPresent([String].self, forKey: .nats) ?? d.nats,
            subjectPrefix: try c.decodeIfPresent(String.self, forKey: .subjectPrefix) ?? d.subjectPrefix,
            nodeID: try c.decodeIfPresent(String.self, forKey: .nodeID) ?? d.nodeID,
            maxPendingBytes: try c.decodeIfPresent(Int.self, forKey: .maxPendingBytes) ?? d.maxPendingBytes,
            reconnectMinMs: try c.decodeIfPresent(Int.self, forKey: .reconnectMinMs) ?? d.reconnectMinMs,
            reconnectMaxMs: try c.decodeIfPresent(Int.self, forKey: .reconnectMaxMs) ?? d.reconnectMaxMs,
            connectTimeoutMs: try c.decodeIfPresent(Int.self, forKey: .connectTimeoutMs) ?? d.connectTimeoutMs,
            pingIntervalMs: try c.decodeIfPresent(Int.self, forKey: .pingIntervalMs) ?? d.pingIntervalMs,
            secret: try c.decodeIfPresent(String.self, forKey: .secret) ?? d.secret,
            maxEnvelopeAgeMs: try c.decodeIfPresent(Int.self, forKey: .maxEnvelopeAgeMs) ?? d.maxEnvelopeAgeMs,
            maxFanoutBytes: try c.decodeIfPresent(Int.self, forKey: .maxFanoutBytes) ?? d.maxFanoutBytes,
            history: try c.decodeIfPresent(HistoryStore.self, forKey: .history) ?? d.history,
            jetstream: try c.decodeIfPresent(JetStreamConfig.self, forKey: .jetstream) ?? d.jetstream,
            presenceHeartbeatMs: try c.decodeIfPresent(Int.self, forKey: .presenceHeartbeatMs) ?? d.presenceHeartbeatMs
        )
    }

    /// The section's own rules (called from ``GatewayConfig/validate()``).
    func problems(limits: LimitsConfig) -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        func report(_ key: String, _ message: String) {
            problems.append(ConfigProblem(keyPath: "cluster.\(key)", message: message))
        }
        for (index, text) in self.nats.enumerated() {
            do {
                _ = try NATSServerURL(parsing: text)
            } catch {
                report("nats[\(index)]", error.message)
            }
        }
        if !Self.isPlainTokenList(self.subjectPrefix) {
            report("subject_prefix", "\"\(self.subjectPrefix)\" must be dot-separated tokens of letters, digits, '_' and '-'")
        } else if limits.maxChannelNameBytes > 0 {
            // MSG <subject> <sid> <size>\r\n must fit nats-server's default 4096-byte control line,
            // and an encoded channel name takes up to 3 bytes per byte.
            // `<prefix>.h.<encoded>` is the longest (a channel's history subject).
            let longest = self.subjectPrefix.utf8.count + 3 + 1 + 3 * limits.maxChannelNameBytes
            if longest > Self.maxSubjectBytes {
                report("subject_prefix", "with limits.max_channel_name_bytes \(limits.maxChannelNameBytes) a subject can reach \(longest) bytes, over NATS's \(Self.maxSubjectBytes); lower the limit")
            }
        }
        if !self.nodeID.isEmpty, !Self.isPlainTokenList(self.nodeID) {
            report("node_id", "\"\(self.nodeID)\" must be dot-separated tokens of letters, digits, '_' and '-'")
        }
        let positives: [(String, Int)] = [
            ("max_pending_bytes", self.maxPendingBytes),
            ("reconnect_min_ms", self.reconnectMinMs),
            ("reconnect_max_ms", self.reconnectMaxMs),
            ("connect_timeout_ms", self.connectTimeoutMs),
            ("ping_interval_ms", self.pingIntervalMs),
            ("presence_heartbeat_ms", self.presenceHeartbeatMs),
        ]
        for (key, value) in positives where value <= 0 {
            report(key, "must be greater than 0, is \(value)")
        }
        if !self.secret.isEmpty, self.secret.utf8.count < Self.minSecretBytes {
            // The value itself never goes into a message.
            report("secret", "must be at least \(Self.minSecretBytes) bytes (is \(self.secret.utf8.count)), or empty for unsigned envelopes")
        }
        for (key, value) in [("max_envelope_age_ms", self.maxEnvelopeAgeMs), ("max_fanout_bytes", self.maxFanoutBytes)] where value < 0 {
            report(key, "must be 0 (off) or more, is \(value)")
        }
        if !self.jetstream.stream.isEmpty, self.jetstream.stream.utf8.count <= 64, self.jetstream.stream.utf8.allSatisfy(Self.isTokenByte) {
        } else {
            report("jetstream.stream", "\"\(self.jetstream.stream.prefix(80))\" must be 1 to 64 letters, digits, '_' and '-'")
        }
        if !(1...5).contains(self.jetstream.replicas) {
            report("jetstream.replicas", "must be between 1 and 5, is \(self.jetstream.replicas)")
        }
        if !["file", "memory"].contains(self.jetstream.storage) {
            report("jetstream.storage", "must be file or memory, is \"\(self.jetstream.storage.prefix(40))\"")
        }
        if self.jetstream.timeoutMs <= 0 {
            report("jetstream.timeout_ms", "must be greater than 0, is \(self.jetstream.timeoutMs)")
        }
        if self.reconnectMinMs > 0, self.reconnectMaxMs < self.reconnectMinMs {
            report("reconnect_max_ms", "\(self.reconnectMaxMs) must not be below reconnect_min_ms (\(self.reconnectMinMs))")
        }
        return problems
    }

    /// Shortest non-empty `secret`: a short shared secret is guessed offline from one signed envelope.
    public static let minSecretBytes = 16

    /// Longest subject the gateway builds (leaves room in a 4096-byte `MSG` control line).
    public static let maxSubjectBytes = 4000

    /// Non-empty dot-separated tokens of `[A-Za-z0-9_-]`.
    public static func isPlainTokenList(_ text: String) -> Bool {
        let tokens = text.split(separator: ".", omittingEmptySubsequences: false)
        return !tokens.isEmpty && tokens.allSatisfy { !$0.isEmpty && $0.utf8.allSatisfy(isTokenByte) }
    }

    /// `[A-Za-z0-9_-]`: the bytes a subject token may hold as they are (channel names escape the rest).
    public static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}
