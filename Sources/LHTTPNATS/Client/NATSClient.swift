import LHTTPConfig
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// A NATS client that stays connected: a list of servers tried in turn, reconnect with backoff and
/// jitter, subscriptions re-sent after every reconnect, publications kept in a bounded buffer while the
/// link is down, keep-alive PINGs, and the server's `max_payload` respected.
///
/// Publishing and (un)subscribing work from any thread. Two kinds of state, one owner each: the link
/// (connections, timers, the sid table) lives on ``eventLoop`` in a ``NATSLinkDriver`` running a
/// ``NATSLinkStateMachine``; what publishers need (the outbox, `max_payload`, the sid counter, the status)
/// is ``NATSClientShared`` behind one lock, and the loop writes the outbox out once per tick.
public final class NATSClient: Sendable {
    /// The loop every link of this client lives on.
    public let eventLoop: any EventLoop
    private let logger: Logger
    private let maxPendingBytes: Int
    /// Internal (as is `driver`) so tests can play publishers and the loop in a chosen order.
    let shared: NIOLockedValueBox<NATSClientShared>
    let driver: NIOLoopBoundBox<NATSLinkDriver>

    /// A client that connects nothing until ``start(onMessage:)``. `logger` gets the link's events
    /// (connected, lost, retrying, refused operations).
    public convenience init(configuration: Configuration, eventLoop: any EventLoop, logger: Logger) {
        self.init(
            configuration: configuration, eventLoop: eventLoop, logger: logger,
            connector: NATSLinkDriver.tcpConnector(eventLoop: eventLoop, connectTimeoutMs: configuration.connectTimeoutMs)
        )
    }

    /// - Parameter connector: opens a connection to a server (tests pass one over `EmbeddedChannel`).
    init(configuration: Configuration, eventLoop: any EventLoop, logger: Logger, connector: @escaping NATSLinkDriver.Connector) {
        self.eventLoop = eventLoop
        self.logger = logger
        self.maxPendingBytes = configuration.maxPendingBytes
        let shared = NIOLockedValueBox(NATSClientShared(maxPendingBytes: configuration.maxPendingBytes))
        self.shared = shared
        self.driver = .makeBoxSendingValue(
            NATSLinkDriver(configuration: configuration, eventLoop: eventLoop, shared: shared, logger: logger, connector: connector),
            eventLoop: eventLoop
        )
    }

    /// The largest payload the server accepts (from its INFO; 1 MiB until connected).
    public var maxPayload: Int { self.shared.withLockedValue { $0.maxPayload } }

    /// The link's state and the client's counters, read in one go.
    public var currentStatus: Status { self.shared.withLockedValue { $0.status } }

    /// Starts connecting (in the background: this returns at once). Only the first call does anything.
    /// - Parameters:
    ///   - onMessage: called on ``eventLoop`` for every message of a live subscription.
    ///   - onLinkChange: called on ``eventLoop`` when the link becomes usable (true: handshake done,
    ///     subscriptions re-sent) and when it is lost (false).
    public func start(onMessage: @escaping @Sendable (NATSMessage) -> Void, onLinkChange: (@Sendable (Bool) -> Void)? = nil) {
        self.onLoop { $0.start(onMessage: onMessage, onLinkChange: onLinkChange) }
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
        for subject in subjects { try Self.check(subject) }
        switch self.shared.withLockedValue({ $0.admit(payload, to: subjects) }) {
        case .tooLarge(let maxPayload):
            throw .tooLarge("payload of \(payload.readableBytes) bytes over the server's max_payload \(maxPayload)")
        case .appended(.queued):
            return true
        case .appended(.scheduleDrain):
            self.onLoop { $0.drain() }
            return true
        case .appended(.dropped(let first)):
            if first {
                self.logger.warning(
                    "NATS pending buffer full: dropping publications until the link drains",
                    metadata: ["lhttp.nats.max_pending_bytes": "\(self.maxPendingBytes)"]
                )
            }
            return false
        }
    }

    /// Publishes one message with headers and/or a reply subject (`HPUB`), queued like any publication.
    @discardableResult
    public func publish(_ payload: ByteBuffer, to subject: String, headers: NATSHeaders?, replyTo: String? = nil) throws(NATSError) -> Bool {
        try Self.check(subject)
        if let replyTo { try Self.check(replyTo) }
        let admitted = self.shared.withLockedValue { shared -> NATSOutbox.Append? in
            guard payload.readableBytes + (headers.map { $0.encoded().readableBytes } ?? 0) <= shared.maxPayload else { return nil }
            return shared.outbox.append(subject: subject, replyTo: replyTo, headers: headers, payload: payload)
        }
        switch admitted {
        case nil:
            throw .tooLarge("payload of \(payload.readableBytes) bytes over the server's max_payload \(self.maxPayload)")
        case .queued?:
            return true
        case .scheduleDrain?:
            self.onLoop { $0.drain() }
            return true
        case .dropped?:
            return false
        }
    }

    /// A request: `payload` (and `headers`) to `subject` with a reply subject of this client's inbox, answered
    /// by the first reply. It goes out after every publication queued before it. - Throws:
    /// ``NATSError/notConnected`` at once while the link is down (nothing waits for a reconnect),
    /// ``NATSError/requestTimeout``, ``NATSError/noResponders(_:)``.
    public func request(_ payload: ByteBuffer, to subject: String, headers: NATSHeaders? = nil, timeout: TimeAmount) async throws(NATSError) -> NATSMessage {
        try Self.check(subject)
        do {
            return try await self.requestFuture(payload, to: subject, headers: headers, timeout: timeout).get()
        } catch let error as NATSError {
            throw error
        } catch {
            throw .io("\(error)")
        }
    }

    /// ``request(_:to:headers:timeout:)`` as a future (completed on ``eventLoop``), for callers on a loop.
    public func requestFuture(_ payload: ByteBuffer, to subject: String, headers: NATSHeaders? = nil, timeout: TimeAmount) -> EventLoopFuture<NATSMessage> {
        if self.eventLoop.inEventLoop {
            return self.driver.value.request(subject: subject, headers: headers, payload: payload, timeout: timeout)
        }
        return self.eventLoop.flatSubmit { self.driver.value.request(subject: subject, headers: headers, payload: payload, timeout: timeout) }
    }

    /// Subscribes to `subject`, now and after every reconnect.
    /// - Returns: the subscription id (at once; the SUB goes out on the loop).
    public func subscribe(_ subject: String) throws(NATSError) -> UInt64 {
        try Self.check(subject)
        let sid = self.shared.withLockedValue { $0.nextSID() }
        self.onLoop { $0.subscribe(sid: sid, subject: subject) }
        return sid
    }

    /// Ends the subscription `sid`; messages already on their way for it are not delivered.
    public func unsubscribe(_ sid: UInt64) {
        self.onLoop { $0.unsubscribe(sid: sid) }
    }

    /// A round trip to the server: when it returns, the server has processed everything written before,
    /// including the publications queued when it was called. - Throws: ``NATSError/notConnected``.
    public func flush() async throws {
        try await self.eventLoop.flatSubmit { self.driver.value.flush() }.get()
    }

    /// Closes the link for good; nothing reconnects after this. What is queued is written first, and the
    /// server's acknowledgement awaited for up to `drainTimeout` (a graceful stop loses nothing on a live link).
    public func shutdown(drainTimeout: TimeAmount = .seconds(1)) async {
        try? await self.eventLoop.flatSubmit { self.driver.value.shutdown(drainTimeout: drainTimeout) }.get()
    }

    /// Runs `body` with the driver on the loop: inline when already there (a publisher on the client's own
    /// loop drains in the same tick), else as a task.
    private func onLoop(_ body: @escaping @Sendable (NATSLinkDriver) -> Void) {
        if self.eventLoop.inEventLoop {
            body(self.driver.value)
        } else {
            self.eventLoop.execute { body(self.driver.value) }
        }
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
