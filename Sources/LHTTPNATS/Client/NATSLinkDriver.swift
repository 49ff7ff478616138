import LHTTPConfig
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Runs a ``NATSLinkStateMachine`` on the client's event loop: feeds it what happens (calls from
/// ``NATSClient``, reports from the ``NATSHandler`` of the current connection, timers) and performs the
/// actions it returns (connect, schedule, write, close).
///
/// Confined to that loop (``NATSClient`` holds it in a loop-bound box). Timers go through the loop's
/// `scheduleTask`, so on an `EmbeddedEventLoop` a test moves time forward instead of sleeping. The one
/// thing it shares with other threads is the client's lock (``NATSClientShared``), taken briefly and
/// never while writing to a channel.
final class NATSLinkDriver {
    /// Opens a connection to `server` with `handler` in its pipeline.
    typealias Connector = @Sendable (_ server: NATSServerURL, _ handler: NATSHandler) -> EventLoopFuture<any Channel>

    private let eventLoop: any EventLoop
    private let configuration: NATSClient.Configuration
    private let shared: NIOLockedValueBox<NATSClientShared>
    private let logger: Logger
    private let connector: Connector
    private var machine: NATSLinkStateMachine
    /// The handler of the latest connection attempt, from before its connect completes until it closes.
    private var link: NATSHandler?
    private var timers: [NATSLinkStateMachine.Timer: Scheduled<Void>] = [:]
    private var onMessage: (@Sendable (NATSMessage) -> Void)?
    /// Told when the link becomes usable (true) and when it is lost (false).
    private var onLinkChange: (@Sendable (Bool) -> Void)?
    /// Requests waiting for their answer, by reply subject (`<inbox>.<n>`).
    private var pending: [String: (subject: String, promise: EventLoopPromise<NATSMessage>, timer: Scheduled<Void>)] = [:]
    /// The one wildcard subscription every answer comes through (`<inbox>.*`), made with the first request.
    private var inboxSID: UInt64?
    private let inbox = "_INBOX.\(UInt64.random(in: 0...UInt64.max))"
    private var lastRequest: UInt64 = 0

    init(
        configuration: NATSClient.Configuration, eventLoop: any EventLoop, shared: NIOLockedValueBox<NATSClientShared>,
        logger: Logger, connector: @escaping Connector
    ) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.shared = shared
        self.logger = logger
        self.connector = connector
        self.machine = NATSLinkStateMachine(
            servers: configuration.servers,
            backoff: NATSBackoff(minimumMs: configuration.reconnectMinMs, maximumMs: configuration.reconnectMaxMs),
            handshakeTimeoutMs: configuration.connectTimeoutMs,
            pingIntervalMs: configuration.pingIntervalMs
        )
    }

    // MARK: From the client

    func start(onMessage: @escaping @Sendable (NATSMessage) -> Void, onLinkChange: (@Sendable (Bool) -> Void)? = nil) {
        guard self.machine.state == .idle else { return }
        self.onMessage = onMessage
        self.onLinkChange = onLinkChange
        self.apply(self.machine.start())
    }

    func subscribe(sid: UInt64, subject: String) {
        self.apply(self.machine.subscribe(sid: sid, subject: subject))
    }

    func unsubscribe(sid: UInt64) {
        self.apply(self.machine.unsubscribe(sid: sid))
    }

    /// Writes what the outbox holds, once per tick however many publishers added to it.
    func drain() {
        // Take even without a link: taking clears the outbox's "drain scheduled" mark, which would otherwise
        // stay set after a link lost meanwhile, and no publication would ever schedule a drain again.
        guard let bytes = self.shared.withLockedValue({ $0.outbox.take() }) else { return }
        self.link?.write(bytes)
    }

    /// Sends a request (after every publication queued before it) and completes with its answer.
    /// Fails at once when the link is down (a request is never kept for later), with
    /// ``NATSError/requestTimeout`` after `timeout`, and with ``NATSError/noResponders(_:)`` when the server
    /// says no one listens.
    func request(subject: String, headers: NATSHeaders?, payload: ByteBuffer, timeout: TimeAmount) -> EventLoopFuture<NATSMessage> {
        guard self.machine.isReady, self.link != nil else { return self.eventLoop.makeFailedFuture(NATSError.notConnected) }
        if self.inboxSID == nil {
            let sid = self.shared.withLockedValue { $0.nextSID() }
            self.inboxSID = sid
            self.apply(self.machine.subscribe(sid: sid, subject: "\(self.inbox).*"))
        }
        self.lastRequest += 1
        let replyTo = "\(self.inbox).\(self.lastRequest)"
        let promise = self.eventLoop.makePromise(of: NATSMessage.self)
        let timer = self.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            _ = self.pending.removeValue(forKey: replyTo).map { $0.promise.fail(NATSError.requestTimeout) }
        }
        self.pending[replyTo] = (subject, promise, timer)
        let admitted = self.shared.withLockedValue { shared -> NATSOutbox.Append? in
            guard payload.readableBytes + (headers.map { $0.encoded().readableBytes } ?? 0) <= shared.maxPayload else { return nil }
            return shared.outbox.append(subject: subject, replyTo: replyTo, headers: headers, payload: payload)
        }
        switch admitted {
        case nil:
            self.answer(replyTo, with: .failure(NATSError.tooLarge("request of \(payload.readableBytes) bytes over the server's max_payload")))
        case .dropped?:
            self.answer(replyTo, with: .failure(NATSError.notConnected))
        case .queued?, .scheduleDrain?:
            self.drain()
        }
        return promise.futureResult
    }

    private func answer(_ replyTo: String, with result: Result<NATSMessage, any Error>) {
        guard let waiting = self.pending.removeValue(forKey: replyTo) else { return }
        waiting.timer.cancel()
        waiting.promise.completeWith(result)
    }

    /// Completes when the server answered a PING sent after everything queued so far.
    func flush() -> EventLoopFuture<Void> {
        self.drain()
        let promise = self.eventLoop.makePromise(of: Void.self)
        if self.machine.isReady, let link = self.link {
            link.ping(promise: promise)
        } else {
            promise.fail(NATSError.notConnected)
        }
        return promise.futureResult
    }

    /// Writes what is queued, waits up to `drainTimeout` for the server's PONG, then closes for good.
    func shutdown(drainTimeout: TimeAmount) -> EventLoopFuture<Void> {
        self.writeQueued(within: drainTimeout).assumeIsolated().flatMap { self.close() }.nonisolated()
    }

    /// What is queued goes out; completes on the server's PONG for it, or after `timeout`, whichever first.
    func writeQueued(within timeout: TimeAmount) -> EventLoopFuture<Void> {
        guard self.machine.isReady, let link = self.link else { return self.eventLoop.makeSucceededVoidFuture() }
        self.drain()
        let acknowledged = self.eventLoop.makePromise(of: Void.self)
        link.ping(promise: acknowledged)
        let timer = self.eventLoop.assumeIsolated().scheduleTask(in: timeout) {}
        acknowledged.futureResult.assumeIsolated().whenComplete { _ in timer.cancel() }
        // The timer's future completes exactly once: when it fires (timeout) or is cancelled (answered).
        return timer.futureResult.recover { _ in }
    }

    /// Closed for good: pending timers cancelled, the connection closed, nothing reconnects.
    func close() -> EventLoopFuture<Void> {
        let closed = self.link?.closeFuture
        self.onMessage = nil
        self.apply(self.machine.closeRequested())
        return closed ?? self.eventLoop.makeSucceededVoidFuture()
    }

    // MARK: From the handler of the current connection

    func handshakeCompleted(_ handler: NATSHandler, maxPayload: Int) {
        self.apply(self.machine.handshakeCompleted(attempt: handler.attempt, maxPayload: maxPayload))
    }

    func linkClosed(_ handler: NATSHandler) {
        if self.link === handler {
            self.link = nil
            // Their answers would come on this connection: they never will.
            for replyTo in Array(self.pending.keys) { self.answer(replyTo, with: .failure(NATSError.notConnected)) }
        }
        let reason = handler.failure.map { "\($0)" } ?? "connection closed by the server"
        self.apply(self.machine.linkClosed(attempt: handler.attempt, reason: reason))
    }

    func writabilityChanged(_ handler: NATSHandler, isWritable: Bool) {
        guard self.machine.isReady(attempt: handler.attempt) else { return }
        if self.shared.withLockedValue({ $0.outbox.setOpen(isWritable) }) { self.drain() }
    }

    func received(_ message: NATSMessage) {
        if message.sid == self.inboxSID {
            if message.headers?.status == 503 {
                let subject = self.pending[message.subject]?.subject ?? message.subject
                self.answer(message.subject, with: .failure(NATSError.noResponders(subject)))
            } else {
                self.answer(message.subject, with: .success(message))
            }
            return
        }
        // A message can still arrive for a subscription just removed: the server had it on the way.
        guard self.machine.isSubscribed(message.sid), let onMessage = self.onMessage else { return }
        // Counted before it is handed on, so whoever sees the delivery also sees the count.
        self.shared.withLockedValue { $0.receivedMessages += 1 }
        onMessage(message)
    }

    /// The server refused an operation and kept the link (NATS permissions): logged and kept in the status.
    func serverRefused(_ error: NATSError) {
        self.machine.serverRefused(error)
        self.publishSnapshot()
        self.logger.error(
            "NATS refused an operation; check the NATS user's permissions for the subject prefix",
            metadata: ["lhttp.nats.error": "\(error)"]
        )
    }

    // MARK: Actions

    private func apply(_ actions: [NATSLinkStateMachine.Action]) {
        for action in actions { self.perform(action) }
        self.publishSnapshot()
    }

    private func publishSnapshot() {
        let snapshot = self.machine.snapshot
        self.shared.withLockedValue { $0.link = snapshot }
    }

    private func perform(_ action: NATSLinkStateMachine.Action) {
        switch action {
        case .connect(let serverIndex, let attempt):
            self.connect(to: self.configuration.servers[serverIndex], attempt: attempt)
        case .schedule(let timer, let milliseconds):
            self.timers.removeValue(forKey: timer)?.cancel()
            self.timers[timer] = self.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(milliseconds))) {
                self.timers[timer] = nil
                self.fire(timer)
            }
            if timer == .reconnect { self.logRetry(in: milliseconds) }
        case .cancel(let timer):
            self.timers.removeValue(forKey: timer)?.cancel()
        case .subscribe(let subscriptions):
            guard let link = self.link else { return }
            var buffer = link.allocator.buffer(capacity: subscriptions.count * 48)
            for subscription in subscriptions {
                NATSClientOp.subscribe(subject: subscription.subject, sid: subscription.sid, into: &buffer)
            }
            link.write(buffer)
        case .unsubscribe(let sid):
            guard let link = self.link else { return }
            var buffer = link.allocator.buffer(capacity: 32)
            NATSClientOp.unsubscribe(sid: sid, into: &buffer)
            link.write(buffer)
        case .ping:
            self.link?.ping(promise: nil)
        case .linkUp(let maxPayload):
            self.linkUp(maxPayload: maxPayload)
            self.onLinkChange?(true)
        case .linkDown:
            _ = self.shared.withLockedValue { $0.outbox.setOpen(false) }
            self.onLinkChange?(false)
            if self.machine.state != .closed {
                self.logger.warning(
                    "NATS link lost; local delivery continues",
                    metadata: ["lhttp.nats.server": "\(self.machine.server?.description ?? "")", "lhttp.nats.error": "\(self.machine.lastError ?? "")"]
                )
            }
        case .close(let error):
            self.link?.close(because: error)
        }
    }

    private func fire(_ timer: NATSLinkStateMachine.Timer) {
        switch timer {
        case .reconnect: self.apply(self.machine.reconnectTimerFired())
        case .handshake: self.apply(self.machine.handshakeTimerFired())
        case .keepAlive: self.apply(self.machine.keepAliveTimerFired(outstandingPings: self.link?.outstandingPings ?? 0))
        }
    }

    private func connect(to server: NATSServerURL, attempt: Int) {
        let handler = NATSHandler(
            driver: self, attempt: attempt,
            connectJSON: NATSClientOp.connectJSON(for: server, name: self.configuration.name, echo: self.configuration.echo)
        )
        self.link = handler
        self.connector(server, handler).assumeIsolated().whenComplete { result in
            switch result {
            case .success:
                self.apply(self.machine.connected(attempt: attempt))
            case .failure(let error):
                if self.link === handler { self.link = nil }
                self.apply(self.machine.connectFailed(attempt: attempt, reason: "\(error)"))
            }
        }
    }

    /// The handshake is done and the SUBs are written: the outbox may flow.
    private func linkUp(maxPayload: Int) {
        let isWritable = self.link?.isWritable ?? false
        let (mustDrain, dropped) = self.shared.withLockedValue { shared in
            shared.maxPayload = maxPayload
            return (shared.outbox.setOpen(isWritable), shared.outbox.droppedMessages)
        }
        self.logger.info(
            self.machine.connections == 1 ? "NATS connected" : "NATS reconnected",
            metadata: [
                "lhttp.nats.server": "\(self.machine.server?.description ?? "")",
                "lhttp.nats.subscriptions": "\(self.machine.subscriptions.count)",
                "lhttp.nats.dropped_total": "\(dropped)", "lhttp.nats.max_payload": "\(maxPayload)",
            ]
        )
        if mustDrain { self.drain() }
    }

    private func logRetry(in milliseconds: Int) {
        let failures = self.machine.failures
        // Every attempt is logged at debug; the first few and every tenth at warning, so a long outage
        // does not flood the log.
        let level: Logger.Level = failures <= 3 || failures % 10 == 0 ? .warning : .debug
        self.logger.log(
            level: level,
            "NATS unreachable, retrying",
            metadata: [
                "lhttp.nats.server": "\(self.machine.attemptServer?.description ?? "")", "lhttp.nats.error": "\(self.machine.lastError ?? "")",
                "lhttp.nats.retry_ms": "\(milliseconds)", "lhttp.nats.attempt": "\(failures)",
            ]
        )
    }

    /// TCP through NIOPosix, on `eventLoop` (the handler must live on the driver's loop).
    static func tcpConnector(eventLoop: any EventLoop, connectTimeoutMs: Int) -> Connector {
        { server, handler in
            let handler = NIOLoopBound(handler, eventLoop: eventLoop)
            return ClientBootstrap(group: eventLoop)
                .connectTimeout(.milliseconds(Int64(connectTimeoutMs)))
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler.value) }
                }
                .connect(host: server.host, port: server.port)
        }
    }
}
