extension NATSClient {
    /// Where the link is in its life.
    public enum State: String, Sendable {
        /// Not started yet.
        case idle
        /// The first connection is being made.
        case connecting
        case connected
        /// The link was lost (or never came up); reconnecting with backoff.
        case disconnected
        case closed
    }

    /// A snapshot for health checks, logs and tests.
    public struct Status: Sendable, Equatable {
        public var state: State
        /// The server of the current (or last) link, without credentials.
        public var server: String?
        /// Successful handshakes so far (1 after the first connection; each reconnect adds one).
        public var connections: Int
        public var subscriptions: Int
        public var pendingBytes: Int
        public var publishedMessages: Int
        public var droppedMessages: Int
        public var receivedMessages: Int
        /// Why the last link ended or the last attempt failed.
        public var lastError: String?
    }
}
