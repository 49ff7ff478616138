import LHTTPTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A real HTTP/1.1 backend on 127.0.0.1, port 0, whose answers the test controls: paths starting with
/// `/hold` are answered (200 `ok`) only once the test calls ``release()``, anything else at once.
/// Every request is announced on ``arrivals`` when it has arrived whole, so a test awaits it instead of
/// polling.
final class HoldingBackend: Sendable {
    struct Request: Sendable {
        var uri: String
        var body: String
    }

    /// What the backend and its connection handlers share.
    fileprivate final class Shared: Sendable {
        struct State {
            var requests: [Request] = []
            var held: [@Sendable () -> Void] = []
            var released = false
        }

        let state = NIOLockedValueBox(State())
        let arrivals: AsyncStream<Request>
        let sink: AsyncStream<Request>.Continuation

        init() {
            (self.arrivals, self.sink) = AsyncStream.makeStream(of: Request.self)
        }

        /// Records `request`; returns false when its answer must wait (`answer` is kept until release).
        func arrived(_ request: Request, answer: @escaping @Sendable () -> Void) -> Bool {
            let now = self.state.withLockedValue { state in
                state.requests.append(request)
                guard request.uri.hasPrefix("/hold"), !state.released else { return true }
                state.held.append(answer)
                return false
            }
            self.sink.yield(request)
            return now
        }
    }

    private let channel: any Channel
    private let shared: Shared

    /// Requests in arrival order; iterate it once per test.
    var arrivals: AsyncStream<Request> { self.shared.arrivals }
    var requests: [Request] { self.shared.state.withLockedValue { $0.requests } }
    var port: Int { self.channel.localAddress?.port ?? 0 }

    func url(_ path: String) -> String { "http://127.0.0.1:\(self.port)\(path)" }

    private init(channel: any Channel, shared: Shared) {
        self.channel = channel
        self.shared = shared
    }

    static func start() async throws -> HoldingBackend {
        let shared = Shared()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(shared: shared))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return HoldingBackend(channel: channel, shared: shared)
    }

    /// Answers every held request, and from now on answers `/hold` paths at once too.
    func release() {
        let held = self.shared.state.withLockedValue { state in
            state.released = true
            defer { state.held.removeAll() }
            return state.held
        }
        for answer in held { answer() }
    }

    func stop() async {
        self.shared.sink.finish()
        // Held answers refer to their handlers, which refer back to the shared state: drop them.
        self.shared.state.withLockedValue { $0.held.removeAll() }
        try? await self.channel.close()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        private let shared: Shared
        private var uri = ""
        private var body = ""

        init(shared: Shared) { self.shared = shared }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch Self.unwrapInboundIn(data) {
            case .head(let head):
                self.uri = head.uri
                self.body = ""
            case .body(let chunk):
                self.body += String(buffer: chunk)
            case .end:
                let loop = context.eventLoop
                let bound = NIOLoopBound((self, context), eventLoop: loop)
                let answer: @Sendable () -> Void = {
                    loop.execute {
                        let (handler, context) = bound.value
                        handler.answer(context)
                    }
                }
                if self.shared.arrived(Request(uri: self.uri, body: self.body), answer: answer) {
                    self.answer(context)
                }
            }
        }

        private func answer(_ context: ChannelHandlerContext) {
            var headers = HTTPHeaders()
            headers.add(name: "content-length", value: "2")
            context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "ok")))), promise: nil)
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
