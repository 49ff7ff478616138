import LHTTPConfig
import LHTTPGateway
import Logging
import NIOCore
import NIOHTTP1

/// Sends what the router passes on (every request lhttpd does not serve itself) to the app's backend
/// through a ``ProxyTransport``, streamed both ways.
///
/// The request body goes to the transport as it arrives; when the transport's window is full, reading
/// from the client stops until it asks for more. The response goes to the client as it arrives (chunked
/// when its length is unknown); each body part written to the socket is reported back, and the transport
/// stops reading from the backend while a window of them is not written: a slow reader pauses the
/// transfer instead of growing memory.
///
/// One exchange at a time: NIO's pipelining handler passes the next request on only once this one's
/// response has ended. Timeouts are on the event loop's clock: `first_byte_timeout_ms` from the
/// request's last byte to the response head, `idle_timeout_ms` without a byte moving either way.
final class HTTPProxyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    struct Settings: Sendable {
        var routes: ProxyRoutes
        var transport: any ProxyTransport
        var trusted: [IPNetwork]
        var connectTimeoutMilliseconds: Int
        var firstByteTimeout: TimeAmount
        var idleTimeout: TimeAmount
        var maxRequestBodyBytes: Int
        /// `https` when the listener speaks TLS.
        var scheme: String
        /// Verifies a request's bearer token for `X-LHTTP-User` (nil: no tokens configured).
        var authentication: Authentication?
        /// `proxy.websocket`: the router passes on websocket upgrades, which are tunnelled.
        var websocketTunnel: Bool

        init(_ configuration: ProxyConfig, transport: any ProxyTransport, scheme: String, authentication: Authentication?) {
            self.routes = ProxyRoutes(configuration)
            self.transport = transport
            self.trusted = configuration.trustedProxies.compactMap(IPNetwork.init(parsing:))
            self.connectTimeoutMilliseconds = configuration.connectTimeoutMs
            self.firstByteTimeout = .milliseconds(Int64(configuration.firstByteTimeoutMs))
            self.idleTimeout = .milliseconds(Int64(configuration.idleTimeoutMs))
            self.maxRequestBodyBytes = configuration.maxRequestBodyBytes
            self.scheme = scheme
            self.authentication = authentication
            self.websocketTunnel = configuration.websocket
        }
    }

    /// One request being proxied.
    private final class Exchange {
        let head: HTTPRequestHead
        let route: ProxyRoutes.Route
        var stream: (any ProxyStream)?
        /// Body parts that arrived before the stream started (the token check runs first).
        var early: [ByteBuffer] = []
        var bodyBytes = 0
        var requestDone = false
        var responseStarted = false
        var keepAlive = true
        var status = 0
        var lastActivity: NIODeadline
        var firstByteDeadline: NIODeadline?

        init(head: HTTPRequestHead, route: ProxyRoutes.Route, now: NIODeadline) {
            self.head = head
            self.route = route
            self.lastActivity = now
        }
    }

    private let settings: Settings
    private let metrics: ServerMetrics
    private let logger: Logger
    private var exchange: Exchange?
    /// Reading from the client is held (the request window is full, or the stream is not started yet).
    private var readHeld = false
    private var readPending = false
    /// After a response that closes: everything else is dropped.
    private var closing = false
    private var context: ChannelHandlerContext?
    private var deadline: HTTPDeadlineHandler?
    /// The connection's timeout check (see ``armTimer(_:)``) and when it fires.
    private var timer: Scheduled<Void>?
    private var timerDue = NIODeadline.distantFuture

    init(settings: Settings, metrics: ServerMetrics, logger: Logger) {
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
    }

    private var now: NIODeadline { self.context?.eventLoop.now ?? .now() }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.deadline = try? context.pipeline.syncOperations.handler(type: HTTPDeadlineHandler.self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.abandon()
        self.timer?.cancel()
        self.timer = nil
        self.context = nil
        self.deadline = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.abandon()
        context.fireChannelInactive()
    }

    // MARK: Inbound: the request

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.closing else { return }
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.begin(head, context: context)
        case .body(let chunk):
            guard let exchange = self.exchange, !exchange.requestDone else { return }
            exchange.bodyBytes += chunk.readableBytes
            exchange.lastActivity = self.now
            guard exchange.bodyBytes <= self.settings.maxRequestBodyBytes else {
                self.fail(exchange, status: 413, reason: "request body larger than proxy.max_request_body_bytes (\(self.settings.maxRequestBodyBytes))", context: context)
                return
            }
            if let stream = exchange.stream {
                if !stream.write(chunk) { self.readHeld = true }
            } else {
                exchange.early.append(chunk)
            }
        case .end:
            guard let exchange = self.exchange, !exchange.requestDone else { return }
            exchange.requestDone = true
            exchange.lastActivity = self.now
            exchange.stream?.end()
            if !exchange.responseStarted {
                exchange.firstByteDeadline = self.now + self.settings.firstByteTimeout
                self.armTimer(exchange)
            }
        }
    }

    private func begin(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        // The head is whole: the request clock stops (the exchange has its own idle and first-byte limits).
        self.deadline?.requestComplete()
        guard head.uri.hasPrefix("/"), let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first,
            let route = self.settings.routes.route(for: path)
        else {
            self.respondError(status: 400, text: "request target must be a path (origin-form)", head: head, route: nil, closing: true, context: context)
            return
        }
        // A `.` or `..` segment (also percent-encoded) could climb out of the route's prefix at the backend.
        guard !ProxyRoutes.hasDotSegment(path) else {
            self.respondError(status: 400, text: "dot segments (/./, /../) are not allowed in a proxied path", head: head, route: route, closing: true, context: context)
            return
        }
        if self.settings.websocketTunnel, head.headers["upgrade"].contains(where: { $0.lowercased().contains("websocket") }) {
            self.tunnel(head, route: route, context: context)
            return
        }
        let exchange = Exchange(head: head, route: route, now: self.now)
        self.exchange = exchange
        let lengths = head.headers["content-length"]
        var body = ProxyRequest.Body.none
        if head.headers.contains(name: "transfer-encoding") {
            body = .chunked
        } else if let text = lengths.first {
            guard lengths.allSatisfy({ $0 == text }), let length = Int(text), length >= 0 else {
                self.fail(exchange, status: 400, reason: "bad Content-Length", context: context)
                return
            }
            guard length <= self.settings.maxRequestBodyBytes else {
                self.fail(exchange, status: 413, reason: "request body of \(length) bytes is larger than proxy.max_request_body_bytes (\(self.settings.maxRequestBodyBytes))", context: context)
                return
            }
            body = .length(length)
        }
        // RFC 7231 5.1.1: the client waits for 100 before sending its body; lhttpd streams it, so it says so.
        if body != .none, head.version == .http1_1, head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            context.writeAndFlush(Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        let address = context.channel.remoteAddress
        let client = ProxyHeaders.Client(
            address: address.flatMap(Self.addressBytes), addressText: address?.ipAddress ?? "unknown", scheme: self.settings.scheme, user: nil
        )
        self.armTimer(exchange)
        guard let authentication = self.settings.authentication, let token = BearerToken.credential(head.headers["authorization"]) else {
            self.start(exchange, body: body, client: client, context: context)
            return
        }
        // Only a verified token names a user: the backend may trust X-LHTTP-User (a client's own is removed).
        self.readHeld = true
        let loopBound = NIOLoopBound((self, context, exchange), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        authentication.verifier.verify(String(token)) { result in
            eventLoop.execute {
                let (handler, context, exchange) = loopBound.value
                guard handler.exchange === exchange else { return }
                var verified = client
                if case .success(let identity) = result, !identity.user.isEmpty { verified.user = identity.user }
                handler.start(exchange, body: body, client: verified, context: context)
            }
        }
    }

    private func start(_ exchange: Exchange, body: ProxyRequest.Body, client: ProxyHeaders.Client, context: ChannelHandlerContext) {
        let request = ProxyRequest(
            method: exchange.head.method.rawValue,
            url: self.settings.routes.url(for: exchange.head.uri, on: exchange.route),
            headers: ProxyHeaders.request(exchange.head.headers, client: client, trusted: self.settings.trusted),
            body: body,
            connectTimeoutMilliseconds: self.settings.connectTimeoutMilliseconds
        )
        let boundHandler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let boundExchange = NIOLoopBound(exchange, eventLoop: context.eventLoop)
        let stream = self.settings.transport.start(request, on: context.eventLoop) { events in
            let handler = boundHandler.value
            let exchange = boundExchange.value
            guard let context = handler.context else { return }
            // A batch is written, then flushed once (a small response: one write for head, body and end).
            // A batch that ends the response needs no accounting of what the client took.
            let ends: Bool
            if case .end? = events.last { ends = true } else { ends = false }
            for event in events {
                guard let current = handler.exchange, current === exchange else { break }
                handler.handle(event, exchange, accounted: !ends, context: context)
            }
            context.flush()
        }
        exchange.stream = stream
        var open = true
        for chunk in exchange.early { open = stream.write(chunk) && open }
        exchange.early = []
        if exchange.requestDone { stream.end() }
        self.setReadHeld(!open, context: context)
    }

    // MARK: The response

    private func handle(_ event: ProxyEvent, _ exchange: Exchange, accounted: Bool, context: ChannelHandlerContext) {
        exchange.lastActivity = self.now
        switch event {
        case .head(let status, let reason, let lines):
            exchange.responseStarted = true
            exchange.firstByteDeadline = nil
            exchange.status = status
            var headers = ProxyHeaders.response(lines)
            let request = exchange.head
            let hasBody = request.method != .HEAD && !(100..<200).contains(status) && status != 204 && status != 304
            // HTTP/1.0 has no chunked coding: a body of unknown length ends with the connection. A request
            // whose body is not read whole cannot be followed by another on this connection.
            // NIO's upgrade handler holds the requests that follow one that asked to upgrade (h2c): close after it.
            exchange.keepAlive = request.isKeepAlive && exchange.requestDone && !request.headers.contains(name: "upgrade")
                && !(request.version.minor == 0 && hasBody && !headers.contains(name: "content-length"))
            if !exchange.keepAlive {
                headers.replaceOrAdd(name: "connection", value: "close")
            } else if request.version.minor == 0 {
                headers.replaceOrAdd(name: "connection", value: "keep-alive")
            }
            let responseStatus = HTTPResponseStatus(statusCode: status, reasonPhrase: reason)
            context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: responseStatus, headers: headers))), promise: nil)
        case .body(let chunk):
            guard accounted else {
                context.write(Self.wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
                return
            }
            let bytes = chunk.readableBytes
            let written = context.eventLoop.makePromise(of: Void.self)
            let boundHandler = NIOLoopBound(self, eventLoop: context.eventLoop)
            let boundExchange = NIOLoopBound(exchange, eventLoop: context.eventLoop)
            written.futureResult.whenSuccess {
                let exchange = boundExchange.value
                exchange.stream?.consumed(bytes)
                exchange.lastActivity = boundHandler.value.now
            }
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(chunk))), promise: written)
        case .end:
            self.metrics.proxyResponse(route: exchange.route, status: exchange.status)
            self.finish(exchange, context: context)
            let keepAlive = exchange.keepAlive
            let channel = context.channel
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { channel.close(promise: nil) }
            }
            if keepAlive {
                self.deadline?.responseComplete()
            } else {
                self.closing = true
            }
        case .failed(let failure):
            self.fail(exchange, status: failure.httpStatus, reason: failure.description, context: context)
        case .requestBodyWanted:
            self.setReadHeld(false, context: context)
        }
    }

    /// Ends `exchange` with `status`: an error response when no head went out yet, else the connection
    /// is closed mid-response (the client sees it truncated).
    private func fail(_ exchange: Exchange, status: Int, reason: String, context: ChannelHandlerContext) {
        exchange.stream?.cancel()
        self.finish(exchange, context: context)
        if exchange.responseStarted {
            self.logger.warning(
                "proxied response cut",
                metadata: ["http.method": "\(exchange.head.method)", "http.path": "\(HTTPRequestRouter.loggedTarget(exchange.head.uri))", "lhttp.route": "\(exchange.route.label)", "lhttp.reason": "\(reason)"]
            )
            self.metrics.proxyAborted(route: exchange.route)
            self.closing = true
            context.close(promise: nil)
            return
        }
        self.respondError(status: status, text: reason, head: exchange.head, route: exchange.route, closing: !exchange.requestDone || !exchange.head.isKeepAlive, context: context)
    }

    /// A short `text/plain` answer of lhttpd's own (400, 413, 502, 503, 504), logged and counted.
    private func respondError(status: Int, text: String, head: HTTPRequestHead, route: ProxyRoutes.Route?, closing: Bool, context: ChannelHandlerContext) {
        self.logger.warning(
            "proxy request failed",
            metadata: [
                "http.method": "\(head.method)", "http.path": "\(HTTPRequestRouter.loggedTarget(head.uri))", "http.status": "\(status)",
                "lhttp.route": "\(route?.label ?? "-")", "lhttp.reason": "\(text)",
            ]
        )
        if let route { self.metrics.proxyResponse(route: route, status: status) }
        let responseStatus = HTTPResponseStatus(statusCode: status)
        var body = context.channel.allocator.buffer(capacity: text.utf8.count + 40)
        body.writeString("\(status) \(responseStatus.reasonPhrase): \(text)\n")
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: String(body.readableBytes))
        if closing { headers.add(name: "connection", value: "close") }
        context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: responseStatus, headers: headers))), promise: nil)
        if head.method != .HEAD { context.write(Self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let channel = context.channel
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).whenComplete { _ in
            if closing { channel.close(promise: nil) }
        }
        if closing {
            self.closing = true
        } else {
            self.deadline?.responseComplete()
        }
        self.exchange = nil
        self.setReadHeld(false, context: context)
    }

    private func finish(_ exchange: Exchange, context: ChannelHandlerContext) {
        exchange.stream = nil
        if self.exchange === exchange { self.exchange = nil }
        self.setReadHeld(false, context: context)
    }

    /// The client left (or the handler is removed): the exchange is cancelled.
    private func abandon() {
        guard let exchange = self.exchange else { return }
        self.exchange = nil
        self.timer?.cancel()
        self.timer = nil
        exchange.stream?.cancel()
        exchange.stream = nil
    }

    // MARK: The app's own websocket

    /// Connects to the route's backend, sends it the upgrade request, and turns this connection into a
    /// byte-for-byte tunnel to it (this handler and the HTTP ones leave the pipeline).
    private func tunnel(_ head: HTTPRequestHead, route: ProxyRoutes.Route, context: ChannelHandlerContext) {
        guard let endpoint = WebSocketTunnel.endpoint(of: route.base), !endpoint.secure else {
            self.respondError(status: 502, text: "a websocket is tunnelled to an http:// backend only", head: head, route: route, closing: true, context: context)
            return
        }
        let url = self.settings.routes.url(for: head.uri, on: route)
        var target = String(url.dropFirst(endpoint.origin.count))
        if !target.hasPrefix("/") { target = "/" + target }
        let address = context.channel.remoteAddress
        let client = ProxyHeaders.Client(
            address: address.flatMap(Self.addressBytes), addressText: address?.ipAddress ?? "unknown", scheme: self.settings.scheme, user: nil
        )
        let request = WebSocketTunnel.requestBytes(
            method: head.method, target: target, headers: ProxyHeaders.request(head.headers, client: client, trusted: self.settings.trusted),
            upgrade: head.headers.first(name: "upgrade") ?? "websocket", allocator: context.channel.allocator
        )
        // Nothing more is read from the client until the two sockets are glued.
        self.readHeld = true
        let (clientGlue, backendGlue) = GlueHandler.matchedPair()
        let loopBound = NIOLoopBound((self, context, clientGlue), eventLoop: context.eventLoop)
        let connectTimeout = TimeAmount.milliseconds(Int64(self.settings.connectTimeoutMilliseconds))
        WebSocketTunnel.connect(endpoint, on: context.eventLoop, connectTimeout: connectTimeout, glue: backendGlue).whenComplete { result in
            let (handler, context, clientGlue) = loopBound.value
            switch result {
            case .failure(let error):
                handler.respondError(status: 502, text: "websocket tunnel: \(error)", head: head, route: route, closing: true, context: context)
            case .success(let backend):
                guard context.channel.isActive else {
                    backend.close(promise: nil)
                    return
                }
                handler.metrics.proxyTunnel(route: route)
                backend.writeAndFlush(request, promise: nil)
                handler.becomeTunnel(clientGlue, context: context)
            }
        }
    }

    /// Leaves only the transport (and TLS) below `glue`: the HTTP codec, the request clock, the gate, the
    /// router and this handler go.
    private func becomeTunnel(_ glue: GlueHandler, context: ChannelHandlerContext) {
        let operations = context.pipeline.syncOperations
        func remove<Handler: RemovableChannelHandler>(_ type: Handler.Type) {
            if let handler = try? operations.handler(type: type) { operations.removeHandler(handler, promise: nil) }
        }
        remove(HTTPDeadlineHandler.self)
        remove(HTTPServerUpgradeHandler.self)
        remove(HTTPServerProtocolErrorHandler.self)
        remove(HTTPServerPipelineHandler.self)
        remove(HTTPPipeliningGate.self)
        remove(HTTPRequestRouter.self)
        remove(ByteToMessageHandler<HTTPRequestDecoder>.self)
        remove(HTTPResponseEncoder.self)
        let channel = context.channel
        do {
            try operations.addHandler(glue)
        } catch {
            channel.close(promise: nil)
            return
        }
        operations.removeHandler(self, promise: nil)
        channel.read()
    }

    // MARK: Timers

    /// The connection's one check, at the earliest deadline of the exchange: kept across exchanges (a
    /// request costs no timer of its own); when it fires it acts on the exchange of then, or re-arms for
    /// what is left, or ends when there is none.
    private func armTimer(_ exchange: Exchange) {
        guard let context = self.context else { return }
        var due = exchange.lastActivity + self.settings.idleTimeout
        if let firstByte = exchange.firstByteDeadline, firstByte < due { due = firstByte }
        if self.timer != nil, self.timerDue <= due { return }  // an earlier check re-arms for the rest
        self.timer?.cancel()
        self.timerDue = due
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.timer = context.eventLoop.scheduleTask(deadline: due) { loopBound.value.timerFired() }
    }

    private func timerFired() {
        self.timer = nil
        guard let context = self.context, let exchange = self.exchange else { return }
        let now = self.now
        if let firstByte = exchange.firstByteDeadline, now >= firstByte {
            self.fail(exchange, status: 504, reason: "backend timed out: no response within proxy.first_byte_timeout_ms", context: context)
        } else if now >= exchange.lastActivity + self.settings.idleTimeout {
            self.fail(exchange, status: 504, reason: "backend timed out: nothing moved for proxy.idle_timeout_ms", context: context)
        } else {
            self.armTimer(exchange)
        }
    }

    // MARK: Reading from the client

    private func setReadHeld(_ held: Bool, context: ChannelHandlerContext) {
        self.readHeld = held
        if !held, self.readPending {
            self.readPending = false
            context.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        if self.readHeld {
            self.readPending = true
        } else {
            context.read()
        }
    }

    private static func addressBytes(_ address: SocketAddress) -> [UInt8]? {
        switch address {
        case .v4(let v4):
            return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6):
            return withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        case .unixDomainSocket:
            return nil
        }
    }
}
