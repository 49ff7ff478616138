import LHTTPConfig

extension NATSClient {
    /// How to connect and what to bound.
    public struct Configuration: Sendable {
        /// Tried in turn, from the first; credentials come from each URL.
        public var servers: [NATSServerURL]
        /// Client name shown by the server's monitoring (`/connz`).
        public var name: String
        /// Publications kept while the link is down or not writable, in bytes.
        public var maxPendingBytes: Int
        /// First reconnect delay; it doubles per failed attempt up to `reconnectMaxMs` (see ``NATSBackoff``).
        public var reconnectMinMs: Int
        public var reconnectMaxMs: Int
        /// Bounds the TCP connect, and again the NATS handshake after it.
        public var connectTimeoutMs: Int
        /// Keep-alive PING period; two unanswered PINGs close the link.
        public var pingIntervalMs: Int
        /// Whether the server sends our own publications back to our matching subscriptions.
        public var echo: Bool

        public init(
            servers: [NATSServerURL],
            name: String = "lhttpd",
            maxPendingBytes: Int = 8 << 20,
            reconnectMinMs: Int = 100,
            reconnectMaxMs: Int = 5000,
            connectTimeoutMs: Int = 2000,
            pingIntervalMs: Int = 20_000,
            echo: Bool = true
        ) {
            precondition(!servers.isEmpty, "a NATS client needs at least one server")
            self.servers = servers
            self.name = name
            self.maxPendingBytes = maxPendingBytes
            self.reconnectMinMs = reconnectMinMs
            self.reconnectMaxMs = reconnectMaxMs
            self.connectTimeoutMs = connectTimeoutMs
            self.pingIntervalMs = pingIntervalMs
            self.echo = echo
        }
    }
}
