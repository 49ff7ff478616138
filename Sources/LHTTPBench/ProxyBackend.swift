import NIOCore
import NIOHTTP1
import NIOPosix

/// The backend of the `proxy` scenario (`lhttp-bench backend`): the fast HTTP/1.1 keep-alive server that
/// lhttpd's `proxy.backend` and nginx's `proxy_pass` both point at in the same run.
///
/// - `GET /small`: 200 with ``ProxyBody/small`` (100 bytes, `Content-Length`).
/// - `GET /large?n=BYTES`: 200 with `Content-Length: BYTES`, the body ``ProxyBody/byte(at:)`` streamed from one
///   preallocated 256 KiB buffer with backpressure (written only while the channel is writable).
/// - anything else: 404.
public enum ProxyBackend {
    /// Binds 127.0.0.1:`port` on `group`; the returned channel closes when the server does.
    public static func start(group: any EventLoopGroup, port: Int) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 512 * 1024, high: 1024 * 1024))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(Handler())
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private static let chunk = ByteBuffer(bytes: ProxyBody.pattern(count: ProxyBody.period))
        private static let small = ByteBuffer(bytes: ProxyBody.small)

        private var head: HTTPRequestHead?
        /// Bytes of the large body still to write (0: none streaming).
        private var remaining = 0
        private var keepAlive = true

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch Self.unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
            case .body:
                break
            case .end:
                guard let head = self.head else { return }
                self.head = nil
                self.respond(to: head, context: context)
            }
        }

        private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
            self.keepAlive = head.isKeepAlive
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "application/octet-stream")
            if !self.keepAlive { headers.add(name: "connection", value: "close") }
            switch path {
            case "/small":
                headers.add(name: "content-length", value: String(ProxyBody.small.count))
                context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
                context.write(Self.wrapOutboundOut(.body(.byteBuffer(Self.small))), promise: nil)
                self.end(context: context)
            case "/large":
                let bytes = Self.query(head.uri, "n").flatMap(Int.init) ?? 0
                headers.add(name: "content-length", value: String(max(bytes, 0)))
                context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
                self.remaining = max(bytes, 0)
                self.pump(context: context)
            default:
                headers.replaceOrAdd(name: "content-length", value: "0")
                context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .notFound, headers: headers))), promise: nil)
                self.end(context: context)
            }
        }

        /// Writes the large body while the channel takes it; resumed by ``channelWritabilityChanged(context:)``.
        private func pump(context: ChannelHandlerContext) {
            while self.remaining > 0, context.channel.isWritable {
                let length = min(self.remaining, ProxyBody.period)
                self.remaining -= length
                // The body starts at offset 0 of the pattern and every chunk is a whole period (but the last).
                context.writeAndFlush(Self.wrapOutboundOut(.body(.byteBuffer(Self.chunk.getSlice(at: 0, length: length)!))), promise: nil)
            }
            if self.remaining == 0 { self.end(context: context) }
        }

        private func end(context: ChannelHandlerContext) {
            let close = !self.keepAlive
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).whenComplete { _ in
                if close { context.close(promise: nil) }
            }
        }

        func channelWritabilityChanged(context: ChannelHandlerContext) {
            if self.remaining > 0, context.channel.isWritable { self.pump(context: context) }
            context.fireChannelWritabilityChanged()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }

        static func query(_ uri: String, _ name: String) -> String? {
            guard let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return nil }
            for pair in query.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0] == name { return String(parts[1]) }
            }
            return nil
        }
    }
}

/// What the proxy backend sends, so that the client can check every byte it receives.
public enum ProxyBody {
    /// The large body repeats with this period (and is written in chunks of it).
    public static let period = 256 * 1024

    /// The `/small` body: 100 bytes.
    public static let small: [UInt8] = {
        let text = Array("lhttp-bench proxy small response ".utf8)
        return text + pattern(count: 100 - text.count)
    }()

    /// Byte `offset` of a large body: (offset mod 251), a prime so it does not line up with buffer sizes.
    public static func byte(at offset: Int) -> UInt8 { UInt8(truncatingIfNeeded: (offset % period) % 251) }

    static func pattern(count: Int) -> [UInt8] { (0..<count).map { byte(at: $0) } }
}
