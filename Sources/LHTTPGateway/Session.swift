import LHTTPProtocol
import Logging
import NIOCore

/// One websocket connection as processors and filters see it.
///
/// Confined to its event loop: every method must be called there (processors and filters are).
/// To reply from elsewhere (after an async call), use ``handle``.
public final class Session {
    /// The connection's id.
    public let id: ConnectionID
    /// The event loop the connection lives on.
    public let eventLoop: any EventLoop
    /// The gateway serving this connection.
    public let gateway: Gateway
    /// The gateway's logger with `lhttp.conn` and `lhttp.remote` metadata (made when asked: a session keeps no logger of its
    /// own, a metadata dictionary per idle connection is memory for nothing).
    public var logger: Logger {
        var logger = self.gateway.logger
        logger[metadataKey: "lhttp.conn"] = "\(self.id)"
        if !self.remoteAddress.isEmpty { logger[metadataKey: "lhttp.remote"] = "\(self.remoteAddress)" }
        return logger
    }

    /// The message being processed; nil outside `beforeMessage`/`onMessage`/`afterMessage`.
    /// Processors may change it: subscribers receive it as it is after processing.
    public var message: LHTTPMessage?
    /// The message's multipart parts, set by the built-in multipart filter.
    public var parts: [LHTTPPart] = []
    /// Channels this connection is subscribed to.
    public private(set) var subscriptions: Set<String> = []
    /// Free-form per-connection values for processors and filters.
    public var attributes: [String: String] = [:]

    // The session ↔ transport and session ↔ subscriber references are cycles on purpose while the
    // connection lives; `markClosed` breaks both.
    private var transport: (any SessionTransport)?
    private var subscriber: Subscriber?
    private let slot: LoopSlot
    private var flushPending = false
    private(set) var isClosed = false
    /// A routed message of this session is waiting for the app.
    var isSuspended = false
    /// Messages that arrived meanwhile, in order.
    var backlog: [ByteBuffer] = []
    /// The close code, once known (sent by us or by the peer); nil when the connection just ended.
    public internal(set) var closeCode: UInt16?
    /// Backend calls (the `upstream` header) of this connection in flight, kept by the upstream filter to
    /// bound them per connection.
    public var callsInFlight = 0
    /// The peer's address (`ip:port`), for logs and webhook events.
    public internal(set) var remoteAddress = ""

    init(gateway: Gateway, transport: any SessionTransport, eventLoop: any EventLoop, id: ConnectionID) {
        self.id = id
        self.gateway = gateway
        self.transport = transport
        self.eventLoop = eventLoop
        self.slot = gateway.hub.slot(for: eventLoop)
        self.subscriber = Subscriber(session: self, slot: self.slot)
    }

    /// A thread-safe handle to this session. After close, its calls do nothing.
    public var handle: SessionHandle {
        SessionHandle(subscriber: self.subscriber ?? Subscriber(session: self, slot: self.slot))
    }

    // MARK: Sending

    /// Sends `message` to this connection (text frame, binary if not valid UTF-8).
    public func send(_ message: LHTTPMessage) {
        if message.command == LHTTPMessage.errorCommand, let status = message.headers["status"].flatMap(Int.init) {
            self.gateway.metrics.errorReply(status: status)
        }
        self.send(serialized: message.serialized())
    }

    /// Sends an already serialized LHTTP message.
    public func send(serialized payload: ByteBuffer) {
        self.enqueue(WebSocketFrameBytes.message(payload))
    }

    /// Closes the connection with a websocket close code.
    public func close(code: UInt16 = 1000, reason: String = "") {
        guard !self.isClosed else { return }
        self.closeCode = self.closeCode ?? code
        self.transport?.close(code: code, reason: reason)
    }

    /// Writes a pre-encoded frame; the flush happens once per event-loop tick.
    func enqueue(_ frame: ByteBuffer) {
        self.eventLoop.assertInEventLoop()
        guard !self.isClosed, let transport = self.transport else { return }
        transport.writeFrame(frame)
        if !self.flushPending {
            self.flushPending = true
            self.slot.scheduleFlush(self)
        }
    }

    func flushNow() {
        self.flushPending = false
        self.transport?.flush()
    }

    // MARK: Pub/sub

    /// Subscribes to `channels`; already subscribed channels are left alone.
    /// - Throws: 429 when the connection would exceed `maxSubscriptionsPerConnection`, 503 when the node
    ///   would exceed `maxChannels`; nothing changed then.
    public func subscribe(_ channels: [String]) throws(GatewayError) {
        guard let subscriber = self.subscriber else { return }
        var fresh: [String] = []
        var seen = Set<String>()
        for channel in channels where !self.subscriptions.contains(channel) && seen.insert(channel).inserted {
            fresh.append(channel)
        }
        guard !fresh.isEmpty else { return }
        let caps = self.gateway.caps
        guard self.subscriptions.count + fresh.count <= caps.maxSubscriptionsPerConnection else {
            throw .rejected(status: 429, reason: "subscription limit: at most \(caps.maxSubscriptionsPerConnection) channels per connection")
        }
        guard let created = self.gateway.hub.add(subscriber, to: fresh, maxChannels: caps.maxChannels) else {
            throw .rejected(status: 503, reason: "this node has its maximum of \(caps.maxChannels) channels")
        }
        self.subscriptions.formUnion(fresh)
        if !created.isEmpty { self.gateway.broker.interest(added: created, removed: []) }
    }

    /// Unsubscribes from `channels`; channels not subscribed are ignored.
    public func unsubscribe(_ channels: [String]) {
        guard let subscriber = self.subscriber else { return }
        let present = channels.filter { self.subscriptions.remove($0) != nil }
        guard !present.isEmpty else { return }
        let emptied = self.gateway.hub.remove(subscriber, from: present)
        if !emptied.isEmpty { self.gateway.broker.interest(added: [], removed: emptied) }
    }

    /// Records the connection's close code (the transport calls it for codes it sends or receives).
    public func noteCloseCode(_ code: UInt16) {
        self.closeCode = self.closeCode ?? code
    }

    /// Called once by the gateway when the connection is gone: releases every subscription.
    func markClosed() {
        self.isClosed = true
        self.transport = nil
        guard let subscriber = self.subscriber else { return }
        self.subscriber = nil
        let all = self.subscriptions
        self.subscriptions.removeAll()
        let emptied = self.gateway.hub.remove(subscriber, from: all)
        if !emptied.isEmpty { self.gateway.broker.interest(added: [], removed: emptied) }
    }
}

/// A `Sendable` handle to a session: send to or close the connection from any thread.
public struct SessionHandle: Sendable {
    let subscriber: Subscriber

    public var id: ConnectionID { self.subscriber.id }
    public var eventLoop: any EventLoop { self.subscriber.slot.eventLoop }

    /// Sends `message` to the connection (hops to its event loop).
    public func send(_ message: LHTTPMessage) {
        self.onLoop { $0.send(message) }
    }

    /// Closes the connection.
    public func close(code: UInt16 = 1000, reason: String = "") {
        self.onLoop { $0.close(code: code, reason: reason) }
    }

    /// Runs `body` with the session on its event loop (inline when already there).
    public func withSession(_ body: @escaping @Sendable (Session) -> Void) {
        self.onLoop(body)
    }

    private func onLoop(_ body: @escaping @Sendable (Session) -> Void) {
        let subscriber = self.subscriber
        if subscriber.slot.eventLoop.inEventLoop {
            body(subscriber.session.value)
        } else {
            subscriber.slot.eventLoop.execute { body(subscriber.session.value) }
        }
    }
}
