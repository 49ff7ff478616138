import NIOCore
import NIOHTTP1

/// A request handed to ``HTTPPublisherHandler`` through the pipeline, with the promise for its response.
struct PendingHTTPRequest: Sendable {
    var head: HTTPRequestHead
    var body: ByteBuffer?
    var response: EventLoopPromise<HTTPResponse>
}

/// Runs ``HTTPPublisher``'s requests one at a time on a keep-alive connection, collecting each response.
///
/// Requests written while one is in flight wait in a queue. When the connection ends, the server asks to
/// close it, a response is late, or the response is malformed, every pending request fails and later ones
/// fail with ``LHTTPClientError/connectionClosed``. Confined to the channel's event loop.
final class HTTPPublisherHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = PendingHTTPRequest
    typealias OutboundOut = HTTPClientRequestPart

    private struct InFlight {
        var response: EventLoopPromise<HTTPResponse>
        var head: HTTPResponseHead?
        var body: ByteBuffer
        var timer: Scheduled<Void>?
    }

    private let requestTimeout: TimeAmount
    private var queue = CircularBuffer<PendingHTTPRequest>()
    private var inFlight: InFlight?
    /// Set once the connection is (being) closed: nothing more is sent.
    private var isClosed = false

    init(requestTimeout: TimeAmount) {
        self.requestTimeout = requestTimeout
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = Self.unwrapOutboundIn(data)
        // The write "succeeds" when the request is accepted; its outcome is reported through `request.response`.
        promise?.succeed(())
        guard !self.isClosed else {
            request.response.fail(LHTTPClientError.connectionClosed)
            return
        }
        self.queue.append(request)
        self.sendNextIfIdle(context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            guard self.inFlight != nil else {
                self.fail(context: context, error: LHTTPClientError.invalidResponse("response without a request"))
                return
            }
            self.inFlight?.head = head
        case .body(var chunk):
            self.inFlight?.body.writeBuffer(&chunk)
        case .end:
            guard let done = self.inFlight, let head = done.head else {
                self.fail(context: context, error: LHTTPClientError.invalidResponse("response end without a head"))
                return
            }
            self.inFlight = nil
            done.timer?.cancel()
            done.response.succeed(HTTPResponse(status: Int(head.status.code), headers: head.headers, body: done.body))
            if head.isKeepAlive {
                self.sendNextIfIdle(context: context)
            } else {
                self.fail(context: context, error: LHTTPClientError.connectionClosed)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.failAll(LHTTPClientError.connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let reported: any Error = error is HTTPParserError ? LHTTPClientError.invalidResponse("\(error)") : error
        self.fail(context: context, error: reported)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // Never leave a caller waiting on a promise nobody will complete.
        self.failAll(LHTTPClientError.connectionClosed)
    }

    private func sendNextIfIdle(context: ChannelHandlerContext) {
        guard self.inFlight == nil, !self.isClosed, let request = self.queue.popFirst() else { return }
        let timer = context.eventLoop.assumeIsolated().scheduleTask(in: self.requestTimeout) {
            self.fail(context: context, error: LHTTPClientError.timeout)
        }
        self.inFlight = InFlight(
            response: request.response,
            head: nil,
            body: context.channel.allocator.buffer(capacity: 0),
            timer: timer
        )
        context.write(Self.wrapOutboundOut(.head(request.head)), promise: nil)
        if let body = request.body, body.readableBytes > 0 {
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// Fails the request in flight with `error`, the queued ones as closed, and closes the connection.
    private func fail(context: ChannelHandlerContext, error: any Error) {
        self.failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        self.isClosed = true
        if let inFlight = self.inFlight {
            self.inFlight = nil
            inFlight.timer?.cancel()
            inFlight.response.fail(error)
        }
        while let request = self.queue.popFirst() {
            request.response.fail(LHTTPClientError.connectionClosed)
        }
    }
}

@available(*, unavailable)
extension HTTPPublisherHandler: Sendable {}
