import NIOCore
import NIOHTTP1

/// Lets the next pipelined HTTP request through only once the responses before it are (nearly) written out.
///
/// NIO's `HTTPServerPipelineHandler` serves one request at a time, but it hands over the next request as soon
/// as the previous response's `.end` is *written into the channel*, not when its bytes reached the socket: a
/// client that pipelines thousands of requests and never reads had every answer queued in memory. This handler
/// sits between NIO's HTTP handlers and the router. When a response ends with more than `maxQueuedBytes` still
/// in the channel's write buffer (flushed or not), the request parts that follow are held here and reading
/// stops, until that response's last byte went to the kernel (its `.end` write completed).
///
/// So one connection's answers take at most `maxQueuedBytes` plus one response in NIO's buffer (a static file
/// is a `FileRegion`: its size counts, no memory), plus the kernel send buffer. Inbound, what had already been
/// read when reading stopped (one read cycle at most) waits, parsed, in NIO's pipelining handler; the parts
/// held here are those of one request at most (NIO holds the ones after it).
///
/// Under the cap nothing waits: pipelined requests of one read are answered back to back and flushed once by
/// the router, as before. The check is one read of the channel's buffered byte count per response.
final class HTTPPipeliningGate: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Bytes a connection may have queued when a response ends and the next request is let through.
    static let defaultMaxQueuedBytes = 64 << 10
    /// How far ahead the resumption after a wait is scheduled: enough for the loop to poll its sockets.
    static let yieldDelay = TimeAmount.microseconds(50)

    private let maxQueuedBytes: Int
    /// A response ended over the cap: its `.end` is not written to the socket yet.
    private var waiting = false
    /// Request parts that arrived while waiting, in order.
    private var held = CircularBuffer<HTTPServerRequestPart>(initialCapacity: 0)
    /// The channel asked to read while waiting: asked again when the wait is over.
    private var readPending = false
    /// An upper estimate of the bytes queued in the channel: the last exact count plus what was written since.
    private var unconfirmedBytes = 0
    private var context: ChannelHandlerContext?

    init(maxQueuedBytes: Int = HTTPPipeliningGate.defaultMaxQueuedBytes) {
        self.maxQueuedBytes = maxQueuedBytes
    }

    /// The connection's request clock: a request held here is on it.
    private var deadline: HTTPDeadlineHandler?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.deadline = try? context.pipeline.syncOperations.handler(type: HTTPDeadlineHandler.self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // A websocket upgrade removes the gate: what it held belongs to whoever comes next.
        self.context = nil
        self.deadline = nil
        self.waiting = false
        while let part = self.held.popFirst() { context.fireChannelRead(Self.wrapInboundOut(part)) }
        if self.readPending {
            self.readPending = false
            context.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard self.waiting || !self.held.isEmpty else {
            context.fireChannelRead(data)
            return
        }
        let part = Self.unwrapInboundIn(data)
        if case .head = part { self.deadline?.requestWaiting() }
        self.held.append(part)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.held.removeAll()
        context.fireChannelInactive()
    }

    func read(context: ChannelHandlerContext) {
        if self.waiting {
            self.readPending = true
        } else {
            context.read()
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = Self.unwrapOutboundIn(data)
        guard case .end = part, !self.waiting else {
            self.unconfirmedBytes &+= Self.estimatedSize(of: part)
            context.write(data, promise: promise)
            return
        }
        // Asking the channel for its queued bytes is a dynamic option look-up: only once this handler's
        // own (over)estimate of what went out since the last look says the cap may be reached.
        guard self.unconfirmedBytes > self.maxQueuedBytes else {
            context.write(data, promise: promise)
            return
        }
        let queued = self.queuedBytes(context)
        self.unconfirmedBytes = queued
        guard queued > self.maxQueuedBytes else {
            context.write(data, promise: promise)
            return
        }
        // Only over the cap: a promise (and a loop hop below) per `maxQueuedBytes` of answers, not per request.
        self.waiting = true
        let written = context.eventLoop.makePromise(of: Void.self)
        if let promise { written.futureResult.cascade(to: promise) }
        let eventLoop = context.eventLoop
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        written.futureResult.whenComplete { result in
            switch result {
            case .success:
                // Not inline: a write that completes inside a flush must not answer the next request inside
                // it (a fast reader would nest one flush per held response). And not as an immediate task:
                // the loop runs every task queued while it runs tasks before it looks at its sockets again,
                // so a client pipelining thousands of requests and reading fast would have the loop to itself
                // for seconds. A timer a moment ahead sends the loop through its sockets first: every
                // connection on the loop is served between two `maxQueuedBytes` of this one's answers.
                eventLoop.scheduleTask(in: Self.yieldDelay) { loopBound.value.resume() }
            case .failure:
                loopBound.value.held.removeAll()  // the connection is gone
            }
        }
        context.write(data, promise: written)
    }

    /// The response's last byte went out: lets the held parts through until one of them ends over the cap
    /// again, then reads again if the channel asked to.
    private func resume() {
        guard let context = self.context, self.waiting else { return }
        self.waiting = false
        self.unconfirmedBytes = 0  // everything up to the end waited for is in the kernel
        if !self.held.isEmpty {
            while !self.waiting, let part = self.held.popFirst() { context.fireChannelRead(Self.wrapInboundOut(part)) }
            // The router answers pipelined requests of one read together and flushes at the read's end.
            context.fireChannelReadComplete()
        }
        if !self.waiting, self.readPending {
            self.readPending = false
            context.read()
        }
    }

    /// A response part's bytes; a head counts 256 (the router writes a status line and a few short headers).
    private static func estimatedSize(of part: HTTPServerResponsePart) -> Int {
        switch part {
        case .head: return 256
        case .body(.byteBuffer(let buffer)): return buffer.readableBytes
        case .body(.fileRegion(let region)): return region.readableBytes
        case .end: return 0
        }
    }

    private func queuedBytes(_ context: ChannelHandlerContext) -> Int {
        (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
    }
}
