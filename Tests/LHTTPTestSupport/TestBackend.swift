import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A real HTTP backend on 127.0.0.1, port 0, for upstream tests. It records every request and answers
/// by path: `/hang…` never answers, `/hold…` answers 200 when the test calls ``releaseHeld()``,
/// `/slow…` answers 200 after 300 ms, `/fail…` answers 500, `/big…` 200 with
/// 4 KiB, anything else 200 `ok`.
public final class TestBackend: Sendable {
    public struct Request: Sendable {
        public var method: String
        public var uri: String
        public var headers: [(String, String)]
        public var body: String

        public func header(_ name: String) -> String? {
            self.headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    /// A scripted answer; `nil` from the script falls back to the path rules.
    public struct Answer: Sendable {
        public var status: Int = 200
        public var contentType: String? = nil
        public var body: String = ""

        public init(status: Int = 200, contentType: String? = nil, body: String = "") {
            self.status = status
            self.contentType = contentType
            self.body = body
        }
    }

    private let channel: any Channel
    private let state: NIOLockedValueBox<(requests: [Request], connections: Int)>
    /// Answers of `/hold` requests, waiting for ``releaseHeld()``.
    private let held = NIOLockedValueBox<[@Sendable () -> Void]>([])
    fileprivate let script: @Sendable (Request) -> Answer?

    public var port: Int { self.channel.localAddress?.port ?? 0 }
    public var requests: [Request] { self.state.withLockedValue { $0.requests } }
    public var connections: Int { self.state.withLockedValue { $0.connections } }

    private init(channel: any Channel, state: NIOLockedValueBox<(requests: [Request], connections: Int)>, script: @escaping @Sendable (Request) -> Answer?) {
        self.channel = channel
        self.state = state
        self.script = script
    }

    public static func start(script: @escaping @Sendable (Request) -> Answer? = { _ in nil }) async throws -> TestBackend {
        let state = NIOLockedValueBox<(requests: [Request], connections: Int)>(([], 0))
        let box = NIOLockedValueBox<TestBackend?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // A busy test process accepts slowly: a deep queue keeps bursts of connects from being dropped.
            .serverChannelOption(.backlog, value: 1024)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let backend = box.withLockedValue({ $0 }) else { throw ChannelError.ioOnClosedChannel }
                    state.withLockedValue { $0.connections += 1 }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(backend: backend))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let backend = TestBackend(channel: channel, state: state, script: script)
        box.withLockedValue { $0 = backend }
        return backend
    }

    /// Waits (bounded) until `count` requests arrived.
    public func waitForRequests(_ count: Int, timeout: Duration = .seconds(30)) async throws -> [Request] {
        let deadline = ContinuousClock.now + timeout
        while self.requests.count < count {
            guard ContinuousClock.now < deadline else {
                throw TestFailure("backend got \(self.requests.count) of \(count) requests")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        return self.requests
    }

    /// Answers every `/hold` request that arrived so far. - Returns: how many.
    @discardableResult
    public func releaseHeld() -> Int {
        let answers = self.held.withLockedValue { held in
            defer { held.removeAll() }
            return held
        }
        for answer in answers { answer() }
        return answers.count
    }

    fileprivate func hold(_ answer: @escaping @Sendable () -> Void) {
        self.held.withLockedValue { $0.append(answer) }
    }

    public func stop() async {
        // Held answers refer to their handlers and contexts: drop them with the backend.
        self.held.withLockedValue { $0.removeAll() }
        try? await self.channel.close()
    }

    fileprivate func record(_ request: Request) {
        self.state.withLockedValue { $0.requests.append(request) }
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let backend: TestBackend
        var head: HTTPRequestHead?
        var body = ""

        init(backend: TestBackend) { self.backend = backend }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch Self.unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                self.body = ""
            case .body(let chunk):
                self.body += String(buffer: chunk)
            case .end:
                guard let head = self.head else { return }
                let request = Request(method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) }, body: self.body)
                let scripted = self.backend.script(request)
                // A held request is recorded only once it can be released: a test that saw it arrive
                // (`waitForRequests`) and releases it at once must find it held.
                if scripted == nil, head.uri.hasPrefix("/hold") {
                    let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                    let loop = context.eventLoop
                    self.backend.hold {
                        loop.execute {
                            let (handler, context) = bound.value
                            handler.answer(status: .ok, body: "ok", context: context)
                        }
                    }
                    self.backend.record(request)
                    return
                }
                self.backend.record(request)
                if let answer = scripted {
                    var headers = HTTPHeaders()
                    headers.add(name: "content-length", value: String(answer.body.utf8.count))
                    if let type = answer.contentType { headers.add(name: "content-type", value: type) }
                    let status = HTTPResponseStatus(statusCode: answer.status)
                    context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                    context.write(Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: answer.body)))), promise: nil)
                    context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
                    return
                }
                if head.uri.hasPrefix("/hang") { return }
                if head.uri.hasPrefix("/slow") {
                    let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                    context.eventLoop.scheduleTask(in: .milliseconds(300)) {
                        let (handler, context) = bound.value
                        handler.answer(status: .ok, body: "ok", context: context)
                    }
                    return
                }
                let status: HTTPResponseStatus = head.uri.hasPrefix("/fail") ? .internalServerError : .ok
                let body = head.uri.hasPrefix("/big") ? String(repeating: "b", count: 4096) : "ok"
                self.answer(status: status, body: body, context: context)
            }
        }

        private func answer(status: HTTPResponseStatus, body: String, context: ChannelHandlerContext) {
            var headers = HTTPHeaders()
            headers.add(name: "content-length", value: String(body.utf8.count))
            context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
