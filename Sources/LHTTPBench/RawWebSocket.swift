import NIOCore
import NIOPosix

/// A lean websocket client for load generation: upgrades with a hand-written request, then parses
/// server frames straight out of the read buffer (no per-frame objects), and hands payload slices to
/// a ``BenchSink``. Everything runs on one event loop.
final class RawWebSocketHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let host: String
    private let path: String
    private let index: Int
    private let sink: any BenchSink
    private let upgraded: EventLoopPromise<Void>
    private var handshakeDone = false
    private var upgradeCompleted = false
    private var pending: ByteBuffer?
    private var fragments: ByteBuffer?

    init(host: String, path: String, index: Int, sink: any BenchSink, upgraded: EventLoopPromise<Void>) {
        self.host = host
        self.path = path
        self.index = index
        self.sink = sink
        self.upgraded = upgraded
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
                if opcode <= 0x2 {
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
        for (opcode, payload) in control {
            switch opcode {
            case 0x9:
                context.writeAndFlush(Self.wrapOutboundOut(BenchFrames.masked(opcode: 0xA, payload: payload)), promise: nil)
            case 0x8:
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
                        upgraded: upgraded
                    )
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: host, port: port)
            .flatMap { channel in upgraded.futureResult.map { channel } }
    }

    /// Sends text messages as masked frames, flushed once.
    static func send(_ texts: [String], on channel: any Channel) {
        var buffer = channel.allocator.buffer(capacity: 256)
        for text in texts { BenchFrames.masked(opcode: 0x1, payload: Array(text.utf8), into: &buffer) }
        channel.writeAndFlush(buffer, promise: nil)
    }
}
