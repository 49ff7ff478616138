import Crypto
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A real HTTP/1.1 backend on 127.0.0.1, port 0, that streams, for the reverse proxy's tests. By path:
/// - `GET /bytes?n=N[&length=1]`: N bytes of ``pattern(_:)``, chunked (with `Content-Length` when
///   `length=1`), written in 64 KiB pieces only while the socket is writable (``sent``, ``isStalled``).
/// - `GET /sse`: `text/event-stream`; event 1 at once, each next one when the test calls ``releaseEvent()``.
/// - `POST|PUT /upload`: the body's SHA-256 (hex) and byte count, as `<hex> <count>`.
/// - `GET /hang`: never answers. `GET /stall`: a head and 7 bytes, then nothing.
/// - `GET /headers`: the request line and headers as received, one per line.
/// - `GET /chunks`: `one`, `two`, `three` as three chunks.
/// - anything else: 200 `ok <method> <uri>`.
public final class StreamingBackend: Sendable {
    private let channel: any Channel
    private let state: NIOLockedValueBox<State>

    struct State {
        var sent = 0
        var stalled = false
        var permits = 0
        var waiting: [@Sendable () -> Void] = []
        var requests: [String] = []
        var connections = 0
    }

    public var port: Int { self.channel.localAddress?.port ?? 0 }
    /// Body bytes written by `/bytes` so far (to the socket's buffer).
    public var sent: Int { self.state.withLockedValue { $0.sent } }
    /// `/bytes` waits for its socket to become writable: the proxy stopped reading.
    public var isStalled: Bool { self.state.withLockedValue { $0.stalled } }
    /// Request lines received (`METHOD uri`), in order.
    public var requests: [String] { self.state.withLockedValue { $0.requests } }
    /// TCP connections accepted (keep-alive reuse keeps it low).
    public var connections: Int { self.state.withLockedValue { $0.connections } }

    private init(channel: any Channel, state: NIOLockedValueBox<State>) {
        self.channel = channel
        self.state = state
    }

    public static func start() async throws -> StreamingBackend {
        let state = NIOLockedValueBox(State())
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    state.withLockedValue { $0.connections += 1 }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(state: state))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return StreamingBackend(channel: channel, state: state)
    }

    public func stop() async {
        try? await self.channel.close()
    }

    /// Lets `/sse` send its next event.
    public func releaseEvent() {
        let next = self.state.withLockedValue { state -> (@Sendable () -> Void)? in
            if state.waiting.isEmpty {
                state.permits += 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?()
    }

    /// The byte at `offset` of a `/bytes` body.
    public static func pattern(_ offset: Int) -> UInt8 { UInt8(truncatingIfNeeded: offset % 251) }

    /// The pattern from offset 0, 64 KiB and one period long: any 64 KiB piece is a slice of it (copied,
    /// not computed per byte: debug builds are slow at that).
    private static let periodic: [UInt8] = (0..<((1 << 16) + 251)).map(pattern)

    /// `count` (at most 64 KiB) bytes of the pattern from `offset`.
    public static func pattern(offset: Int, count: Int) -> ArraySlice<UInt8> {
        let start = offset % 251
        return Self.periodic[start..<(start + count)]
    }

    /// The SHA-256 (hex) of the first `count` bytes of the pattern.
    public static func patternDigest(_ count: Int) -> String {
        var hasher = SHA256()
        var offset = 0
        while offset < count {
            let n = min(1 << 16, count - offset)
            Self.pattern(offset: offset, count: n).withUnsafeBytes { hasher.update(bufferPointer: $0) }
            offset += n
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let state: NIOLockedValueBox<State>
        private var head: HTTPRequestHead?
        private var hasher = SHA256()
        private var count = 0
        /// `/bytes` in progress: bytes left and the next offset.
        private var remaining = 0
        private var offset = 0
        private var context: ChannelHandlerContext?

        init(state: NIOLockedValueBox<State>) { self.state = state }

        func handlerAdded(context: ChannelHandlerContext) { self.context = context }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch Self.unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                self.hasher = SHA256()
                self.count = 0
                self.state.withLockedValue { $0.requests.append("\(head.method) \(head.uri)") }
            case .body(let chunk):
                chunk.withUnsafeReadableBytes { self.hasher.update(bufferPointer: $0) }
                self.count += chunk.readableBytes
            case .end:
                guard let head = self.head else { return }
                self.answer(head, context: context)
            }
        }

        private func respond(status: HTTPResponseStatus = .ok, text: String, headers extra: [(String, String)] = [], context: ChannelHandlerContext) {
            var headers = HTTPHeaders(extra)
            headers.add(name: "content-length", value: String(text.utf8.count))
            if !headers.contains(name: "content-type") { headers.add(name: "content-type", value: "text/plain") }
            context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
        }

        private func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
            let parts = head.uri.split(separator: "?", maxSplits: 1)
            let path = parts.first.map(String.init) ?? head.uri
            var query: [String: String] = [:]
            if parts.count > 1 {
                for item in parts[1].split(separator: "&") {
                    let pair = item.split(separator: "=", maxSplits: 1)
                    query[String(pair[0])] = pair.count > 1 ? String(pair[1]) : ""
                }
            }
            switch path {
            case "/bytes":
                let n = Int(query["n"] ?? "0") ?? 0
                var headers = HTTPHeaders([("content-type", "application/octet-stream")])
                if query["length"] == "1" { headers.add(name: "content-length", value: String(n)) }
                context.writeAndFlush(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                self.remaining = n
                self.offset = 0
                self.pump(context)
            case "/sse":
                let headers = HTTPHeaders([("content-type", "text/event-stream"), ("cache-control", "no-cache")])
                context.writeAndFlush(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                let total = Int(query["n"] ?? "3") ?? 3
                self.sendEvent(1, of: total, context: context)
            case "/upload":
                let digest = self.hasher.finalize().map { String(format: "%02x", $0) }.joined()
                self.respond(text: "\(digest) \(self.count)", context: context)
            case "/hang":
                break
            case "/stall":
                context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["content-length": "100"]))), promise: nil)
                context.writeAndFlush(Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "partial")))), promise: nil)
            case "/headers":
                var text = "\(head.method) \(head.uri)\n"
                for (name, value) in head.headers { text += "\(name): \(value)\n" }
                self.respond(text: text, context: context)
            case "/chunks":
                context.writeAndFlush(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["content-type": "text/plain"]))), promise: nil)
                for piece in ["one", "two", "three"] {
                    context.writeAndFlush(Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: piece)))), promise: nil)
                }
                context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
            default:
                self.respond(text: "ok \(head.method) \(head.uri)", context: context)
            }
        }

        private func sendEvent(_ number: Int, of total: Int, context: ChannelHandlerContext) {
            context.writeAndFlush(Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "id: \(number)\ndata: event \(number)\n\n")))), promise: nil)
            guard number < total else {
                context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
                return
            }
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            let next: @Sendable () -> Void = {
                eventLoop.execute {
                    let (handler, context) = loopBound.value
                    handler.sendEvent(number + 1, of: total, context: context)
                }
            }
            let now = self.state.withLockedValue { state -> Bool in
                if state.permits > 0 {
                    state.permits -= 1
                    return true
                }
                state.waiting.append(next)
                return false
            }
            if now { next() }
        }

        /// Writes `/bytes` while the socket takes it; waits for writability otherwise.
        private func pump(_ context: ChannelHandlerContext) {
            while self.remaining > 0 {
                guard context.channel.isWritable else {
                    self.state.withLockedValue { $0.stalled = true }
                    return
                }
                let n = min(1 << 16, self.remaining)
                var buffer = context.channel.allocator.buffer(capacity: n)
                buffer.writeBytes(StreamingBackend.pattern(offset: self.offset, count: n))
                self.offset += n
                self.remaining -= n
                self.state.withLockedValue { $0.sent += n }
                context.writeAndFlush(Self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            }
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
            self.remaining = -1
        }

        func channelWritabilityChanged(context: ChannelHandlerContext) {
            if context.channel.isWritable, self.remaining > 0 {
                self.state.withLockedValue { $0.stalled = false }
                self.pump(context)
            }
            context.fireChannelWritabilityChanged()
        }
    }
}
