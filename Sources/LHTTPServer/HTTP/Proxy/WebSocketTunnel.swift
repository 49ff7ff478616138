import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// `proxy.websocket: true`: an upgrade on a path that is not one of lhttpd's websocket paths is tunnelled to
/// the backend byte for byte. The request head goes to the backend as received (with this hop's
/// `X-Forwarded-*`); from then on the two sockets are glued: whatever one sends, the other gets (the
/// backend's `101` answer included), with backpressure (a side that does not read stops the other's reading).
///
/// The client connection drops its HTTP handlers once the backend is connected; it stays a plain byte
/// stream (over TLS when the listener has it) until either side closes. The backend connection is made on
/// the client's event loop, so the glue needs no lock.
enum WebSocketTunnel {
    /// Where a backend base URL points: host, port (80 or 443 by default), and whether it is https.
    struct Endpoint: Equatable {
        var host: String
        var port: Int
        var secure: Bool
        /// `scheme://authority` of the base URL; the rest of a target URL is the path to send.
        var origin: String
    }

    /// Parses `http://host[:port][/base]`; nil for anything else.
    static func endpoint(of base: String) -> Endpoint? {
        let lowered = base.lowercased()
        let secure = lowered.hasPrefix("https://")
        guard secure || lowered.hasPrefix("http://") else { return nil }
        let rest = base.dropFirst(secure ? 8 : 7)
        let authority = rest.prefix { $0 != "/" }
        var host = Substring(authority)
        var port = secure ? 443 : 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { guard let value = Int(after.dropFirst()) else { return nil }; port = value }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            guard let value = Int(authority[authority.index(after: colon)...]) else { return nil }
            port = value
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        return Endpoint(host: String(host), port: port, secure: secure, origin: String(base.prefix(base.count - rest.count + authority.count)))
    }

    /// The request head as bytes for the backend: `target` (path and query), the forwarded headers, and the
    /// upgrade's own `Connection` and `Upgrade` (hop-by-hop, but the backend must see them to upgrade).
    static func requestBytes(method: HTTPMethod, target: String, headers: [(name: String, value: String)], upgrade: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 512)
        buffer.writeString("\(method.rawValue) \(target) HTTP/1.1\r\n")
        for (name, value) in headers where ProxyHeaders.isValid(name: name, value: value) {
            buffer.writeString("\(name): \(value)\r\n")
        }
        buffer.writeString("Connection: Upgrade\r\nUpgrade: \(upgrade)\r\n\r\n")
        return buffer
    }

    /// Connects to `endpoint` on `eventLoop`, with `connectTimeout`.
    static func connect(_ endpoint: Endpoint, on eventLoop: any EventLoop, connectTimeout: TimeAmount, glue: GlueHandler) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(glue) }
            }
            .connect(host: endpoint.host, port: endpoint.port)
    }
}

/// One end of a tunnel: what its channel reads is written to the partner's channel, and its channel reads
/// only while the partner's is writable (swift-nio's NIOConnectProxy example, the usual "glue").
final class GlueHandler: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    /// Two handlers, each the other's partner.
    static func matchedPair() -> (GlueHandler, GlueHandler) {
        let first = GlueHandler()
        let second = GlueHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The partner may have held a read while this end was not in its pipeline yet.
        if context.channel.isWritable { self.partner?.partnerBecameWritable() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
    }

    private func partnerWrite(_ data: NIOAny) {
        self.context?.write(data, promise: nil)
    }

    private func partnerFlush() {
        self.context?.flush()
    }

    /// What the partner read last may still be unflushed here: flushed first, so a closing frame is not lost.
    private func partnerWriteEOF() {
        self.context?.flush()
        self.context?.close(mode: .output, promise: nil)
    }

    private func partnerCloseFull() {
        guard let context = self.context else { return }
        let channel = context.channel
        context.writeAndFlush(NIOAny(ByteBuffer())).whenComplete { _ in channel.close(promise: nil) }
    }

    private func partnerBecameWritable() {
        if self.pendingRead {
            self.pendingRead = false
            self.context?.read()
        }
    }

    private var partnerWritable: Bool {
        self.context?.channel.isWritable ?? false
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.partner?.partnerWrite(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.partner?.partnerCloseFull()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            self.partner?.partnerWriteEOF()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.partner?.partnerBecameWritable() }
    }

    func read(context: ChannelHandlerContext) {
        if let partner = self.partner, partner.partnerWritable {
            context.read()
        } else {
            self.pendingRead = true
        }
    }
}
