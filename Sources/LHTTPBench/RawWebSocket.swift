import Foundation
import NIOCore
import NIOPosix

/// A lean websocket client for load generation: upgrades with a hand-written request, then parses
/// server frames straight out of the read buffer (no per-frame objects), and hands payload slices to
/// a ``BenchSink``. With NATS framing, the frames' payloads are one NATS byte stream, parsed in place too
/// (``NATSStreamParser``), and the sink gets each MSG payload. Everything runs on one event loop.
final class RawWebSocketHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What a websocket message is to the sink.
    enum Framing {
        /// Each websocket message is one delivery (LHTTP, Nchan).
        case messages
        /// The payloads are a NATS protocol stream: each MSG is a delivery; PING is answered with PONG.
        case nats
    }

    private let host: String
    private let path: String
    private let index: Int
    private let sink: any BenchSink
    private let upgraded: EventLoopPromise<Void>
    private var handshakeDone = false
    private var upgradeCompleted = false
    private var pending: ByteBuffer?
    private var fragments: ByteBuffer?
    private var nats: NATSStreamParser?
    /// Our close frame went out (``StartClose``): the server's close answers it, and the server closes the TCP
    /// connection first (RFC 6455 7.1.1), so the client does not hold the TIME_WAIT of every churned connection.
    private var closeSent = false

    /// Sent down the pipeline (`fireUserInboundEventTriggered`) to close cleanly: the handler sends a close
    /// frame with `code` and waits for the server's close and its end of the connection.
    struct StartClose {
        var code: UInt16 = 1000
    }

    init(host: String, path: String, index: Int, sink: any BenchSink, framing: Framing = .messages, upgraded: EventLoopPromise<Void>) {
        self.host = host
        self.path = path
        self.index = index
        self.sink = sink
        self.upgraded = upgraded
        switch framing {
        case .messages: self.nats = nil
        case .nats: self.nats = NATSStreamParser()
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        let request = "GET \(self.path) HTTP/1.1\r\nHost: \(self.host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: bGh0dHAtYmVuY2gtY2xpZW50\r\nSec-WebSocket-Version: 13\r\n\r\n"
        context.writeAndFlush(Self.wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !self.upgradeCompleted {
            self.upgradeCompleted = true
            self.upgraded.fail(BenchError.connectionClosed("websocket \(self.path) before upgrade"))
        }
        self.sink.closed(self.index)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let close = event as? StartClose else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        guard self.handshakeDone, !self.closeSent else { return }
        self.closeSent = true
        let code = close.code
        context.writeAndFlush(
            Self.wrapOutboundOut(BenchFrames.masked(opcode: 0x8, payload: [UInt8(code >> 8), UInt8(code & 0xFF)])), promise: nil
        )
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = Self.unwrapInboundIn(data)
        if var pending = self.pending {
            self.pending = nil
            pending.writeBuffer(&input)
            input = pending
        }
        if !self.handshakeDone {
            guard let end = input.readableBytesView.firstRange(of: [13, 10, 13, 10]) else {
                self.pending = input
                return
            }
            let headLength = end.upperBound - input.readerIndex
            let head = input.readString(length: headLength) ?? ""
            self.upgradeCompleted = true
            guard head.hasPrefix("HTTP/1.1 101") else {
                self.upgraded.fail(BenchError.upgradeRefused("\(self.path): \(head.prefix(while: { $0 != "\r" }))"))
                context.close(promise: nil)
                return
            }
            self.handshakeDone = true
            self.upgraded.succeed(())
        }
        self.parseFrames(&input, context: context)
        if input.readableBytes > 0 { self.pending = input }
    }

    /// Parses every complete frame in `input` in place (one pass over the raw bytes), leaving a partial
    /// frame unread.
    private func parseFrames(_ input: inout ByteBuffer, context: ChannelHandlerContext) {
        var control: [(opcode: UInt8, payload: [UInt8])] = []
        var natsPings = 0
        var natsFailure: String?
        let consumed: Int = input.withUnsafeReadableBytes { raw in
            var offset = 0
            let count = raw.count
            while count - offset >= 2 {
                let first = raw[offset]
                let second = raw[offset + 1]
                var headerLength = 2
                var length = Int(second & 0x7F)
                if length == 126 {
                    guard count - offset >= 4 else { break }
                    length = Int(raw[offset + 2]) << 8 | Int(raw[offset + 3])
                    headerLength = 4
                } else if length == 127 {
                    guard count - offset >= 10 else { break }
                    length = 0
                    for i in 2..<10 { length = length << 8 | Int(raw[offset + i]) }
                    headerLength = 10
                }
                if second & 0x80 != 0 { headerLength += 4 }  // servers do not mask; tolerate it
                guard count - offset >= headerLength + length else { break }
                let payload = UnsafeRawBufferPointer(rebasing: raw[(offset + headerLength)..<(offset + headerLength + length)])
                let opcode = first & 0x0F
                let fin = first & 0x80 != 0
                if opcode <= 0x2, self.nats != nil {
                    // Frame boundaries mean nothing to NATS: every data payload continues the stream.
                    if natsFailure == nil {
                        do {
                            try self.nats!.parse(payload) { event in
                                switch event {
                                case .message(let body): self.sink.received(body, from: self.index)
                                case .ping: natsPings += 1
                                case .error(let text): natsFailure = text
                                case .pong, .ok, .info: break
                                }
                            }
                        } catch {
                            natsFailure = "\(error)"
                        }
                    }
                } else if opcode <= 0x2 {
                    if fin && opcode != 0 && self.fragments == nil {
                        self.sink.received(payload, from: self.index)
                    } else {
                        self.fragment(payload, fin: fin)
                    }
                } else {
                    control.append((opcode, Array(payload)))
                }
                offset += headerLength + length
            }
            return offset
        }
        input.moveReaderIndex(forwardBy: consumed)
        if natsPings > 0 {
            var pongs = context.channel.allocator.buffer(capacity: 16 * natsPings)
            for _ in 0..<natsPings { BenchFrames.masked(opcode: 0x2, payload: Array("PONG\r\n".utf8), into: &pongs) }
            context.writeAndFlush(Self.wrapOutboundOut(pongs), promise: nil)
        }
        if let natsFailure {
            // -ERR or a stream that is not NATS: the server closes after -ERR anyway; the sink counts the close.
            FileHandle.standardError.write(Data("lhttp-bench: NATS connection \(self.index): \(natsFailure)\n".utf8))
            context.close(promise: nil)
            return
        }
        for (opcode, payload) in control {
            switch opcode {
            case 0x9:
                context.writeAndFlush(Self.wrapOutboundOut(BenchFrames.masked(opcode: 0xA, payload: payload)), promise: nil)
            case 0x8:
                self.sink.closeFrame(payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil, from: self.index)
                // Our own close answered: the server ends the connection (the sink's owner times it out if not).
                if self.closeSent { continue }
                context.writeAndFlush(Self.wrapOutboundOut(BenchFrames.masked(opcode: 0x8, payload: [0x03, 0xE8])), promise: nil)
                context.close(promise: nil)
            default:
                break
            }
        }
    }

    /// Reassembles a fragmented message (rare: neither server fragments small messages).
    private func fragment(_ payload: UnsafeRawBufferPointer, fin: Bool) {
        var fragments = self.fragments ?? ByteBuffer()
        self.fragments = nil
        fragments.writeBytes(payload)
        if fin {
            fragments.withUnsafeReadableBytes { self.sink.received($0, from: self.index) }
        } else {
            self.fragments = fragments
        }
    }
}

/// Client (masked) frames.
enum BenchFrames {
    static func masked(opcode: UInt8, payload: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(payload.count + 14)
        masked(opcode: opcode, payload: payload, into: &buffer)
        return buffer
    }

    static func masked(opcode: UInt8, payload: [UInt8], into buffer: inout ByteBuffer) {
        buffer.writeInteger(0x80 | opcode)
        if payload.count < 126 {
            buffer.writeInteger(0x80 | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            buffer.writeInteger(UInt8(0x80 | 126))
            buffer.writeInteger(UInt16(payload.count))
        } else {
            buffer.writeInteger(UInt8(0x80 | 127))
            buffer.writeInteger(UInt64(payload.count))
        }
        let key: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
        buffer.writeBytes(key)
        buffer.writeBytes(payload.enumerated().map { $0.element ^ key[$0.offset & 3] })
    }
}

/// Opens bench websocket connections on one event loop.
enum RawWebSocket {
    /// Connects and upgrades; the future completes once the server answered 101.
    static func connect(
        on eventLoop: any EventLoop,
        host: String,
        port: Int,
        path: String,
        index: Int,
        sink: NIOLoopBound<any BenchSink>,
        framing: RawWebSocketHandler.Framing = .messages,
        receiveBuffer: Int? = nil
    ) -> EventLoopFuture<any Channel> {
        let upgraded = eventLoop.makePromise(of: Void.self)
        var bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(10))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
        if let receiveBuffer {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBuffer))
        }
        return bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = RawWebSocketHandler(
                        host: "\(host):\(port)",
                        path: path,
                        index: index,
                        sink: sink.value,
                        framing: framing,
                        upgraded: upgraded
                    )
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: host, port: port)
            .flatMap { channel in upgraded.futureResult.map { channel } }
    }

    /// Sends messages as masked frames (text unless `opcode` says otherwise), flushed once.
    static func send(_ texts: [String], opcode: UInt8 = 0x1, on channel: any Channel) {
        guard !texts.isEmpty else { return }
        var buffer = channel.allocator.buffer(capacity: 256)
        for text in texts { BenchFrames.masked(opcode: opcode, payload: Array(text.utf8), into: &buffer) }
        channel.writeAndFlush(buffer, promise: nil)
    }
}
