import NIOCore
import NIOHTTP1
import NIOPosix

/// One keep-alive HTTP/1.1 connection that may pipeline requests; responses are reported in order.
/// Lives on the bench's one event loop.
final class HTTPLoadConnection {
    let channel: any Channel
    private let handler: ResponseHandler
    private let hostHeader: String

    private init(channel: any Channel, handler: ResponseHandler, hostHeader: String) {
        self.channel = channel
        self.handler = handler
        self.hostHeader = hostHeader
    }

    /// Requests written whose response has not arrived yet.
    var inFlight: Int { self.handler.expected }

    static func connect(on eventLoop: any EventLoop, host: String, port: Int) -> EventLoopFuture<NIOLoopBound<HTTPLoadConnection>> {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(10))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseHandler())
                }
            }
            .connect(host: host, port: port)
            .flatMapThrowing { channel in
                let handler = try channel.pipeline.syncOperations.handler(type: ResponseHandler.self)
                let connection = HTTPLoadConnection(channel: channel, handler: handler, hostHeader: "\(host):\(port)")
                return NIOLoopBound(connection, eventLoop: channel.eventLoop)
            }
    }

    /// Called with each response status, in request order.
    var onResponse: ((Int) -> Void)? {
        get { self.handler.onResponse }
        set { self.handler.onResponse = newValue }
    }

    /// Called with every piece of a response body, as it arrives (the `proxy` scenario checks them).
    var onBody: ((ByteBuffer) -> Void)? {
        get { self.handler.onBody }
        set { self.handler.onBody = newValue }
    }

    /// Called once if the connection closes.
    var onClose: (() -> Void)? {
        get { self.handler.onClose }
        set { self.handler.onClose = newValue }
    }

    /// Writes a request (not flushed).
    func write(method: HTTPMethod = .POST, target: String, body: [UInt8]) {
        var headers = HTTPHeaders()
        headers.add(name: "host", value: self.hostHeader)
        headers.add(name: "content-length", value: String(body.count))
        headers.add(name: "content-type", value: "text/plain")
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: target, headers: headers)
        self.handler.expected += 1
        self.channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if !body.isEmpty {
            self.channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
        }
        self.channel.write(HTTPClientRequestPart.end(nil), promise: nil)
    }

    /// Writes and flushes a `GET` without a body (no `Content-Length`, no `Content-Type`).
    func get(target: String) {
        var headers = HTTPHeaders()
        headers.add(name: "host", value: self.hostHeader)
        self.handler.expected += 1
        self.channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: target, headers: headers)), promise: nil)
        self.channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    func flush() { self.channel.flush() }

    private final class ResponseHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        var expected = 0
        var onResponse: ((Int) -> Void)?
        var onBody: ((ByteBuffer) -> Void)?
        var onClose: (() -> Void)?
        private var status = 0

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch Self.unwrapInboundIn(data) {
            case .head(let head):
                self.status = Int(head.status.code)
            case .body(let body):
                self.onBody?(body)
            case .end:
                self.expected -= 1
                self.onResponse?(self.status)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.onClose?()
            self.onClose = nil
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
