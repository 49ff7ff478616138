import NIOCore
import NIOHTTP1
import NIOPosix

/// A minimal HTTP backend for the `upstream` and `webhook` scenarios, on the bench's event loop: reports
/// each request body to its owner as it arrives and answers `200` with what the owner returns (`ok` by default).
final class BenchBackend {
    let channel: any Channel

    private init(channel: any Channel) { self.channel = channel }

    /// Listens on 127.0.0.1:`port`; `onBody` runs on `eventLoop` for every complete request body.
    static func start(
        on eventLoop: any EventLoop,
        port: Int,
        onBody: NIOLoopBound<(ByteBuffer) -> ByteBuffer?>
    ) async throws -> NIOLoopBound<BenchBackend> {
        let channel = try await ServerBootstrap(group: eventLoop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(onBody: onBody.value))
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
        return try await eventLoop.submit { NIOLoopBound(BenchBackend(channel: channel), eventLoop: eventLoop) }.get()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        private let onBody: (ByteBuffer) -> ByteBuffer?
        private var body = ByteBuffer()
        private var keepAlive = true

        init(onBody: @escaping (ByteBuffer) -> ByteBuffer?) { self.onBody = onBody }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch Self.unwrapInboundIn(data) {
            case .head(let head):
                self.body.clear()
                self.keepAlive = head.isKeepAlive
            case .body(var chunk):
                self.body.writeBuffer(&chunk)
            case .end:
                let answer = self.onBody(self.body) ?? ByteBuffer(string: "ok")
                var headers = HTTPHeaders()
                headers.add(name: "content-length", value: String(answer.readableBytes))
                headers.add(name: "content-type", value: "text/plain")
                context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.write(Self.wrapOutboundOut(.body(.byteBuffer(answer))), promise: nil)
                context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
