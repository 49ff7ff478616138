import Logging
import NIOCore

/// Bounds the time of plain HTTP on a connection: a request must arrive whole within `requestTimeout` of
/// its first byte (else `408` and close: a slow-loris client trickling its head byte by byte is cut), and
/// an idle keep-alive connection is closed after `keepaliveTimeout`.
///
/// It sits first in the pipeline, below the HTTP decoder, so bytes of an incomplete head are visible. The
/// ``HTTPRequestRouter`` tells it when a request is complete and when its response went out; the websocket
/// upgrade removes it (a websocket has its own idle timeout).
final class HTTPDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        /// Between requests: the keep-alive timer runs.
        case idle
        /// Bytes of a request are arriving: the request timer runs.
        case receiving
        /// The request is complete and being answered: no timer.
        case answering(sawNextRequest: Bool)
    }

    private let requestTimeout: TimeAmount
    private let keepaliveTimeout: TimeAmount
    private let logger: Logger
    private let onTimeout: @Sendable () -> Void
    private var state = State.receiving
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(requestTimeout: TimeAmount, keepaliveTimeout: TimeAmount, logger: Logger, onTimeout: @escaping @Sendable () -> Void = {}) {
        self.requestTimeout = requestTimeout
        self.keepaliveTimeout = keepaliveTimeout
        self.logger = logger
        self.onTimeout = onTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // A new connection is expected to send its first request within the request timeout.
        if context.channel.isActive { self.arm(.request) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if self.timer == nil { self.arm(.request) }
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.state {
        case .idle:
            self.state = .receiving
            self.arm(.request)
        case .receiving:
            break
        case .answering:
            self.state = .answering(sawNextRequest: true)
        }
        context.fireChannelRead(data)
    }

    /// The router has the whole request (head and body).
    func requestComplete() {
        self.timer?.cancel()
        self.timer = nil
        self.state = .answering(sawNextRequest: false)
    }

    /// The response went out and the connection stays open.
    func responseComplete() {
        guard case .answering(let sawNextRequest) = self.state else { return }
        if sawNextRequest {
            // A pipelined request is already (partly) here: its clock starts now.
            self.state = .receiving
            self.arm(.request)
        } else {
            self.state = .idle
            self.arm(.keepalive)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
        context.fireChannelInactive()
    }

    private enum Deadline { case request, keepalive }

    private func arm(_ deadline: Deadline) {
        self.timer?.cancel()
        guard let context = self.context else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let delay = deadline == .request ? self.requestTimeout : self.keepaliveTimeout
        self.timer = context.eventLoop.scheduleTask(in: delay) {
            let (handler, context) = loopBound.value
            handler.timer = nil
            switch deadline {
            case .request: handler.requestExpired(context)
            case .keepalive: context.close(promise: nil)
            }
        }
    }

    private func requestExpired(_ context: ChannelHandlerContext) {
        let remote = context.channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? ""
        self.logger.warning("HTTP request too slow: closing", metadata: ["lhttp.remote": "\(remote)", "http.status": "408"])
        self.onTimeout()
        let body = "{\"status\":408,\"error\":\"\(ServerError.requestTimeout.description)\"}\n"
        var response = context.channel.allocator.buffer(capacity: 160 + body.utf8.count)
        response.writeString(
            "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\nconnection: close\r\n\r\n\(body)"
        )
        let channel = context.channel
        context.writeAndFlush(Self.wrapOutboundOut(response)).whenComplete { _ in channel.close(promise: nil) }
    }
}
