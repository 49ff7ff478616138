import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The plain listener of `tls.redirect_from`: every request is answered `308 Permanent Redirect` to the
/// same host (its port replaced by the TLS listener's) and target over https, then the connection is
/// closed. Nothing else is served; a request must arrive whole within `requestTimeout` (slow-loris).
enum HTTPSRedirect {
    static func bootstrap(group: any EventLoopGroup, httpsPort: Int, requestTimeout: TimeAmount, logger: Logger) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        HTTPDeadlineHandler(requestTimeout: requestTimeout, keepaliveTimeout: requestTimeout, logger: logger)
                    )
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(Handler(httpsPort: httpsPort))
                }
            }
    }

    /// The `Location` for `target` asked of `host` (the `Host` header, maybe with a port); nil when the
    /// host is missing or not a plain host name or address.
    static func location(host: String?, target: String, httpsPort: Int) -> String? {
        guard var host, !host.isEmpty, target.hasPrefix("/") else { return nil }
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            host = String(host[...close])
        } else if let colon = host.firstIndex(of: ":") {
            host = String(host[..<colon])
        }
        guard host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "@") }) else { return nil }
        return "https://" + host + (httpsPort == 443 ? "" : ":\(httpsPort)") + target
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let httpsPort: Int
        private var head: HTTPRequestHead?

        init(httpsPort: Int) { self.httpsPort = httpsPort }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch Self.unwrapInboundIn(data) {
            case .head(let head): self.head = head
            case .body: break
            case .end:
                guard let head = self.head else { return }
                self.head = nil
                var headers = HTTPHeaders()
                let status: HTTPResponseStatus
                var body = context.channel.allocator.buffer(capacity: 64)
                if let location = HTTPSRedirect.location(host: head.headers.first(name: "host"), target: head.uri, httpsPort: self.httpsPort) {
                    status = .permanentRedirect
                    headers.add(name: "location", value: location)
                    body.writeString("https only: \(location)\n")
                } else {
                    status = .badRequest
                    body.writeString("400 Bad Request: a Host header is needed to redirect to https\n")
                }
                headers.add(name: "content-type", value: "text/plain; charset=utf-8")
                headers.add(name: "content-length", value: String(body.readableBytes))
                headers.add(name: "connection", value: "close")
                context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
                if head.method != .HEAD { context.write(Self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
                let channel = context.channel
                context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }
}
