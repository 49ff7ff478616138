import Crypto
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS

/// One HTTP/1.1 keep-alive connection for the proxy's tests: requests sent part by part, the response
/// received part by part (so a test sees an event before the next is sent), bodies counted and hashed
/// rather than kept when they are large. `reading: false` makes a client that does not read until
/// ``startReading()``. With `tls`, over TLS (the test's own trust root).
/// (`@unchecked`: the response iterator is used by one task at a time, as a test reads its responses in order.)
public final class HTTPTestClient: @unchecked Sendable {
    public enum Part: Sendable {
        case head(HTTPResponseHead)
        case body(ByteBuffer)
        case end
    }

    /// A whole response: the body kept up to `keep` bytes, all of it counted and hashed.
    public struct Response: Sendable {
        public var head: HTTPResponseHead
        public var body: [UInt8]
        public var count: Int
        public var sha256: String
        public var text: String { String(decoding: self.body, as: UTF8.self) }
        public var status: Int { Int(self.head.status.code) }
        public func header(_ name: String) -> String? { self.head.headers.first(name: name) }
    }

    public let channel: any Channel
    private let parts: AsyncStream<Part>
    private let alpn: NIOLockedValueBox<String?>

    /// The protocol ALPN agreed on (TLS only; nil before the handshake or without agreement).
    public var negotiatedProtocol: String? { self.alpn.withLockedValue { $0 } }
    private let iterator: NIOLockedValueBox<AsyncStream<Part>.AsyncIterator>

    private init(channel: any Channel, parts: AsyncStream<Part>, alpn: NIOLockedValueBox<String?>) {
        self.alpn = alpn
        self.channel = channel
        self.parts = parts
        self.iterator = NIOLockedValueBox(parts.makeAsyncIterator())
    }

    public static func connect(port: Int, tls: NIOSSLContext? = nil, serverHostname: String? = "localhost", reading: Bool = true, receiveBuffer: Int? = nil) async throws -> HTTPTestClient {
        let (stream, continuation) = AsyncStream<Part>.makeStream()
        let alpn = NIOLockedValueBox<String?>(nil)
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).channelOption(.autoRead, value: reading)
        if let receiveBuffer { bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBuffer)) }
        let channel = try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: serverHostname))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(Collector(continuation: continuation, alpn: alpn))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return HTTPTestClient(channel: channel, parts: stream, alpn: alpn)
    }

    /// Sends a request head (add `content-length` or `transfer-encoding: chunked` for a body).
    public func sendHead(_ method: HTTPMethod, _ uri: String, headers: [(String, String)] = [], version: HTTPVersion = .http1_1) async throws {
        var all = HTTPHeaders(headers)
        if !all.contains(name: "host") { all.add(name: "host", value: "localhost") }
        try await self.channel.writeAndFlush(HTTPClientRequestPart.head(HTTPRequestHead(version: version, method: method, uri: uri, headers: all)))
    }

    public func sendBody(_ bytes: ByteBuffer) async throws {
        try await self.channel.writeAndFlush(HTTPClientRequestPart.body(.byteBuffer(bytes)))
    }

    public func sendEnd() async throws {
        try await self.channel.writeAndFlush(HTTPClientRequestPart.end(nil))
    }

    /// The next response part; nil once the connection closed.
    public func next() async -> Part? {
        var iterator = self.iterator.withLockedValue { $0 }
        let part = await iterator.next()
        self.iterator.withLockedValue { $0 = iterator }
        return part
    }

    /// The rest of a response, head (unless already read) to end.
    public func response(keep: Int = 1 << 20, head known: HTTPResponseHead? = nil) async throws -> Response {
        var head = known
        var body: [UInt8] = []
        var count = 0
        var hasher = SHA256()
        while let part = await self.next() {
            switch part {
            case .head(let received):
                // 1xx heads come before the response's own.
                if (100..<200).contains(received.status.code) { continue }
                head = received
            case .body(let chunk):
                count += chunk.readableBytes
                chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                if body.count < keep { body.append(contentsOf: chunk.readableBytesView.prefix(keep - body.count)) }
            case .end:
                guard let head else { throw TestFailure("response ended without a head") }
                return Response(head: head, body: body, count: count, sha256: hasher.finalize().map { String(format: "%02x", $0) }.joined())
            }
        }
        throw TestFailure("connection closed before the response ended (head: \(head.map { "\($0.status)" } ?? "none"), \(count) body bytes)")
    }

    /// A whole request and its response.
    ///
    /// Written in one flush and not awaited: a server that answers and closes once it has the request (a 404
    /// with `Connection: close`) may close before the client's last (empty) write of `.end` is done; the
    /// response is what counts.
    public func request(_ method: HTTPMethod, _ uri: String, headers: [(String, String)] = [], body: String? = nil, version: HTTPVersion = .http1_1) async throws -> Response {
        var all = HTTPHeaders(headers)
        if let body { all.add(name: "content-length", value: String(body.utf8.count)) }
        if !all.contains(name: "host") { all.add(name: "host", value: "localhost") }
        self.channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: version, method: method, uri: uri, headers: all)), promise: nil)
        if let body, !body.isEmpty { self.channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil) }
        self.channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        return try await self.response()
    }

    public func startReading() async throws {
        try await self.channel.setOption(.autoRead, value: true).get()
        self.channel.read()
    }

    public var isActive: Bool { self.channel.isActive }

    public func close() async {
        try? await self.channel.close()
    }

    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        let continuation: AsyncStream<Part>.Continuation
        let alpn: NIOLockedValueBox<String?>
        init(continuation: AsyncStream<Part>.Continuation, alpn: NIOLockedValueBox<String?>) {
            self.continuation = continuation
            self.alpn = alpn
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .handshakeCompleted(let negotiated)? = event as? TLSUserEvent { self.alpn.withLockedValue { $0 = negotiated } }
            context.fireUserInboundEventTriggered(event)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch Self.unwrapInboundIn(data) {
            case .head(let head): self.continuation.yield(.head(head))
            case .body(let body): self.continuation.yield(.body(body))
            case .end: self.continuation.yield(.end)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.continuation.finish()
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
