import LHTTPGateway
import LHTTPProtocol
import Logging
import NIOCore
import NIOHTTP1
import Prometheus
import NIOPosix

/// Routes plain HTTP requests: `POST /publish`, `GET /healthz`, `/metrics`, `/history`, `/presence`,
/// static files; with `proxy:` on, every other request is passed on whole (head, body parts, end) to the
/// ``HTTPProxyHandler`` behind it.
///
/// Websocket upgrades on the websocket paths never reach it (NIO's upgrade handler sits in front). The
/// request body is buffered only for publish, and only up to `limits.max_message_bytes`.
final class HTTPRequestRouter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    struct Settings: Sendable {
        var publishPath: String
        var websocketPaths: Set<String>
        var publish: PublishEndpoint
        var staticFiles: StaticFiles
        /// Largest publish body (`limits.max_message_bytes`, within `http.max_body_bytes`).
        var maxBodyBytes: Int
        /// Largest body of any other request (`http.max_body_bytes`).
        var maxRequestBodyBytes: Int
        /// `GET` path of the Prometheus text (empty: off), its token, and the registry it prints.
        var metricsPath: String
        var metricsToken: BearerToken
        var metricsRegistry: PrometheusCollectorRegistry?
        /// `Idempotency-Key` answers (nil: off).
        var deduplication: PublishDeduplication?
        /// Where requests lhttpd does not serve go (nil: `proxy:` off, they get 404).
        var proxy: ProxyRoutes? = nil
        /// Static files are read and written in pieces rather than sent from the file (`sendfile` cannot go
        /// through TLS).
        var readsFiles = false
        /// `proxy.websocket`: an upgrade on another path goes to the proxy, which tunnels it.
        var tunnelsWebsockets = false
    }

    private enum State {
        case idle
        /// Collecting a publish body.
        case publishing(HTTPRequestHead, query: [(name: String, value: String)], body: ByteBuffer)
        /// Waiting for the request end to answer (body counted, not kept).
        case waiting(HTTPRequestHead, Route, bodyBytes: Int)
        /// A response that closes the connection was sent; everything else is dropped.
        case closing
        /// Passing a request's parts on to the proxy, until its end.
        case forwarding
    }

    private enum Route {
        case healthz
        case history(channel: String, since: HistoryPosition?, limit: Int)
        case presence(channel: String, stats: Bool)
        case metrics
        case staticFile(String)
        case failure(ServerError)
        /// A websocket upgrade on a path that is neither lhttpd's nor tunnelled: 404, and the connection closes.
        case refusedUpgrade
    }

    private let settings: Settings
    private let gateway: Gateway
    private let metrics: ServerMetrics
    private let fileThreadPool: NIOThreadPool
    private let logger: Logger
    private var state = State.idle
    /// Set by the connect hook during `shouldUpgrade` when it refused: the upgrade request, delivered
    /// here as plain HTTP, is answered with this.
    var connectRefusal: ServerError?
    /// Between `channelRead` and `channelReadComplete`: responses wait for one flush at the end.
    private var inRead = false
    private var flushPending = false
    /// The connection's request clock (nil on connections built without one).
    private var deadline: HTTPDeadlineHandler?
    /// The current request's route, for the request counter.
    private var metricsRoute = ServerMetrics.HTTPRoute.other

    init(settings: Settings, gateway: Gateway, metrics: ServerMetrics, fileThreadPool: NIOThreadPool, logger: Logger) {
        self.settings = settings
        self.gateway = gateway
        self.metrics = metrics
        self.fileThreadPool = fileThreadPool
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.deadline = try? context.pipeline.syncOperations.handler(type: HTTPDeadlineHandler.self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.deadline = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.inRead = true
        switch (Self.unwrapInboundIn(data), self.state) {
        case (.head(let head), .idle):
            self.begin(head, context: context)
        case (.body(var chunk), .publishing(let head, let query, var body)):
            guard body.readableBytes + chunk.readableBytes <= self.settings.maxBodyBytes else {
                self.fail(.bodyTooLarge(limit: self.settings.maxBodyBytes), head: head, closing: true, context: context)
                return
            }
            self.state = .idle  // drop the reference so the append does not copy
            body.writeBuffer(&chunk)
            self.state = .publishing(head, query: query, body: body)
        case (.body(let chunk), .waiting(let head, let route, let bodyBytes)):
            let total = bodyBytes + chunk.readableBytes
            guard total <= self.settings.maxRequestBodyBytes else {
                self.fail(.bodyTooLarge(limit: self.settings.maxRequestBodyBytes), head: head, closing: true, context: context)
                return
            }
            self.state = .waiting(head, route, bodyBytes: total)
        case (.end, .publishing(let head, let query, let body)):
            self.state = .idle
            self.deadline?.requestComplete()
            self.publish(head: head, query: query, body: body, context: context)
        case (.end, .waiting(let head, let route, _)):
            self.state = .idle
            self.deadline?.requestComplete()
            self.answer(route, head: head, context: context)
        case (.body, .forwarding):
            context.fireChannelRead(data)
        case (.end, .forwarding):
            self.state = .idle
            context.fireChannelRead(data)
        case (.body, _), (.end, _), (.head, _):
            break
        }
    }

    /// Whether the proxy takes `path` (it is on and a route or the default backend serves it).
    private func proxies(_ path: Substring) -> Bool {
        self.settings.proxy?.route(for: path) != nil
    }

    /// Passes the request on to the proxy: its head now, its body parts and end as they arrive.
    private func forward(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        self.state = .forwarding
        context.fireChannelRead(Self.wrapInboundOut(.head(head)))
    }

    private func begin(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard let (path, query) = QueryString.split(head.uri) else { return }
        self.metricsRoute = .other
        if let refusal = self.connectRefusal {
            self.connectRefusal = nil
            self.metricsRoute = .upgrade
            self.metrics.upgradeRefused(status: refusal.httpStatus)
            self.state = .waiting(head, .failure(refusal), bodyBytes: 0)
            return
        }
        // A websocket upgrade that is not on a websocket path (NIO's upgrader let it through): the app's own
        // websocket, tunnelled with `proxy.websocket`, else refused rather than proxied as a plain GET.
        if self.settings.proxy != nil, head.headers["upgrade"].contains(where: { $0.lowercased().contains("websocket") }),
            !self.settings.websocketPaths.contains(String(path))
        {
            if self.settings.tunnelsWebsockets, self.proxies(path) {
                self.forward(head, context: context)  // the app's own websocket (`proxy.websocket`)
                return
            }
            // Closing: NIO's upgrade handler holds what follows a request that asked to upgrade.
            self.state = .waiting(head, .refusedUpgrade, bodyBytes: 0)
            return
        }
        // With the proxy on, a GET or HEAD that carries a body is the app's (a static file has no use for it).
        let bodyForTheApp = self.settings.proxy != nil
            && (head.headers.contains(name: "transfer-encoding") || (head.headers.first(name: "content-length").map { $0 != "0" } ?? false))
        let route: Route
        switch (head.method, path) {
        case (.POST, _) where path == self.settings.publishPath:
            self.metricsRoute = .publish
            guard let query else {
                route = .failure(.badQuery("invalid percent-encoding"))
                break
            }
            guard self.settings.publish.isAuthorized(head.headers["authorization"]) else {
                route = .failure(.unauthorized)
                break
            }
            if let length = head.headers.first(name: "content-length").flatMap(Int.init),
                length > self.settings.maxBodyBytes
            {
                self.fail(.bodyTooLarge(limit: self.settings.maxBodyBytes), head: head, closing: true, context: context)
                return
            }
            self.state = .publishing(head, query: query, body: context.channel.allocator.buffer(capacity: 0))
            return
        case (_, _) where path == self.settings.publishPath:
            route = .failure(.methodNotAllowed(allowed: "POST"))
        case (.GET, "/history"):
            route = self.historyRoute(query: query, authorization: head.headers["authorization"])
        case (.GET, "/presence"):
            route = self.presenceRoute(query: query, authorization: head.headers["authorization"])
        case (.GET, "/healthz"), (.HEAD, "/healthz"):
            self.metricsRoute = .healthz
            route = .healthz
        case (.GET, _) where path == self.settings.metricsPath && self.settings.metricsRegistry != nil:
            self.metricsRoute = .metrics
            route = self.settings.metricsToken.isAuthorized(head.headers["authorization"]) ? .metrics : .failure(.unauthorized)
        case (.GET, _) where !bodyForTheApp, (.HEAD, _) where !bodyForTheApp:
            if let file = self.settings.staticFiles.resolve(path) {
                self.metricsRoute = .staticFile
                route = .staticFile(file)
            } else if self.proxies(path) {
                // A websocket path's upgrades are lhttpd's; its plain requests are the app's (`/` is both).
                self.forward(head, context: context)
                return
            } else if self.settings.websocketPaths.contains(String(path)) {
                route = .failure(.upgradeRequired)
            } else {
                route = .failure(.notFound)
            }
        default:
            if self.proxies(path) {
                self.forward(head, context: context)
                return
            }
            route = .failure(.notFound)
        }
        if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > self.settings.maxRequestBodyBytes {
            self.fail(.bodyTooLarge(limit: self.settings.maxRequestBodyBytes), head: head, closing: true, context: context)
            return
        }
        self.state = .waiting(head, route, bodyBytes: 0)
    }

    /// `GET /history?channel=<name>&since=<epoch>:<offset>&limit=<n>`, with the publish token when one is set.
    private func historyRoute(query: [(name: String, value: String)]?, authorization: [String]) -> Route {
        guard let query else { return .failure(.badQuery("invalid percent-encoding")) }
        guard self.settings.publish.isAuthorized(authorization) else { return .failure(.unauthorized) }
        guard let channel = query.last(where: { $0.name == "channel" })?.value, !channel.isEmpty else {
            return .failure(.badQuery("channel is required"))
        }
        var since: HistoryPosition?
        if let text = query.last(where: { $0.name == "since" })?.value {
            guard let position = HistoryPosition(parsing: Substring(text)) else { return .failure(.badQuery("since must be <epoch>:<offset>")) }
            since = position
        }
        var limit = Self.defaultHistoryLimit
        if let text = query.last(where: { $0.name == "limit" })?.value {
            guard let value = Int(text), (1...Self.maxHistoryLimit).contains(value) else {
                return .failure(.badQuery("limit must be between 1 and \(Self.maxHistoryLimit)"))
            }
            limit = value
        }
        return .history(channel: channel, since: since, limit: limit)
    }

    /// `GET /presence?channel=<name>[&stats=1]`, with the publish token when one is set.
    private func presenceRoute(query: [(name: String, value: String)]?, authorization: [String]) -> Route {
        guard let query else { return .failure(.badQuery("invalid percent-encoding")) }
        guard self.settings.publish.isAuthorized(authorization) else { return .failure(.unauthorized) }
        guard let channel = query.last(where: { $0.name == "channel" })?.value, !channel.isEmpty else {
            return .failure(.badQuery("channel is required"))
        }
        let stats = query.last(where: { $0.name == "stats" }).map { $0.value == "1" || $0.value == "true" } ?? false
        return .presence(channel: channel, stats: stats)
    }

    /// Messages a `GET /history` returns without `limit`, and the most it may ask for.
    static let defaultHistoryLimit = 100
    static let maxHistoryLimit = 10_000

    private func answer(_ route: Route, head: HTTPRequestHead, context: ChannelHandlerContext) {
        switch route {
        case .history(let channel, let since, let limit):
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let limits = self.gateway.limits
            self.gateway.readHistory(channel, since: since, limit: limit, on: context.eventLoop).whenComplete { result in
                let (router, context) = loopBound.value
                switch result {
                case .success(.some(let read)):
                    let parser = LHTTPParser(limits: limits)
                    // What was kept was delivered: it parses (a message that would not is left out rather than failing all).
                    let messages = read.entries.compactMap { entry in (try? parser.parse(entry.payload)).map { (entry, $0) } }
                    router.respond(.ok, json: HistoryAnswer(channel: channel, read: read, messages: messages), head: head, context: context)
                case .success(.none):
                    router.fail(.noHistory(channel), head: head, closing: false, context: context)
                case .failure:
                    router.fail(.historyUnavailable, head: head, closing: false, context: context)
                }
            }
        case .presence(let channel, let stats):
            guard let presence = self.gateway.presence else {
                self.fail(.noPresence(channel), head: head, closing: false, context: context)
                return
            }
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            presence.snapshot(of: channel).hop(to: context.eventLoop).whenComplete { result in
                let (router, context) = loopBound.value
                guard case .success(.some(let snapshot)) = result else {
                    router.fail(.noPresence(channel), head: head, closing: false, context: context)
                    return
                }
                router.respond(.ok, json: RawJSON(bytes: snapshot.json(stats: stats)), head: head, context: context)
            }
        case .healthz:
            let stats = self.gateway.hub.stats
            let health = Health(
                connections: self.gateway.connectionCount,
                channels: stats.channels,
                subscriptions: stats.subscriptions,
                sections: self.gateway.broker.health.map { [$0] } ?? []
            )
            self.respond(.ok, json: health, head: head, context: context)
        case .metrics:
            self.gateway.recordGauges()
            let text = self.settings.metricsRegistry?.emitToBuffer() ?? []
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "text/plain; version=0.0.4; charset=utf-8")
            self.respond(.ok, headers: headers, body: .byteBuffer(ByteBuffer(bytes: text)), length: text.count, head: head, context: context)
        case .staticFile(let path):
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let forBody = head.method != .HEAD
            self.settings.staticFiles.openFile(path, forBody: forBody, pool: self.fileThreadPool, eventLoop: context.eventLoop).whenComplete { result in
                let (router, context) = loopBound.value
                switch result {
                case .success(.some(let file)):
                    router.respond(file: file, contentType: StaticFiles.contentType(for: path), head: head, context: context)
                case .success(.none), .failure:
                    let path = QueryString.split(head.uri)?.path ?? ""
                    if router.proxies(path) {
                        // No such file: the app's. Its head and end go on as if they had just arrived.
                        context.fireChannelRead(Self.wrapInboundOut(.head(head)))
                        context.fireChannelRead(Self.wrapInboundOut(.end(nil)))
                        context.fireChannelReadComplete()
                    } else if router.settings.websocketPaths.contains(String(path)) {
                        router.fail(.upgradeRequired, head: head, closing: false, context: context)
                    } else {
                        router.fail(.notFound, head: head, closing: false, context: context)
                    }
                }
            }
        case .failure(let error):
            self.fail(error, head: head, closing: false, context: context)
        case .refusedUpgrade:
            self.fail(.notFound, head: head, closing: true, context: context)
        }
    }

    private func publish(head: HTTPRequestHead, query: [(name: String, value: String)], body: ByteBuffer, context: ChannelHandlerContext) {
        do throws(ServerError) {
            let (payload, channels) = try self.settings.publish.publication(body: body, query: query)
            func publish() throws(ServerError) -> PublishResult {
                do throws(GatewayError) {
                    let published = try self.gateway.publishKeepingHistory(payload, to: channels, source: .http)
                    return PublishResult(channels: channels, deliveries: published.deliveries, positions: published.positions)
                } catch {
                    throw ServerError.publishRefused(error)
                }
            }
            // An Idempotency-Key counts while `publish.idempotency_window_s` is on, one node or cluster.
            let key = self.settings.deduplication == nil ? nil : head.headers.first(name: "idempotency-key")
            if let key, key.isEmpty || key.utf8.count > PublishDeduplication.maxKeyBytes {
                throw ServerError.badQuery("Idempotency-Key must be 1 to \(PublishDeduplication.maxKeyBytes) bytes")
            }
            if self.gateway.storesInCluster(channels) {
                // The cluster's store assigns the positions (and honours the Idempotency-Key: JetStream's
                // Nats-Msg-Id, whichever node the retry reaches): answered when it acknowledged.
                self.publishToStore(payload, to: channels, key: key, head: head, context: context)
                return
            }
            guard let key, let deduplication = self.settings.deduplication else {
                // The common case: the answer is written once, into the response.
                self.respond(.ok, json: try publish(), head: head, context: context)
                return
            }
            let (answer, replayed) = try deduplication.publishOnce(key: key, now: context.eventLoop.now) { () throws(ServerError) -> ByteBuffer in
                var answer = context.channel.allocator.buffer(capacity: 128)
                try publish().write(to: &answer)
                return answer
            }
            var headers = HTTPHeaders()
            if replayed { headers.add(name: "idempotent-replayed", value: "true") }
            self.respond(.ok, json: RawJSON(bytes: answer), headers: headers, head: head, context: context)
        } catch {
            self.fail(error, head: head, closing: false, context: context)
        }
    }

    private func publishToStore(_ payload: ByteBuffer, to channels: [String], key: String?, head: HTTPRequestHead, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.gateway.publishWhenStored(payload, to: channels, source: .http, idempotencyKey: key, on: context.eventLoop).whenComplete { result in
            let (router, context) = loopBound.value
            switch result {
            case .success(let published):
                var headers = HTTPHeaders()
                if published.replayed { headers.add(name: "idempotent-replayed", value: "true") }
                router.respond(
                    .ok, json: PublishResult(channels: channels, deliveries: published.deliveries, positions: published.positions),
                    headers: headers, head: head, context: context
                )
            case .failure(let error as GatewayError):
                router.fail(.publishRefused(error), head: head, closing: false, context: context)
            case .failure:
                router.fail(.publishRefused(.internalError), head: head, closing: false, context: context)
            }
        }
    }

    // MARK: Responses

    /// Answers with the error's status and a JSON body, and logs it (one line per rejected request).
    private func fail(_ error: ServerError, head: HTTPRequestHead, closing: Bool, context: ChannelHandlerContext) {
        self.logger.warning(
            "request rejected",
            metadata: [
                "http.method": "\(head.method)", "http.path": "\(Self.loggedTarget(head.uri))",
                "http.status": "\(error.httpStatus)", "lhttp.reason": "\(error)",
            ]
        )
        var headers = HTTPHeaders()
        // RFC 7235 4.1: a 401 says how to authenticate; RFC 6750 3.1: a refused token is invalid_token.
        if case .unauthorized = error { headers.add(name: "www-authenticate", value: "Bearer") }
        if case .connectRefused(401, _) = error { headers.add(name: "www-authenticate", value: #"Bearer error="invalid_token""#) }
        if case .methodNotAllowed(let allowed) = error { headers.add(name: "allow", value: allowed) }
        if case .upgradeRequired = error { headers.add(name: "upgrade", value: "websocket") }
        let body = Failure(error)
        self.respond(HTTPResponseStatus(statusCode: error.httpStatus), json: body, headers: headers, head: head, closing: closing, context: context)
    }

    /// The request target as logged: at most 200 bytes, with the value of a `token` query parameter (a
    /// connection token) left out.
    static func loggedTarget(_ uri: String) -> Substring {
        guard let mark = uri.firstIndex(of: "?") else { return uri.prefix(200) }
        let query = uri[uri.index(after: mark)...].split(separator: "&", omittingEmptySubsequences: false).map { item in
            item.hasPrefix("token=") ? "token=…" : item
        }
        return (uri[..<mark] + "?" + query.joined(separator: "&")).prefix(200)
    }

    private func respond(
        _ status: HTTPResponseStatus,
        json: some JSONBody,
        headers: HTTPHeaders = HTTPHeaders(),
        head: HTTPRequestHead,
        closing: Bool = false,
        context: ChannelHandlerContext
    ) {
        var headers = headers
        headers.add(name: "content-type", value: "application/json")
        var body = context.channel.allocator.buffer(capacity: 128)
        json.write(to: &body)
        body.writeStaticString("\n")
        self.respond(status, headers: headers, body: head.method == .HEAD ? nil : .byteBuffer(body), length: body.readableBytes, head: head, closing: closing, context: context)
    }

    /// Answers with a static file, sent from the file (`sendfile`); its handle is closed once the body is
    /// written or the connection is gone.
    private func respond(file: StaticFiles.OpenFile, contentType: String, head: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        guard let handle = file.handle else {
            self.respond(.ok, headers: headers, body: nil, length: file.size, head: head, context: context)
            return
        }
        if self.settings.readsFiles {
            self.respond(reading: handle, size: file.size, headers: headers, head: head, context: context)
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenComplete { _ in try? handle.close() }
        let region = FileRegion(fileHandle: handle, readerIndex: 0, endIndex: file.size)
        self.respond(.ok, headers: headers, body: .fileRegion(region), bodyWritten: written, length: file.size, head: head, context: context)
    }

    /// A static file over TLS: read off-loop in 64 KiB pieces, each written (and gone to the socket) before
    /// the next is read, so its size costs no memory.
    private func respond(reading handle: NIOFileHandle, size: Int, headers: HTTPHeaders, head: HTTPRequestHead, context: ChannelHandlerContext) {
        self.metrics.httpRequest(route: self.metricsRoute, status: 200)
        var headers = headers
        headers.add(name: "content-length", value: String(size))
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        NonBlockingFileIO(threadPool: self.fileThreadPool).readChunked(
            fileHandle: handle, byteCount: size, chunkSize: 64 << 10, allocator: context.channel.allocator, eventLoop: context.eventLoop
        ) { chunk in
            let (_, context) = loopBound.value
            return context.writeAndFlush(Self.wrapOutboundOut(.body(.byteBuffer(chunk))))
        }.whenComplete { result in
            try? handle.close()
            let (router, context) = loopBound.value
            guard case .success = result, keepAlive else {
                context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
                return
            }
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
            router.deadline?.responseComplete()
        }
    }

    private func respond(
        _ status: HTTPResponseStatus,
        headers: HTTPHeaders,
        body: IOData?,
        bodyWritten: EventLoopPromise<Void>? = nil,
        length: Int,
        head: HTTPRequestHead,
        closing: Bool = false,
        context: ChannelHandlerContext
    ) {
        self.metrics.httpRequest(route: self.metricsRoute, status: Int(status.code))
        var headers = headers
        headers.add(name: "content-length", value: String(length))
        let keepAlive = head.isKeepAlive && !closing
        if !keepAlive { headers.add(name: "connection", value: "close") }
        if closing { self.state = .closing }
        context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if let body { context.write(Self.wrapOutboundOut(.body(body)), promise: bodyWritten) }
        guard keepAlive else {
            let channel = context.channel
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        context.write(Self.wrapOutboundOut(.end(nil)), promise: nil)
        self.deadline?.responseComplete()
        // Pipelined requests arrive in one read: answer them all, flush once when the read is done.
        if self.inRead {
            self.flushPending = true
        } else {
            context.flush()
        }
    }

    /// NIO's HTTP parser failed: `HTTPServerProtocolErrorHandler` has already answered (and flushed) a 400
    /// with `Connection: close`. The connection closes now, not at the request timeout with a second answer.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        self.logger.warning(
            "malformed HTTP request: closing",
            metadata: ["lhttp.remote": "\(context.channel.peerAddress)", "http.status": "400", "lhttp.reason": "\(error)"]
        )
        self.state = .closing
        context.close(promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.inRead = false
        if self.flushPending {
            self.flushPending = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }
}
