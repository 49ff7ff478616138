import LHTTPConfig

/// The life of the client's link across connections, apart from sockets and clocks: which server to try
/// next, how long to wait before retrying, when the handshake and keep-alive timers run, and what to send
/// when a link comes up.
///
/// ``NATSLinkDriver`` feeds it events on the client's loop and performs the actions it returns, in order.
/// One TCP connection's own protocol (INFO → CONNECT + PING → PONG) is ``NATSConnectionStateMachine``'s;
/// this one only hears that a connection came up, completed its handshake, or went away. Every connection
/// attempt has a number, and an event about an attempt that is no longer the current one is ignored, so a
/// late callback from an old socket cannot disturb the new one.
struct NATSLinkStateMachine {
    enum Timer: Hashable, Sendable {
        /// Waiting before the next connection attempt.
        case reconnect
        /// A connected server must complete the handshake in time, or the link is closed.
        case handshake
        /// Next keep-alive PING.
        case keepAlive
    }

    struct Subscription: Equatable, Sendable {
        var sid: UInt64
        var subject: String
    }

    enum Action: Equatable {
        /// Open a TCP connection to `servers[serverIndex]`, reporting back with `attempt`.
        case connect(serverIndex: Int, attempt: Int)
        /// Run `timer` after `milliseconds` (replacing a pending one of the same kind).
        case schedule(Timer, milliseconds: Int)
        case cancel(Timer)
        /// Write SUB for each, in this order, on the current link.
        case subscribe([Subscription])
        case unsubscribe(sid: UInt64)
        /// Send a keep-alive PING on the current link.
        case ping
        /// The handshake is done and the subscriptions are out: publications may flow.
        case linkUp(maxPayload: Int)
        /// The link that was up is gone (or closing for good): hold publications until the next one.
        case linkDown
        /// Close the current connection (nil: we are closing for good, not because of a failure).
        case close(NATSError?)
    }

    enum State: Equatable {
        case idle
        /// A TCP connection is being made.
        case connecting(attempt: Int)
        /// TCP is up; waiting for the server's handshake.
        case handshaking(attempt: Int)
        case ready(attempt: Int)
        /// The reconnect timer is pending.
        case waiting
        case closed
    }

    /// What the client's ``NATSClient/Status`` shows of the link.
    struct Snapshot: Equatable, Sendable {
        var state: NATSClient.State = .idle
        var server: String?
        var connections = 0
        var subscriptions = 0
        var lastError: String?
    }

    let servers: [NATSServerURL]
    let handshakeTimeoutMs: Int
    let pingIntervalMs: Int
    private(set) var state = State.idle
    private var backoff: NATSBackoff
    /// Index of the server the next attempt goes to; advances with every attempt.
    private var nextServer = 0
    private var lastAttempt = 0
    /// The server of the latest attempt (for the retry log).
    private(set) var attemptServer: NATSServerURL?
    /// The server of the current (or last) TCP connection.
    private(set) var server: NATSServerURL?
    /// The sid table, re-sent in sid order whenever a link comes up.
    private(set) var subscriptions: [UInt64: String] = [:]
    /// Successful handshakes so far.
    private(set) var connections = 0
    /// Why the last link ended or the last attempt failed.
    private(set) var lastError: String?

    init(servers: [NATSServerURL], backoff: NATSBackoff, handshakeTimeoutMs: Int, pingIntervalMs: Int) {
        precondition(!servers.isEmpty, "a NATS client needs at least one server")
        self.servers = servers
        self.backoff = backoff
        self.handshakeTimeoutMs = handshakeTimeoutMs
        self.pingIntervalMs = pingIntervalMs
    }

    /// Failed attempts since the last successful handshake.
    var failures: Int { self.backoff.failures }

    var snapshot: Snapshot {
        Snapshot(
            state: self.publicState, server: self.server?.description, connections: self.connections,
            subscriptions: self.subscriptions.count, lastError: self.lastError
        )
    }

    /// Before the first handshake the client is "connecting"; after one, any gap is "disconnected".
    var publicState: NATSClient.State {
        switch self.state {
        case .idle: return .idle
        case .ready: return .connected
        case .closed: return .closed
        case .connecting, .handshaking, .waiting: return self.connections == 0 ? .connecting : .disconnected
        }
    }

    func isReady(attempt: Int) -> Bool { self.state == .ready(attempt: attempt) }

    var isReady: Bool {
        if case .ready = self.state { return true }
        return false
    }

    func isSubscribed(_ sid: UInt64) -> Bool { self.subscriptions[sid] != nil }

    // MARK: Events

    mutating func start() -> [Action] {
        guard self.state == .idle else { return [] }
        return [self.nextAttempt()]
    }

    /// The TCP connection of `attempt` is up.
    mutating func connected(attempt: Int) -> [Action] {
        guard self.state == .connecting(attempt: attempt) else {
            // Only a close can end an attempt before its connect completes; the socket is not wanted.
            return self.state == .closed ? [.close(nil)] : []
        }
        self.state = .handshaking(attempt: attempt)
        self.server = self.attemptServer
        return [.schedule(.handshake, milliseconds: self.handshakeTimeoutMs)]
    }

    /// The TCP connection of `attempt` could not be made.
    mutating func connectFailed(attempt: Int, reason: String) -> [Action] {
        guard self.state == .connecting(attempt: attempt) else { return [] }
        self.lastError = reason
        return [self.waitToReconnect()]
    }

    /// The server of `attempt` accepted CONNECT: re-subscribe before anything else, then let publications out.
    mutating func handshakeCompleted(attempt: Int, maxPayload: Int) -> [Action] {
        guard self.state == .handshaking(attempt: attempt) else { return [] }
        self.state = .ready(attempt: attempt)
        self.connections += 1
        self.backoff.reset()
        var actions: [Action] = [.cancel(.handshake)]
        if !self.subscriptions.isEmpty {
            actions.append(.subscribe(self.subscriptions.sorted { $0.key < $1.key }.map { Subscription(sid: $0.key, subject: $0.value) }))
        }
        actions.append(.linkUp(maxPayload: maxPayload))
        actions.append(.schedule(.keepAlive, milliseconds: self.pingIntervalMs))
        return actions
    }

    /// The connection of `attempt` closed (server, network, or one of our `.close` actions).
    mutating func linkClosed(attempt: Int, reason: String) -> [Action] {
        let actions: [Action]
        switch self.state {
        case .connecting(attempt):
            actions = []
        case .handshaking(attempt):
            actions = [.cancel(.handshake)]
        case .ready(attempt):
            actions = [.cancel(.keepAlive), .linkDown]
        case .idle, .connecting, .handshaking, .ready, .waiting, .closed:
            return []
        }
        self.lastError = reason
        return actions + [self.waitToReconnect()]
    }

    mutating func reconnectTimerFired() -> [Action] {
        guard self.state == .waiting else { return [] }
        return [self.nextAttempt()]
    }

    mutating func handshakeTimerFired() -> [Action] {
        guard case .handshaking = self.state else { return [] }
        // Closing reports `linkClosed`, which schedules the reconnect.
        return [.close(.io("no NATS handshake within \(self.handshakeTimeoutMs) ms"))]
    }

    /// - Parameter outstandingPings: PINGs of the current connection still waiting for their PONG.
    mutating func keepAliveTimerFired(outstandingPings: Int) -> [Action] {
        guard case .ready = self.state else { return [] }
        // Two unanswered PINGs: TCP may look open, but nobody is reading on the other side.
        guard outstandingPings < 2 else { return [.close(.stale)] }
        return [.ping, .schedule(.keepAlive, milliseconds: self.pingIntervalMs)]
    }

    /// The server refused an operation and kept the link (NATS permissions).
    mutating func serverRefused(_ error: NATSError) {
        self.lastError = "\(error)"
    }

    mutating func subscribe(sid: UInt64, subject: String) -> [Action] {
        self.subscriptions[sid] = subject
        // While down, the table is enough: the next link re-sends it.
        return self.isReady ? [.subscribe([Subscription(sid: sid, subject: subject)])] : []
    }

    mutating func unsubscribe(sid: UInt64) -> [Action] {
        guard self.subscriptions.removeValue(forKey: sid) != nil, self.isReady else { return [] }
        return [.unsubscribe(sid: sid)]
    }

    /// Closed for good: nothing reconnects after this.
    mutating func closeRequested() -> [Action] {
        let actions: [Action]
        switch self.state {
        case .idle, .closed: actions = []
        case .waiting: actions = [.cancel(.reconnect)]
        case .connecting: actions = [.close(nil)]
        case .handshaking: actions = [.cancel(.handshake), .close(nil)]
        // Publications after this stay in the outbox (counted in the status), never written to a closing socket.
        case .ready: actions = [.cancel(.keepAlive), .linkDown, .close(nil)]
        }
        self.state = .closed
        return actions
    }

    // MARK: Helpers

    private mutating func nextAttempt() -> Action {
        let index = self.nextServer % self.servers.count
        self.nextServer = (index + 1) % self.servers.count
        self.lastAttempt += 1
        self.attemptServer = self.servers[index]
        self.state = .connecting(attempt: self.lastAttempt)
        return .connect(serverIndex: index, attempt: self.lastAttempt)
    }

    private mutating func waitToReconnect() -> Action {
        self.state = .waiting
        return .schedule(.reconnect, milliseconds: self.backoff.nextDelayMs())
    }
}
