import Foundation
import LHTTPConfig
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization

/// A NATS client that stays connected: a list of servers tried in turn, reconnect with backoff and
/// jitter, subscriptions re-sent after every reconnect, publications kept in a bounded buffer while the
/// link is down, keep-alive PINGs, and the server's `max_payload` respected.
///
/// Publishing and (un)subscribing work from any thread. Everything about the link lives on one event
/// loop; publishers only touch the outbox, behind one lock, and the loop writes it out once per tick.
public final class NATSClient: Sendable {
    /// How to connect and what to bound.
    public struct Configuration: Sendable {
        public var servers: [NATSServerURL]
        /// Client name shown by the server's monitoring (`/connz`).
        public var name: String
        /// Publications kept while the link is down or not writable, in bytes.
        public var maxPendingBytes: Int
        public var reconnectMinMs: Int
        public var reconnectMaxMs: Int
        public var connectTimeoutMs: Int
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

    /// The loop every link of this client lives on.
    public let eventLoop: any EventLoop
    private let configuration: Configuration
    private let logger: Logger
    private let loop: NIOLoopBoundBox<LoopState>
    private let outbox: NIOLockedValueBox<NATSOutbox>
    private let status: NIOLockedValueBox<Status>
    private let nextSID = Atomic<Int>(0)
    private let maxPayloadBytes = Atomic<Int>(1 << 20)
    private let receivedCount = Atomic<Int>(0)

    /// Everything owned by the event loop.
    private struct LoopState {
        var channel: (any Channel)?
        var handler: NATSHandler?
        var subscriptions: [UInt64: String] = [:]
        var onMessage: (@Sendable (String, UInt64, ByteBuffer) -> Void)?
        var serverIndex = 0
        var backoff: NATSBackoff
        var reconnect: Scheduled<Void>?
        var handshakeTimeout: Scheduled<Void>?
        var keepAlive: RepeatedTask?
        var isClosed = false
    }

    public init(configuration: Configuration, eventLoop: any EventLoop, logger: Logger) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.loop = .makeBoxSendingValue(
            LoopState(backoff: NATSBackoff(minimumMs: configuration.reconnectMinMs, maximumMs: configuration.reconnectMaxMs)),
            eventLoop: eventLoop
        )
        self.outbox = NIOLockedValueBox(NATSOutbox(limit: configuration.maxPendingBytes))
        self.status = NIOLockedValueBox(Status(
            state: .idle, server: nil, connections: 0, subscriptions: 0, pendingBytes: 0,
            publishedMessages: 0, droppedMessages: 0, receivedMessages: 0, lastError: nil
        ))
    }

    /// The largest payload the server accepts (from its INFO; 1 MiB until connected).
    public var maxPayload: Int { self.maxPayloadBytes.load(ordering: .relaxed) }

    public var currentStatus: Status {
        var status = self.status.withLockedValue { $0 }
        self.outbox.withLockedValue { outbox in
            status.pendingBytes = outbox.pendingBytes
            status.publishedMessages = outbox.publishedMessages
            status.droppedMessages = outbox.droppedMessages
        }
        status.receivedMessages = self.receivedCount.load(ordering: .relaxed)
        return status
    }

    // MARK: Public API (any thread)

    /// Starts connecting (in the background: this returns at once).
    /// - Parameter onMessage: called on ``eventLoop`` for every message of a live subscription.
    public func start(onMessage: @escaping @Sendable (_ subject: String, _ sid: UInt64, _ payload: ByteBuffer) -> Void) {
        self.onLoop { client in
            guard client.loop.value.onMessage == nil, !client.loop.value.isClosed else { return }
            client.loop.value.onMessage = onMessage
            client.setStatus { $0.state = .connecting }
            client.connect()
        }
    }

    /// Publishes `payload` on `subject` (a plain token list: no wildcard, no whitespace).
    /// - Returns: false when the payload was dropped because the pending buffer is full (counted and logged).
    @discardableResult
    public func publish(_ payload: ByteBuffer, to subject: String) throws(NATSError) -> Bool {
        try self.publish(payload, to: [subject])
    }

    /// Publishes `payload` on each of `subjects`, back to back in the stream (a subscriber of several of
    /// them receives the copies one after the other). All or none are queued.
    @discardableResult
    public func publish(_ payload: ByteBuffer, to subjects: [String]) throws(NATSError) -> Bool {
        let maxPayload = self.maxPayload
        guard payload.readableBytes <= maxPayload else {
            throw .tooLarge("payload of \(payload.readableBytes) bytes over the server's max_payload \(maxPayload)")
        }
        for subject in subjects { try Self.check(subject) }
        switch self.outbox.withLockedValue({ $0.append(subjects: subjects, payload: payload) }) {
        case .queued:
            return true
        case .scheduleDrain:
            self.onLoop { $0.drain() }
            return true
        case .dropped(let first):
            if first {
                self.logger.warning(
                    "NATS pending buffer full: dropping publications until the link drains",
                    metadata: ["lhttp.nats.max_pending_bytes": "\(self.configuration.maxPendingBytes)"]
                )
            }
            return false
        }
    }

    /// Subscribes to `subject`, now and after every reconnect. - Returns: the subscription id.
    public func subscribe(_ subject: String) throws(NATSError) -> UInt64 {
        try Self.check(subject)
        let sid = UInt64(self.nextSID.add(1, ordering: .relaxed).newValue)
        self.onLoop { client in
            client.loop.value.subscriptions[sid] = subject
            client.setStatus { $0.subscriptions = client.loop.value.subscriptions.count }
            client.writeControl { NATSClientOp.subscribe(subject: subject, sid: sid, into: &$0) }
        }
        return sid
    }

    public func unsubscribe(_ sid: UInt64) {
        self.onLoop { client in
            guard client.loop.value.subscriptions.removeValue(forKey: sid) != nil else { return }
            client.setStatus { $0.subscriptions = client.loop.value.subscriptions.count }
            client.writeControl { NATSClientOp.unsubscribe(sid: sid, into: &$0) }
        }
    }

    /// A round trip to the server: when it returns, the server has processed everything written before,
    /// including the publications queued when it was called. - Throws: ``NATSError/notConnected``.
    public func flush() async throws {
        try await self.eventLoop.flatSubmit {
            self.drain()
            let promise = self.eventLoop.makePromise(of: Void.self)
            if let handler = self.loop.value.handler {
                handler.ping(promise: promise)
            } else {
                promise.fail(NATSError.notConnected)
            }
            return promise.futureResult
        }.get()
    }

    /// Closes the link for good; nothing reconnects after this. What is queued is written first, and the
    /// server's acknowledgement awaited for up to `drainTimeout` (a graceful stop loses nothing on a live link).
    public func shutdown(drainTimeout: TimeAmount = .seconds(1)) async {
        let drained: EventLoopFuture<Void> = self.eventLoop.flatSubmit {
            guard let handler = self.loop.value.handler, !self.loop.value.isClosed else { return self.eventLoop.makeSucceededVoidFuture() }
            self.drain()
            // Whichever comes first, the PONG or the timeout, completes `done` (both run on this loop).
            let done = self.eventLoop.makePromise(of: Void.self)
            let finished = NIOLoopBoundBox(false, eventLoop: self.eventLoop)
            let finish: @Sendable () -> Void = {
                guard !finished.value else { return }
                finished.value = true
                done.succeed(())
            }
            let acknowledged = self.eventLoop.makePromise(of: Void.self)
            handler.ping(promise: acknowledged)
            self.eventLoop.scheduleTask(in: drainTimeout) { finish() }
            acknowledged.futureResult.whenComplete { _ in finish() }
            return done.futureResult
        }
        try? await drained.get()
        let closed: EventLoopFuture<Void> = self.eventLoop.flatSubmit {
            var state = self.loop.value
            state.isClosed = true
            state.onMessage = nil
            state.reconnect?.cancel()
            state.handshakeTimeout?.cancel()
            state.keepAlive?.cancel()
            self.loop.value = state
            self.setStatus { $0.state = .closed }
            return self.loop.value.channel?.close() ?? self.eventLoop.makeSucceededVoidFuture()
        }
        try? await closed.get()
    }

    // MARK: The link (event loop only)

    private func onLoop(_ body: @escaping @Sendable (NATSClient) -> Void) {
        if self.eventLoop.inEventLoop {
            body(self)
        } else {
            self.eventLoop.execute { body(self) }
        }
    }

    private func setStatus(_ change: (inout Status) -> Void) {
        self.status.withLockedValue(change)
    }

    private func connect() {
        self.eventLoop.preconditionInEventLoop()
        guard !self.loop.value.isClosed else { return }
        let servers = self.configuration.servers
        let server = servers[self.loop.value.serverIndex % servers.count]
        self.loop.value.serverIndex &+= 1
        let connectJSON = self.connectJSON(for: server)
        let loopBound = NIOLoopBound(self, eventLoop: self.eventLoop)
        ClientBootstrap(group: self.eventLoop)
            .connectTimeout(.milliseconds(Int64(self.configuration.connectTimeoutMs)))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = NATSHandler(client: loopBound.value, connectJSON: connectJSON)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: server.host, port: server.port)
            .whenComplete { result in
                let client = loopBound.value
                switch result {
                case .success(let channel):
                    guard !client.loop.value.isClosed else {
                        channel.close(promise: nil)
                        return
                    }
                    client.loop.value.channel = channel
                    client.setStatus { $0.server = server.description }
                    // Bounded handshake: a server that never answers gets closed, which reconnects.
                    client.loop.value.handshakeTimeout = client.eventLoop.scheduleTask(
                        in: .milliseconds(Int64(client.configuration.connectTimeoutMs))
                    ) {
                        if let handler = try? channel.pipeline.syncOperations.handler(type: NATSHandler.self), !handler.isReady {
                            handler.close(because: .io("no NATS handshake within \(client.configuration.connectTimeoutMs) ms"))
                        }
                    }
                case .failure(let error):
                    client.attemptFailed(server: server, reason: "\(error)")
                }
            }
    }

    private func connectJSON(for server: NATSServerURL) -> String {
        var fields: [String: Any] = [
            "verbose": false, "pedantic": false, "lang": "swift", "version": "1.0", "protocol": 1,
            "name": self.configuration.name, "echo": self.configuration.echo, "headers": false,
        ]
        if let user = server.user { fields["user"] = user }
        if let password = server.password { fields["pass"] = password }
        if let token = server.token { fields["auth_token"] = token }
        let data = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    private func attemptFailed(server: NATSServerURL, reason: String) {
        self.setStatus {
            $0.lastError = reason
            if $0.state != .connecting { $0.state = .disconnected }
        }
        self.scheduleReconnect(after: server, reason: reason)
    }

    private func scheduleReconnect(after server: NATSServerURL, reason: String) {
        guard !self.loop.value.isClosed, self.loop.value.reconnect == nil else { return }
        let delay = self.loop.value.backoff.nextDelayMs()
        let failures = self.loop.value.backoff.failures
        // Every attempt is logged at debug; the first few and every tenth at warning, so a long outage
        // does not flood the log.
        let level: Logger.Level = failures <= 3 || failures % 10 == 0 ? .warning : .debug
        self.logger.log(
            level: level,
            "NATS unreachable, retrying",
            metadata: ["lhttp.nats.server": "\(server)", "lhttp.nats.error": "\(reason)", "lhttp.nats.retry_ms": "\(delay)", "lhttp.nats.attempt": "\(failures)"]
        )
        self.loop.value.reconnect = self.eventLoop.scheduleTask(in: .milliseconds(Int64(delay))) {
            self.loop.value.reconnect = nil
            self.connect()
        }
    }

    /// The handshake of `handler`'s connection completed.
    func linkReady(_ handler: NATSHandler, maxPayload: Int) {
        guard let channel = self.loop.value.channel, !self.loop.value.isClosed else { return }
        self.loop.value.handler = handler
        self.loop.value.handshakeTimeout?.cancel()
        self.loop.value.handshakeTimeout = nil
        self.loop.value.backoff.reset()
        self.maxPayloadBytes.store(maxPayload, ordering: .relaxed)
        // Re-subscribe before anything else, then release what waited in the outbox.
        if !self.loop.value.subscriptions.isEmpty {
            var buffer = channel.allocator.buffer(capacity: self.loop.value.subscriptions.count * 48)
            for (sid, subject) in self.loop.value.subscriptions.sorted(by: { $0.key < $1.key }) {
                NATSClientOp.subscribe(subject: subject, sid: sid, into: &buffer)
            }
            channel.writeAndFlush(buffer, promise: nil)
        }
        let (connections, server) = self.status.withLockedValue { status in
            status.state = .connected
            status.connections += 1
            return (status.connections, status.server ?? "")
        }
        let dropped = self.outbox.withLockedValue { $0.droppedMessages }
        self.logger.info(
            connections == 1 ? "NATS connected" : "NATS reconnected",
            metadata: [
                "lhttp.nats.server": "\(server)", "lhttp.nats.subscriptions": "\(self.loop.value.subscriptions.count)",
                "lhttp.nats.dropped_total": "\(dropped)", "lhttp.nats.max_payload": "\(maxPayload)",
            ]
        )
        self.startKeepAlive()
        if self.outbox.withLockedValue({ $0.setOpen(channel.isWritable) }) { self.drain() }
    }

    private func startKeepAlive() {
        self.loop.value.keepAlive?.cancel()
        let interval = TimeAmount.milliseconds(Int64(self.configuration.pingIntervalMs))
        self.loop.value.keepAlive = self.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { task in
            guard let handler = self.loop.value.handler else {
                task.cancel()
                return
            }
            if handler.outstandingPings >= 2 {
                handler.close(because: .stale)
            } else {
                handler.ping(promise: nil)
            }
        }
    }

    func writabilityChanged(_ handler: NATSHandler, isWritable: Bool) {
        guard handler === self.loop.value.handler else { return }
        if self.outbox.withLockedValue({ $0.setOpen(isWritable) }) { self.drain() }
    }

    /// The connection of `handler` closed (or failed before its handshake completed).
    func linkClosed(_ handler: NATSHandler) {
        let wasReady = handler === self.loop.value.handler
        self.loop.value.channel = nil
        self.loop.value.handler = nil
        self.loop.value.handshakeTimeout?.cancel()
        self.loop.value.handshakeTimeout = nil
        self.loop.value.keepAlive?.cancel()
        self.loop.value.keepAlive = nil
        _ = self.outbox.withLockedValue { $0.setOpen(false) }
        guard !self.loop.value.isClosed else { return }
        let reason = handler.failure.map { "\($0)" } ?? "connection closed by the server"
        let server = self.status.withLockedValue { status in
            status.state = status.connections == 0 ? .connecting : .disconnected
            status.lastError = reason
            return status.server ?? ""
        }
        if wasReady {
            self.logger.warning("NATS link lost; local delivery continues", metadata: ["lhttp.nats.server": "\(server)", "lhttp.nats.error": "\(reason)"])
        }
        let servers = self.configuration.servers
        self.scheduleReconnect(after: servers[(self.loop.value.serverIndex &- 1) % servers.count], reason: reason)
    }

    /// The server refused an operation and kept the link (NATS permissions): logged and kept in the status.
    func serverRefused(_ error: NATSError) {
        self.setStatus { $0.lastError = "\(error)" }
        self.logger.error("NATS refused an operation; check the NATS user's permissions for the subject prefix", metadata: ["lhttp.nats.error": "\(error)"])
    }

    func received(subject: String, sid: UInt64, payload: ByteBuffer) {
        // A message can still arrive for a subscription just removed: the server had it on the way.
        guard self.loop.value.subscriptions[sid] != nil, let onMessage = self.loop.value.onMessage else { return }
        self.receivedCount.add(1, ordering: .relaxed)
        onMessage(subject, sid, payload)
    }

    /// Writes what the outbox holds, once per tick however many publishers added to it.
    private func drain() {
        guard let channel = self.loop.value.channel, self.loop.value.handler != nil else { return }
        guard let bytes = self.outbox.withLockedValue({ $0.take() }) else { return }
        channel.writeAndFlush(bytes, promise: nil)
    }

    /// SUB and UNSUB go out at once when the link is up; when it is down, reconnecting re-sends the table.
    private func writeControl(_ encode: (inout ByteBuffer) -> Void) {
        guard let channel = self.loop.value.channel, self.loop.value.handler != nil else { return }
        var buffer = channel.allocator.buffer(capacity: 64)
        encode(&buffer)
        channel.writeAndFlush(buffer, promise: nil)
    }

    /// Subjects we send are plain tokens: no whitespace, no empty token (the broker never builds a
    /// wildcard: see ``NATSSubject``).
    static func check(_ subject: String) throws(NATSError) {
        // One pass, no allocation (it runs for every publication): no whitespace or control byte, no
        // empty token (leading, trailing or double dot).
        var count = 0
        var previous = UInt8(ascii: ".")
        for byte in subject.utf8 {
            guard byte > 0x20, byte != 0x7F, !(byte == UInt8(ascii: ".") && previous == UInt8(ascii: ".")) else {
                throw .invalidSubject(subject)
            }
            previous = byte
            count += 1
        }
        guard count > 0, count <= ClusterConfig.maxSubjectBytes, previous != UInt8(ascii: ".") else { throw .invalidSubject(subject) }
    }
}
