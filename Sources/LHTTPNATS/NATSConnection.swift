import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization

/// A connection to one NATS server: handshake (INFO → CONNECT), PUB, SUB, UNSUB, PING/PONG, MSG.
///
/// This is the protocol core; reconnecting with backoff, re-subscribing and buffering while disconnected
/// belong to the broker layer built on it (cluster issue).
public final class NATSConnection: Sendable {
    private let channel: any Channel
    private let handler: NIOLoopBound<NATSHandler>
    private let nextSID = Atomic<UInt64>(0)
    /// The server's `max_payload` from its INFO.
    public let maxPayload: Int

    private init(channel: any Channel, handler: NIOLoopBound<NATSHandler>, maxPayload: Int) {
        self.channel = channel
        self.handler = handler
        self.maxPayload = maxPayload
    }

    /// Connects and completes the handshake (the server answered our first PING).
    /// - Parameter onMessage: called on the connection's event loop for every MSG (subject, sid, payload).
    public static func connect(
        host: String,
        port: Int,
        name: String = "lhttpd",
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onMessage: @escaping @Sendable (String, UInt64, ByteBuffer) -> Void
    ) async throws -> NATSConnection {
        let eventLoop = eventLoopGroup.next()
        let ready = eventLoop.makePromise(of: Int.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(.seconds(5))
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(NATSHandler(name: name, ready: ready, onMessage: onMessage))
                    }
                }
                .connect(host: host, port: port)
                .get()
        } catch {
            ready.fail(error)  // no handler ever owned it
            throw error
        }
        // Bounded: a server that never completes the handshake gets closed, which fails `ready`.
        let timeout = eventLoop.scheduleTask(in: .seconds(5)) { channel.close(promise: nil) }
        defer { timeout.cancel() }
        let maxPayload: Int
        do {
            maxPayload = try await ready.futureResult.get()
        } catch {
            try? await channel.close()
            throw error
        }
        let handler = try await eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: NATSHandler.self), eventLoop: eventLoop)
        }.get()
        return NATSConnection(channel: channel, handler: handler, maxPayload: maxPayload)
    }

    /// Publishes `payload` on `subject`.
    public func publish(_ payload: ByteBuffer, to subject: String) throws(NATSError) {
        guard payload.readableBytes <= self.maxPayload else {
            throw .tooLarge("payload of \(payload.readableBytes) bytes over the server's \(self.maxPayload)")
        }
        try Self.check(subject)
        var buffer = self.channel.allocator.buffer(capacity: payload.readableBytes + subject.utf8.count + 24)
        NATSClientOp.publish(subject: subject, payload: payload, into: &buffer)
        self.channel.writeAndFlush(buffer, promise: nil)
    }

    /// Subscribes to `subject`. - Returns: the subscription id.
    public func subscribe(_ subject: String) throws(NATSError) -> UInt64 {
        try Self.check(subject)
        let sid = self.nextSID.add(1, ordering: .relaxed).newValue
        var buffer = self.channel.allocator.buffer(capacity: subject.utf8.count + 32)
        NATSClientOp.subscribe(subject: subject, sid: sid, into: &buffer)
        self.channel.writeAndFlush(buffer, promise: nil)
        return sid
    }

    public func unsubscribe(_ sid: UInt64) {
        var buffer = self.channel.allocator.buffer(capacity: 32)
        NATSClientOp.unsubscribe(sid: sid, into: &buffer)
        self.channel.writeAndFlush(buffer, promise: nil)
    }

    /// Round trip to the server: when it returns, the server has processed everything sent before.
    public func flush() async throws {
        let handler = self.handler
        try await self.channel.eventLoop.flatSubmit { handler.value.ping() }.get()
    }

    public func close() async {
        try? await self.channel.close()
    }

    /// Subjects we send are plain tokens: no whitespace, no empty token (wildcards are the subscriber's
    /// business, and the broker never builds one: see ``NATSSubject``).
    static func check(_ subject: String) throws(NATSError) {
        guard !subject.isEmpty, !subject.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }),
            !subject.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty)
        else { throw .invalidSubject(subject) }
    }
}

/// The connection's one handler: parses server ops, answers PINGs, completes the handshake and flushes.
final class NATSHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let name: String
    private let ready: EventLoopPromise<Int>
    private let onMessage: @Sendable (String, UInt64, ByteBuffer) -> Void
    private var parser = NATSParser()
    private var handshakeDone = false
    /// The handshake's PONG arrived (`ready` completed).
    private var isReady = false
    private var pendingPongs: [EventLoopPromise<Void>] = []
    private var context: ChannelHandlerContext?

    init(name: String, ready: EventLoopPromise<Int>, onMessage: @escaping @Sendable (String, UInt64, ByteBuffer) -> Void) {
        self.name = name
        self.ready = ready
        self.onMessage = onMessage
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.parser.append(Self.unwrapInboundIn(data))
        do {
            while let op = try self.parser.next() { self.handle(op, context: context) }
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }

    private func handle(_ op: NATSServerOp, context: ChannelHandlerContext) {
        switch op {
        case .info(let json):
            guard !self.handshakeDone else { return }
            let info = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any]
            if let maxPayload = info?["max_payload"] as? Int, maxPayload > 0 { self.parser.maxPayload = maxPayload }
            let connect = #"{"verbose":false,"pedantic":false,"lang":"swift","version":"0.1","protocol":1,"name":"\#(self.name)"}"#
            var buffer = context.channel.allocator.buffer(capacity: 160)
            NATSClientOp.connect(connect, into: &buffer)
            NATSClientOp.ping(into: &buffer)
            context.writeAndFlush(Self.wrapOutboundOut(buffer), promise: nil)
            self.handshakeDone = true
        case .ping:
            var buffer = context.channel.allocator.buffer(capacity: 6)
            NATSClientOp.pong(into: &buffer)
            context.writeAndFlush(Self.wrapOutboundOut(buffer), promise: nil)
        case .pong:
            if !self.isReady {
                // The answer to the handshake's PING: CONNECT was accepted.
                self.isReady = true
                self.ready.succeed(self.parser.maxPayload)
            } else if !self.pendingPongs.isEmpty {
                self.pendingPongs.removeFirst().succeed(())
            }
        case .message(let subject, let sid, _, let payload):
            self.onMessage(subject, sid, payload)
        case .ok:
            break
        case .error(let message):
            context.fireErrorCaught(NATSError.server(message))
        }
    }

    /// Sends PING; the future completes on its PONG.
    func ping() -> EventLoopFuture<Void> {
        guard let context = self.context else { return self.ready.futureResult.eventLoop.makeFailedFuture(NATSError.notConnected) }
        let promise = context.eventLoop.makePromise(of: Void.self)
        self.pendingPongs.append(promise)
        var buffer = context.channel.allocator.buffer(capacity: 6)
        NATSClientOp.ping(into: &buffer)
        context.writeAndFlush(Self.wrapOutboundOut(buffer), promise: nil)
        return promise.futureResult
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !self.isReady {
            self.isReady = true
            self.ready.fail(NATSError.notConnected)
        }
        for promise in self.pendingPongs { promise.fail(NATSError.notConnected) }
        self.pendingPongs.removeAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
