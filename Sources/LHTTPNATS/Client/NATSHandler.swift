import Foundation
import NIOCore

/// The thin handler of one TCP connection to NATS: parses server ops, runs them through
/// ``NATSConnectionStateMachine`` and does what it returns. Lives on the client's event loop and reports
/// to the ``NATSLinkDriver`` directly (same loop), tagged with its connection attempt.
final class NATSHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let driver: NATSLinkDriver
    /// The link state machine's number for this connection.
    let attempt: Int
    private let connectJSON: String
    private var parser = NATSParser()
    private var machine = NATSConnectionStateMachine()
    /// One entry per PING sent after the handshake: the flush waiting for its PONG, nil for a keep-alive.
    private var pingWaiters: [EventLoopPromise<Void>?] = []
    private var context: ChannelHandlerContext?
    private(set) var failure: NATSError?

    init(driver: NATSLinkDriver, attempt: Int, connectJSON: String) {
        self.driver = driver
        self.attempt = attempt
        self.connectJSON = connectJSON
    }

    var outstandingPings: Int { self.machine.outstandingPings }
    var allocator: ByteBufferAllocator { self.context?.channel.allocator ?? ByteBufferAllocator() }
    var isWritable: Bool { self.context?.channel.isWritable ?? false }
    var closeFuture: EventLoopFuture<Void>? { self.context?.channel.closeFuture }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.parser.append(Self.unwrapInboundIn(data))
        do {
            while let op = try self.parser.next() {
                self.perform(self.machine.received(op), context: context)
                if self.machine.state == .failed { return }
            }
        } catch {
            self.perform(.fail(error), context: context)
        }
    }

    private func perform(_ action: NATSConnectionStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .sendConnect(let maxPayload):
            self.parser.maxPayload = maxPayload
            var buffer = context.channel.allocator.buffer(capacity: self.connectJSON.utf8.count + 24)
            NATSClientOp.connect(self.connectJSON, into: &buffer)
            NATSClientOp.ping(into: &buffer)
            context.writeAndFlush(Self.wrapOutboundOut(buffer), promise: nil)
        case .becomeReady(let maxPayload):
            self.driver.handshakeCompleted(self, maxPayload: maxPayload)
        case .answerPing:
            var buffer = context.channel.allocator.buffer(capacity: 6)
            NATSClientOp.pong(into: &buffer)
            context.writeAndFlush(Self.wrapOutboundOut(buffer), promise: nil)
        case .completePing:
            if !self.pingWaiters.isEmpty { self.pingWaiters.removeFirst()?.succeed(()) }
        case .deliver(let message):
            self.driver.received(message)
        case .report(let error):
            self.driver.serverRefused(error)
        case .fail(let error):
            self.machine.closed()
            self.failure = error
            context.close(promise: nil)
        }
    }

    /// Sends a PING after the handshake; `promise` (if any) completes on its PONG.
    func ping(promise: EventLoopPromise<Void>?) {
        guard let context = self.context, self.machine.state == .ready else {
            promise?.fail(NATSError.notConnected)
            return
        }
        self.machine.pingSent()
        self.pingWaiters.append(promise)
        var buffer = context.channel.allocator.buffer(capacity: 6)
        NATSClientOp.ping(into: &buffer)
        context.writeAndFlush(Self.wrapOutboundOut(buffer), promise: nil)
    }

    /// Writes and flushes `buffer`; dropped when the connection is already gone (the next link re-sends the
    /// subscriptions from the sid table; publications are at most once).
    func write(_ buffer: ByteBuffer) {
        self.context?.writeAndFlush(Self.wrapOutboundOut(buffer), promise: nil)
    }

    /// Closes the connection, recording why (nil: a deliberate close, not a failure).
    func close(because error: NATSError?) {
        if self.failure == nil { self.failure = error }
        self.context?.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.driver.writabilityChanged(self, isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.machine.closed()
        for waiter in self.pingWaiters { waiter?.fail(NATSError.notConnected) }
        self.pingWaiters.removeAll()
        self.driver.linkClosed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.failure == nil { self.failure = .io("\(error)") }
        context.close(promise: nil)
    }
}
