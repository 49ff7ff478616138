import LHTTPConfig
import LHTTPGateway
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import Prometheus

/// Builds each accepted connection's pipeline: the HTTP/1.1 server pipeline with its request clock, its
/// pipelining gate and router, and NIO's websocket upgrader on the configured paths (origin check and connection cap, then the
/// connect hook, before the upgrade is answered).
struct ConnectionPipeline: Sendable {
    let configuration: GatewayConfig
    let gateway: Gateway
    let metrics: ServerMetrics
    let metricsRegistry: PrometheusCollectorRegistry?
    let fileThreadPool: NIOThreadPool
    let logger: Logger
    /// The websocket services of a loop (called on that loop).
    let loop: @Sendable (any EventLoop) -> ConnectionLoop
    /// `Idempotency-Key` answers, shared by every connection (nil: `publish.idempotency_window_s` is 0).
    let deduplication: PublishDeduplication?
    /// The reverse proxy (nil: `proxy:` off).
    let proxy: HTTPProxyHandler.Settings?
    /// The listener's certificate (nil: plain HTTP).
    let tls: TLSCertificates?

    func configure(_ channel: any Channel) -> EventLoopFuture<Void> {
        let configuration = self.configuration
        let gateway = self.gateway
        let limits = configuration.limits
        let websocketPaths = Set(configuration.websocket.paths)
        let allowedOrigins = OriginPolicy(allowed: configuration.websocket.allowedOrigins)
        // The connection slot reserved and what the connect hook accepted, from `shouldUpgrade` to
        // `upgradePipelineHandler` (the HTTP router is already gone by then).
        let accepted = NIOLoopBoundBox<AcceptedConnect?>(nil, eventLoop: channel.eventLoop)
        let handlerSettings = WebSocketConnectionHandler.Settings(
            maxMessageBytes: limits.maxMessageBytes,
            closeTimeout: TimeAmount(.seconds(configuration.websocket.closeTimeoutS)),
            writeCoalescing: .microseconds(Int64(configuration.websocket.writeCoalescingUs))
        )
        let connectionLoop = self.loop
        let metrics = self.metrics
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: limits.maxMessageBytes,
            automaticErrorHandling: false,
            shouldUpgrade: { channel, head in
                let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
                let path = parts.first.map(String.init) ?? head.uri
                guard websocketPaths.contains(path) else { return channel.eventLoop.makeSucceededFuture(nil) }
                let slot: ConnectionSlot
                switch Self.admit(head: head, origins: allowedOrigins, maxConnections: limits.maxConnections, gateway: gateway) {
                case .success(let reserved):
                    slot = reserved
                case .failure(let refusal):
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.handler(type: HTTPRequestRouter.self).connectRefusal = refusal
                        return nil
                    }
                }
                // The head is whole: the request clock stops (the connect hook has its own timeout, and a
                // held answer is the app's time, not a slow client's).
                try? channel.pipeline.syncOperations.handler(type: HTTPDeadlineHandler.self).requestComplete()
                let query = parts.count > 1 ? String(parts[1]) : ""
                guard let authentication = gateway.authentication else {
                    return Self.connect(channel: channel, head: head, path: path, query: query, identity: nil, slot: slot, accepted: accepted, gateway: gateway)
                }
                return Self.authenticate(head: head, query: query, authentication, channel: channel, slot: slot).flatMap { identity in
                    guard case .success(let identity) = identity else { return channel.eventLoop.makeSucceededFuture(nil) }
                    return Self.connect(channel: channel, head: head, path: path, query: query, identity: identity, slot: slot, accepted: accepted, gateway: gateway)
                }
            },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    let admitted = accepted.value
                    accepted.value = nil  // the handler owns the slot from here
                    try channel.pipeline.syncOperations.addHandler(
                        WebSocketConnectionHandler(
                            gateway: gateway,
                            settings: handlerSettings,
                            metrics: metrics,
                            id: admitted?.id ?? .next(),
                            remoteAddress: channel.peerAddress,
                            identity: admitted?.identity,
                            connectActions: admitted?.actions ?? [],
                            slot: admitted?.slot,
                            loop: connectionLoop(channel.eventLoop)
                        )
                    )
                }
            }
        )
        let settings = self.routerSettings()
        let pool = self.fileThreadPool
        let logger = self.logger
        let http = configuration.http
        let proxySettings = self.proxy
        let tls = self.tls
        return channel.eventLoop.makeCompletedFuture {
            if let tls {
                // The certificate of now: a SIGHUP reload reaches new connections, open ones keep theirs.
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.current))
            }
            let router = HTTPRequestRouter(settings: settings, gateway: gateway, metrics: metrics, fileThreadPool: pool, logger: logger)
            let boundRouter = NIOLoopBound(router, eventLoop: channel.eventLoop)
            let proxyHandler = proxySettings.map { HTTPProxyHandler(settings: $0, metrics: metrics, logger: logger) }
            let boundProxy = proxyHandler.map { NIOLoopBound($0, eventLoop: channel.eventLoop) }
            let deadline = HTTPDeadlineHandler(
                requestTimeout: TimeAmount(.seconds(http.requestTimeoutS)),
                keepaliveTimeout: TimeAmount(.seconds(http.keepaliveTimeoutS)),
                closeTimeout: TimeAmount(.seconds(configuration.websocket.closeTimeoutS)),
                logger: logger,
                onTimeout: { metrics.httpRequestTimedOut() }
            )
            let boundDeadline = NIOLoopBound(deadline, eventLoop: channel.eventLoop)
            let gate = HTTPPipeliningGate()
            let boundGate = NIOLoopBound(gate, eventLoop: channel.eventLoop)
            try channel.pipeline.syncOperations.addHandler(deadline)
            // Outbound header validation is off: every response header is written by HTTPRequestRouter
            // from constants and numbers, never from request input (it cost 8% of a publish).
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withServerUpgrade: (
                    upgraders: [upgrader],
                    completionHandler: { context in
                        context.pipeline.syncOperations.removeHandler(boundRouter.value, promise: nil)
                        context.pipeline.syncOperations.removeHandler(boundDeadline.value, promise: nil)
                        context.pipeline.syncOperations.removeHandler(boundGate.value, promise: nil)
                        if let boundProxy { context.pipeline.syncOperations.removeHandler(boundProxy.value, promise: nil) }
                    }
                ),
                withErrorHandling: true,
                withOutboundHeaderValidation: false
            )
            // Between NIO's pipelining handler and the router: the next request waits for the answers before
            // it to be written out, not merely queued.
            try channel.pipeline.syncOperations.addHandler(gate)
            try channel.pipeline.syncOperations.addHandler(router)
            if let proxyHandler { try channel.pipeline.syncOperations.addHandler(proxyHandler) }
        }
    }

    private func routerSettings() -> HTTPRequestRouter.Settings {
        let configuration = self.configuration
        return HTTPRequestRouter.Settings(
            publishPath: configuration.publish.path,
            websocketPaths: Set(configuration.websocket.paths),
            publish: PublishEndpoint(token: configuration.publish.token, limits: self.gateway.limits),
            staticFiles: StaticFiles(root: configuration.staticDir),
            maxBodyBytes: min(configuration.limits.maxMessageBytes, configuration.http.maxBodyBytes),
            maxRequestBodyBytes: configuration.http.maxBodyBytes,
            metricsPath: configuration.metrics.path,
            metricsToken: BearerToken(configuration.metrics.token),
            metricsRegistry: self.metricsRegistry,
            deduplication: self.deduplication,
            proxy: self.proxy?.routes,
            readsFiles: self.tls != nil,
            tunnelsWebsockets: self.proxy?.websocketTunnel ?? false
        )
    }

    /// Admits an upgrade before the connect hook is asked: its connection slot, reserved atomically, or why
    /// it is refused (a browser origin not allowed, the node's connection cap reached). Each refusal is
    /// answered by the HTTP router (403, 503) and logged there. The slot goes back when the hook refuses,
    /// when the connection ends before it is a websocket (its last reference dropped), or when the
    /// websocket closes.
    private static func admit(head: HTTPRequestHead, origins: OriginPolicy, maxConnections: Int, gateway: Gateway) -> Result<ConnectionSlot, ServerError> {
        if let origin = head.headers.first(name: "origin"), !origins.allows(origin: origin, host: head.headers.first(name: "host")) {
            return .failure(.originNotAllowed(origin))
        }
        guard let slot = gateway.connectionSlots.reserve(limit: maxConnections) else {
            return .failure(.tooManyConnections(limit: maxConnections))
        }
        return .success(slot)
    }

    /// The token of an upgrade (`Authorization: Bearer`, else `?token=`), verified: `.success(nil)` without
    /// one when none is required; a missing (when required) or refused token is answered 401 and yields
    /// `.failure` (the slot is given back).
    private static func authenticate(
        head: HTTPRequestHead, query: String, _ authentication: Authentication, channel: any Channel, slot: ConnectionSlot
    ) -> EventLoopFuture<Result<ConnectionIdentity?, TokenRefusal>> {
        let loop = channel.eventLoop
        /// A missing token is a plain `unauthorized` (RFC 6750 3.1: no error code), a bad one `invalid_token`.
        func refuse(_ reason: String, missing: Bool = false) -> EventLoopFuture<Result<ConnectionIdentity?, TokenRefusal>> {
            loop.makeCompletedFuture {
                slot.release()
                try channel.pipeline.syncOperations.handler(type: HTTPRequestRouter.self).connectRefusal =
                    missing ? .unauthorized : .connectRefused(status: 401, reason: "token refused: \(reason)")
                return .failure(TokenRefusal(reason))
            }
        }
        var token = BearerToken.credential(head.headers["authorization"]).map(String.init)
        if token == nil, !query.isEmpty {
            guard let pairs = QueryString.split("?" + query)?.query else { return refuse("invalid percent-encoding in the query") }
            token = pairs.last { $0.name == "token" }?.value
        }
        guard let token, !token.isEmpty else {
            return authentication.required ? refuse("a token is required", missing: true) : loop.makeSucceededFuture(.success(nil))
        }
        let promise = loop.makePromise(of: Result<ConnectionIdentity, TokenRefusal>.self)
        authentication.verifier.verify(token) { promise.succeed($0) }
        return promise.futureResult.flatMap { result in
            switch result {
            case .success(let identity): return loop.makeSucceededFuture(.success(identity))
            case .failure(let refusal): return refuse(refusal.reason)
            }
        }
    }

    /// Accepts the upgrade, after the connect hook when there is one. The token's exact channels are
    /// subscribed first, then what the hook asked for.
    private static func connect(
        channel: any Channel, head: HTTPRequestHead, path: String, query: String, identity: ConnectionIdentity?, slot: ConnectionSlot,
        accepted: NIOLoopBoundBox<AcceptedConnect?>, gateway: Gateway
    ) -> EventLoopFuture<HTTPHeaders?> {
        let granted: [AppAction] = (identity?.grants.exact).flatMap { $0.isEmpty ? nil : [.subscribe($0)] } ?? []
        guard let hook = gateway.connectHook else {
            accepted.value = AcceptedConnect(id: .next(), actions: granted, slot: slot, identity: identity?.withoutClaims)
            return channel.eventLoop.makeSucceededFuture(HTTPHeaders())
        }
        return Self.askConnectHook(hook, channel: channel, head: head, path: path, query: query, identity: identity, granted: granted, slot: slot, accepted: accepted)
    }

    /// Runs the connect hook during the upgrade: on acceptance the upgrade proceeds (the connection gets the
    /// hook's id and actions); on refusal or failure the request is answered with the hook's status.
    private static func askConnectHook(
        _ hook: any ConnectHook,
        channel: any Channel,
        head: HTTPRequestHead,
        path: String,
        query: String,
        identity: ConnectionIdentity?,
        granted: [AppAction],
        slot: ConnectionSlot,
        accepted: NIOLoopBoundBox<AcceptedConnect?>
    ) -> EventLoopFuture<HTTPHeaders?> {
        var headers: [String: String] = [:]
        for name in ["cookie", "authorization", "origin", "user-agent"] {
            let values = head.headers[name]
            if !values.isEmpty { headers[name] = values.joined(separator: "; ") }
        }
        let request = ConnectRequest(id: .next(), remoteAddress: channel.peerAddress, path: path, query: query, headers: headers, identity: identity)
        let promise = channel.eventLoop.makePromise(of: ConnectDecision.self)
        hook.connect(request, on: channel.eventLoop) { promise.succeed($0) }
        return promise.futureResult.flatMapThrowing { decision in
            let router = try channel.pipeline.syncOperations.handler(type: HTTPRequestRouter.self)
            switch decision {
            case .accept(let actions):
                accepted.value = AcceptedConnect(id: request.id, actions: granted + actions, slot: slot, identity: identity?.withoutClaims)
                return HTTPHeaders()
            case .refuse(let status, let reason):
                slot.release()
                router.connectRefusal = .connectRefused(status: status, reason: reason)
                return nil
            }
        }
    }
}

/// A connection admitted (and accepted by the connect hook, when there is one): its id, what the hook
/// asked for on it, and its reserved connection slot.
struct AcceptedConnect {
    var id: ConnectionID
    var actions: [AppAction]
    var slot: ConnectionSlot
    var identity: ConnectionIdentity?
}
