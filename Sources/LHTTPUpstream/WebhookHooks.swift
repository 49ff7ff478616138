import LHTTPConfig
import LHTTPGateway
import LHTTPProtocol
import Logging
import NIOCore

/// The `connect` hook: asked during the websocket upgrade. 2xx accepts (the answer's actions run on the
/// new connection: meta, reply, subscribe, ...); 401/403 answer the upgrade with that status; any failure
/// refuses it too (fail closed) with 502 or 504.
public struct ConnectWebhook: ConnectHook {
    private let url: String
    private let caller: WebhookCaller

    public init(url: String, caller: WebhookCaller) {
        self.url = url
        self.caller = caller
    }

    public func connect(_ request: ConnectRequest, on eventLoop: any EventLoop, completion: @escaping @Sendable (ConnectDecision) -> Void) {
        let event = WebhookEvent(
            kind: .connect,
            id: WebhookEventID.next(),
            connection: .init(id: request.id.description, remote: request.remoteAddress, identity: request.identity),
            http: .init(path: request.path, query: request.query, headers: request.headers),
            claims: request.identity.flatMap { JSONValue.parse($0.claims) }
        )
        self.caller.call(url: self.url, event: event, on: eventLoop) { outcome in
            switch outcome {
            case .accepted(let actions):
                completion(.accept(actions: actions.appActions))
            case .refused(let status, _):
                completion(.refuse(status: status, reason: "connection refused by the app"))
            case .failed:
                let failure = outcome.failure ?? .internalError
                completion(.refuse(status: failure.status, reason: failure.reason))
            }
        }
    }
}

/// The `disconnect` hook: told when a connection ends (its close code, 1006 when it just vanished, and
/// its meta). Fire-and-forget: never blocks anything; retried like every call when the connection is refused.
public struct DisconnectWebhook: ConnectionObserver {
    private let url: String
    private let caller: WebhookCaller

    public init(url: String, caller: WebhookCaller) {
        self.url = url
        self.caller = caller
    }

    public func connectionClosed(_ connection: ConnectionInfo, code: CloseCode, on eventLoop: any EventLoop) {
        let event = WebhookEvent(
            kind: .disconnect,
            id: WebhookEventID.next(),
            connection: .init(connection),
            code: Int(code.rawValue)
        )
        self.caller.call(url: self.url, event: event, on: eventLoop) { _ in }
    }
}

/// The `presence` hook: told when a channel with presence is occupied or vacated and when a member (a user)
/// is added or removed (after the leave grace), by the node whose connection caused it. Fire-and-forget.
public struct PresenceWebhook: PresenceObserver {
    private let url: String
    private let caller: WebhookCaller

    public init(url: String, caller: WebhookCaller) {
        self.url = url
        self.caller = caller
    }

    public func presenceChanged(_ change: PresenceEvent, on eventLoop: any EventLoop) {
        var event = WebhookEvent(
            kind: .presence,
            id: WebhookEventID.next(),
            connection: .init(id: change.member.conn, remote: "", meta: [:], identity: nil)
        )
        event.connection.user = change.member.user.isEmpty ? nil : change.member.user
        event.connection.info = change.member.info.flatMap(JSONValue.parse)
        event.action = change.kind.rawValue
        event.channel = change.channel
        self.caller.call(url: self.url, event: event, on: eventLoop) { _ in }
    }
}

/// Everything the webhook config adds to a gateway, and the libcurl client behind it.
public struct Webhooks: Sendable {
    public var router: WebhookRouter?
    public var connectHook: ConnectWebhook?
    public var observers: [any ConnectionObserver]
    /// The `presence` hook, when configured.
    public var presence: PresenceWebhook?
    /// The client of every webhook call; shut it down when the server has stopped.
    public var client: CurlHTTPClient?

    /// Nothing configured: no client, no thread.
    public static let none = Webhooks(router: nil, connectHook: nil, observers: [], presence: nil, client: nil)

    /// - Parameter metrics: counts calls by route and result, with their latency.
    public static func make(_ config: GatewayConfig, limits: LHTTPLimits, metrics: BackendMetrics? = nil, logger: Logger) -> Webhooks {
        let hooks = config.hooks
        guard !config.routes.isEmpty || !hooks.connect.isEmpty || !hooks.subscribe.isEmpty || !hooks.disconnect.isEmpty || !hooks.presence.isEmpty else {
            return .none
        }
        let client = CurlHTTPClient(
            configuration: .init(
                maxInFlight: config.webhook.maxInFlight,
                maxQueued: config.webhook.maxInFlight * 64,
                maxQueuedBytes: config.webhook.maxQueuedBytes,
                maxResponseBytes: config.limits.maxMessageBytes,
                timeoutMilliseconds: config.webhook.timeoutMs,
                connectTimeoutMilliseconds: min(1000, config.webhook.timeoutMs)
            ),
            logger: logger
        )
        let caller = WebhookCaller(client: client, secret: config.webhook.secret, limits: limits, metrics: metrics, logger: logger)
        let router = config.routes.isEmpty && hooks.subscribe.isEmpty
            ? nil : WebhookRouter(routes: config.routes, subscribeHook: hooks.subscribe, caller: caller)
        return Webhooks(
            router: router,
            connectHook: hooks.connect.isEmpty ? nil : ConnectWebhook(url: hooks.connect, caller: caller),
            observers: hooks.disconnect.isEmpty ? [] : [DisconnectWebhook(url: hooks.disconnect, caller: caller)],
            presence: hooks.presence.isEmpty ? nil : PresenceWebhook(url: hooks.presence, caller: caller),
            client: client
        )
    }
}
