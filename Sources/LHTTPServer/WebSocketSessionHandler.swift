import LHTTPGateway
import Logging
import NIOCore
import NIOWebSocket

/// The one handler of an upgraded connection: owns its ``Session``, hands complete messages to the
/// gateway, answers control frames, and maps errors to close codes.
///
/// Outbound frames are pre-encoded (``WebSocketFrameBytes``) and written through the context of NIO's
/// `WebSocketFrameEncoder`, i.e. below it, so a publish's one buffer goes to every socket untouched.
final class WebSocketSessionHandler: ChannelInboundHandler, SessionTransport {
    typealias InboundIn = WebSocketFrame

    private let gateway: Gateway
    private let maxMessageBytes: Int
    private let closeTimeout: TimeAmount
    private var session: Session?
    private var writeContext: ChannelHandlerContext?
    private var context: ChannelHandlerContext?
    private var closeSent = false
    /// The channel's writability, tracked from `channelWritabilityChanged` (asking the channel on every
    /// delivery cost 10% of fan-out CPU).
    private var isWritable = true
    private var assembler: MessageAssembler
    /// The one frame written since the last flush, or the copy of several (nil between ticks: no idle memory).
    private var pendingFrame: ByteBuffer?
    private var pendingBatch: ByteBuffer?

    /// The id chosen during the upgrade (the connect hook saw it), and what the hook asked for on open.
    private let id: ConnectionID
    private let onOpen: (@Sendable (Session) -> Void)?
    /// Keep-alive bookkeeping, read by the loop's ``KeepAliveSweeper``.
    private let sweeper: KeepAliveSweeper?
    var sweepIndex = -1
    private(set) var lastReceivedNanos: UInt64 = 0
    private(set) var lastPingNanos: UInt64 = 0

    init(
        gateway: Gateway,
        maxMessageBytes: Int,
        id: ConnectionID = .next(),
        onOpen: (@Sendable (Session) -> Void)? = nil,
        sweeper: KeepAliveSweeper? = nil,
        closeTimeout: TimeAmount = .seconds(3)
    ) {
        self.gateway = gateway
        self.sweeper = sweeper
        self.id = id
        self.onOpen = onOpen
        self.maxMessageBytes = maxMessageBytes
        self.closeTimeout = closeTimeout
        self.assembler = MessageAssembler(maxMessageBytes: maxMessageBytes)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // Writing from the encoder's own context sends bytes from just below it.
        self.writeContext = try? context.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self)
        let remote = context.channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? ""
        let session = self.gateway.open(transport: self, eventLoop: context.eventLoop, remoteAddress: remote, id: self.id)
        self.session = session
        self.lastReceivedNanos = NIODeadline.now().uptimeNanoseconds
        self.sweeper?.add(self)
        self.onOpen?(session)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.finish()
        self.context = nil
        self.writeContext = nil
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.isWritable = context.channel.isWritable
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.finish()
        context.fireChannelInactive()
    }

    private func finish() {
        guard let session = self.session else { return }
        self.session = nil
        self.sweeper?.remove(self)
        self.gateway.close(session)
    }

    /// A keep-alive ping (the sweeper saw nothing from the peer for `ping_interval_s`).
    func sendPing(now: UInt64) {
        guard !self.closeSent else { return }
        self.lastPingNanos = now
        self.writeFrame(WebSocketFrameBytes.frame(opcode: WebSocketFrameBytes.pingOpcode, payload: ByteBuffer()))
        self.flush()
    }

    /// Nothing (not even a pong) arrived for `idle_timeout_s`.
    func closeIdle() {
        self.session?.logger.warning("closing idle connection", metadata: ["lhttp.close_code": "\(CloseCode.idleTimeout)"])
        self.close(code: CloseCode.idleTimeout, reason: "idle timeout")
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.lastReceivedNanos = NIODeadline.now().uptimeNanoseconds
        let frame = Self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary, .continuation:
            guard let session = self.session, !self.closeSent else { return }
            var payload = frame.data
            if let key = frame.maskKey { payload.unmask(key) }
            do {
                guard let message = try self.assembler.receive(opcode: frame.opcode, fin: frame.fin, payload: payload) else { return }
                self.gateway.receive(message, on: session)
            } catch {
                self.errorCaught(context: context, error: error)
            }
        case .ping:
            guard !self.closeSent else { return }
            var payload = frame.data
            if let key = frame.maskKey { payload.unmask(key) }
            self.writeFrame(WebSocketFrameBytes.frame(opcode: WebSocketFrameBytes.pongOpcode, payload: payload))
            self.flush()
        case .connectionClose:
            self.receivedClose(frame, context: context)
        case .pong:
            break
        default:
            self.close(code: CloseCode.protocolError, reason: "unknown opcode")
        }
    }

    /// The peer closed: answer with the same code (RFC 6455 5.5.1) unless we already sent ours, then close.
    private func receivedClose(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        guard !self.closeSent, let writeContext = self.writeContext else {
            context.close(promise: nil)
            return
        }
        self.closeSent = true
        var data = frame.data
        if let key = frame.maskKey { data.unmask(key) }
        let code = data.readInteger(as: UInt16.self) ?? CloseCode.normal
        self.session?.noteCloseCode(code)
        self.finish()
        let channel = context.channel
        self.writeBatch(to: writeContext)
        writeContext.writeAndFlush(NIOAny(WebSocketFrameBytes.close(code: code, reason: ""))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let (code, reason) = CloseCode.forError(error, maxMessageBytes: self.maxMessageBytes) else {
            self.session?.logger.debug("connection error", metadata: ["lhttp.error": "\(error)"])
            context.close(promise: nil)
            return
        }
        self.session?.logger.warning(
            "closing connection",
            metadata: ["lhttp.close_code": "\(code)", "lhttp.reason": "\(reason)"]
        )
        self.close(code: code, reason: reason)
    }

    // MARK: SessionTransport

    func writeFrame(_ frame: ByteBuffer) {
        guard !self.closeSent, let writeContext = self.writeContext else { return }
        // Not writable means more than `max_outbound_bytes` are already queued (the high watermark):
        // the client is not keeping up, and queueing more would grow memory without bound.
        guard self.isWritable else {
            self.session?.logger.warning("closing slow consumer", metadata: ["lhttp.close_code": "\(CloseCode.slowConsumer)"])
            self.close(code: CloseCode.slowConsumer, reason: "slow consumer")
            return
        }
        guard frame.readableBytes <= Self.coalescedFrameBytes else {
            self.writeBatch(to: writeContext)
            writeContext.write(NIOAny(frame), promise: nil)
            return
        }
        // Small frames written in the same tick are copied into one buffer per connection: a 100-byte
        // copy costs far less than a pipeline write, a pending-write entry and an iovec per frame
        // (measured: +40% deliveries/s). A lone frame, and large frames, keep the shared zero-copy path.
        // (Two optionals rather than an enum: the batch is appended to in place, without a copy.)
        if self.pendingBatch != nil {
            self.pendingBatch!.writeImmutableBuffer(frame)
            if self.pendingBatch!.readableBytes >= Self.batchFlushBytes { self.writeBatch(to: writeContext) }
        } else if let first = self.pendingFrame {
            self.pendingFrame = nil
            var batch = writeContext.channel.allocator.buffer(capacity: 4 * (first.readableBytes + frame.readableBytes))
            batch.writeImmutableBuffer(first)
            batch.writeImmutableBuffer(frame)
            self.pendingBatch = batch
        } else {
            self.pendingFrame = frame
        }
    }

    /// Frames up to this size are coalesced; larger ones are written as the shared buffer.
    static let coalescedFrameBytes = 1024
    /// A batch this large goes to the channel at once (so the write-buffer watermark sees it).
    static let batchFlushBytes = 64 * 1024

    /// Hands the frames written since the last flush to the channel, in order.
    private func writeBatch(to writeContext: ChannelHandlerContext) {
        if let frame = self.pendingFrame {
            self.pendingFrame = nil
            writeContext.write(NIOAny(frame), promise: nil)
        } else if let batch = self.pendingBatch {
            self.pendingBatch = nil
            writeContext.write(NIOAny(batch), promise: nil)
        }
    }

    func flush() {
        guard let writeContext = self.writeContext else { return }
        // One pipeline pass for the pending bytes and the flush.
        if let frame = self.pendingFrame {
            self.pendingFrame = nil
            writeContext.writeAndFlush(NIOAny(frame), promise: nil)
        } else if let batch = self.pendingBatch {
            self.pendingBatch = nil
            writeContext.writeAndFlush(NIOAny(batch), promise: nil)
        } else {
            writeContext.flush()
        }
    }

    /// Sends the close frame, half-closes our side so it is not lost to a reset while the peer is
    /// still sending, and closes fully when the peer closes or after `closeTimeout`.
    func close(code: UInt16, reason: String) {
        guard !self.closeSent, let writeContext = self.writeContext, let context = self.context else { return }
        self.closeSent = true
        self.gateway.metrics.closed(code: code)
        self.session?.noteCloseCode(code)
        self.writeBatch(to: writeContext)
        let closeFrame = WebSocketFrameBytes.close(code: code, reason: reason)
        let channel = context.channel
        writeContext.writeAndFlush(NIOAny(closeFrame)).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
        }
        let timeout = self.closeTimeout
        context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        // The session ends with our close frame: release its subscriptions and run its close hooks now,
        // not when the peer finally goes away.
        self.finish()
    }
}

extension ByteBuffer {
    /// Unmasks a client frame's payload in place, eight bytes at a time (NIO's `webSocketUnmask`
    /// goes byte by byte, and this runs for every inbound message).
    mutating func unmask(_ key: WebSocketMaskingKey) {
        let k = (UInt32(key[0]) | UInt32(key[1]) << 8 | UInt32(key[2]) << 16 | UInt32(key[3]) << 24)
        let wide = UInt64(k) | UInt64(k) << 32
        self.withUnsafeMutableReadableBytes { bytes in
            var index = 0
            let count = bytes.count
            while index + 8 <= count {
                let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                bytes.storeBytes(of: word ^ wide, toByteOffset: index, as: UInt64.self)
                index += 8
            }
            while index < count {
                bytes[index] ^= key[index & 3]
                index += 1
            }
        }
    }
}
