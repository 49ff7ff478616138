import Logging
import NIOCore
import NIOHTTP1

/// Bounds the time of plain HTTP on a connection: a request must arrive whole within `requestTimeout` of
/// its first byte (else `408` and close: a slow-loris client trickling its head byte by byte is cut), and
/// an idle keep-alive connection is closed after `keepaliveTimeout`.
///
/// It sits first in the pipeline, below the HTTP decoder, so bytes of an incomplete head are visible. The
/// ``HTTPRequestRouter`` tells it when a request is complete and when its response went out; the websocket
/// upgrade removes it (a websocket has its own idle timeout).
///
/// The clock is lazy: a request or an answer only records a deadline; one scheduled task per connection
/// checks it when it fires and re-arms for what is left (a timer per request cost measurable throughput on
/// `POST /publish`).
final class HTTPDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
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
    /// How long the 408 may take to go out before the connection is reset instead (a client that stopped
    /// reading never takes it).
    private let closeTimeout: TimeAmount
    private let logger: Logger
    private let onTimeout: @Sendable () -> Void
    private var state = State.receiving
    /// When the current phase ends (`receiving`: the request's limit; `idle`: the keep-alive limit).
    private var deadline = NIODeadline.distantFuture
    /// The one scheduled check and when it fires; nil when none is pending.
    private var timer: Scheduled<Void>?
    private var timerDeadline = NIODeadline.distantFuture
    private var context: ChannelHandlerContext?

    /// The event loop's clock (virtual on an `EmbeddedEventLoop`).
    private var now: NIODeadline { self.context?.eventLoop.now ?? .now() }

    init(
        requestTimeout: TimeAmount, keepaliveTimeout: TimeAmount, closeTimeout: TimeAmount = .seconds(3), logger: Logger,
        onTimeout: @escaping @Sendable () -> Void = {}
    ) {
        self.requestTimeout = requestTimeout
        self.keepaliveTimeout = keepaliveTimeout
        self.closeTimeout = closeTimeout
        self.logger = logger
        self.onTimeout = onTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // A new connection is expected to send its first request within the request timeout.
        if context.channel.isActive { self.start(self.requestTimeout) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if self.timer == nil { self.start(self.requestTimeout) }
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
            self.start(self.requestTimeout)
        case .receiving:
            break
        case .answering:
            self.state = .answering(sawNextRequest: true)
        }
        context.fireChannelRead(data)
    }

    /// A request's head is here but waits (behind answers the client has not read yet, in the
    /// ``HTTPPipeliningGate``): its clock runs from now, as if it had just arrived.
    func requestWaiting() {
        switch self.state {
        case .idle:
            self.state = .receiving
            self.start(self.requestTimeout)
        case .answering:
            self.state = .answering(sawNextRequest: true)
        case .receiving:
            break
        }
    }

    /// The router has the whole request (head and body).
    func requestComplete() {
        self.state = .answering(sawNextRequest: false)
    }

    /// The response went out and the connection stays open.
    func responseComplete() {
        guard case .answering(let sawNextRequest) = self.state else { return }
        if sawNextRequest {
            // A pipelined request is already (partly) here: its clock starts now.
            self.state = .receiving
            self.start(self.requestTimeout)
        } else {
            self.state = .idle
            self.start(self.keepaliveTimeout)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
        context.fireChannelInactive()
    }

    /// A phase starts: its deadline is `limit` from now. The pending check stays unless it would come too
    /// late (a later check re-arms itself for what is left).
    private func start(_ limit: TimeAmount) {
        self.deadline = self.now + limit
        guard self.timer == nil || self.deadline < self.timerDeadline else { return }
        self.timer?.cancel()
        self.schedule(at: self.deadline)
    }

    private func schedule(at deadline: NIODeadline) {
        guard let context = self.context else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.timerDeadline = deadline
        self.timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            handler.timer = nil
            handler.check(context)
        }
    }

    /// The scheduled check: acts when the current phase is over, re-arms when it was extended meanwhile.
    private func check(_ context: ChannelHandlerContext) {
        switch self.state {
        case .answering:
            return  // no clock while answering; the next phase schedules again
        case .receiving, .idle:
            guard self.now >= self.deadline else {
                self.schedule(at: self.deadline)
                return
            }
            if case .receiving = self.state {
                self.requestExpired(context)
            } else {
                context.close(promise: nil)
            }
        }
    }

    private func requestExpired(_ context: ChannelHandlerContext) {
        self.logger.warning("HTTP request too slow: closing", metadata: ["lhttp.remote": "\(context.channel.peerAddress)", "http.status": "408"])
        self.onTimeout()
        // Written as raw bytes (this handler sits below the HTTP encoder), from the same error mapping and
        // JSON body as every other refusal.
        let response = Failure.rawResponse(for: .requestTimeout, allocator: context.channel.allocator)
        let channel = context.channel
        // A client that pipelined requests and stopped reading never takes the 408 (it waits behind answers
        // it did not read): after `closeTimeout` the connection is reset, which frees what the kernel holds.
        let reset = context.eventLoop.scheduleTask(in: self.closeTimeout) { channel.reset() }
        context.writeAndFlush(Self.wrapOutboundOut(response)).whenComplete { _ in
            reset.cancel()
            channel.close(promise: nil)
        }
    }

}
