import LHTTPConfig
import LHTTPGateway
import LHTTPProtocol
import Logging
import NIOCore
import Synchronization

/// The `routes:` of the config: a routed command's messages go to the app's webhook first, and its
/// answer decides what happens (docs/webhooks.md).
public struct WebhookRouter: MessageRouter {
    private let routes: [String: RouteConfig]
    private let caller: WebhookCaller

    public init(routes: [String: RouteConfig], caller: WebhookCaller) {
        self.routes = routes
        self.caller = caller
    }

    private func route(for command: String) -> RouteConfig? {
        self.routes[command] ?? self.routes["*"]
    }

    public func routes(_ message: LHTTPMessage) -> Bool {
        self.route(for: message.command) != nil
    }

    public func route(_ message: LHTTPMessage, parts: [LHTTPPart], session: Session, completion: @escaping (RouteDecision) -> Void) {
        guard let route = self.route(for: message.command) else {
            completion(.proceed(then: { _ in }))
            return
        }
        let event = WebhookEvent(
            kind: .message,
            id: WebhookEventID.next(),
            connection: .init(id: session.id.description, remote: session.remoteAddress, meta: session.attributes),
            message: message,
            parts: parts
        )
        let eventLoop = session.eventLoop
        let completion = NIOLoopBound(completion, eventLoop: eventLoop)
        self.caller.call(url: route.url, event: event, timeoutMilliseconds: route.timeoutMs, on: eventLoop) { outcome in
            completion.value(Self.decision(for: outcome))
        }
    }

    /// The one mapping from a webhook outcome to what the gateway does with the message.
    static func decision(for outcome: WebhookOutcome) -> RouteDecision {
        switch outcome {
        case .accepted(let actions):
            return .proceed(then: { session in actions.apply(to: session) })
        case .refused(let status, _):
            return .stop(reply: LHTTPMessage.errorReply(status: status, reason: "refused by the app"))
        case .failed(let status, let reason):
            return .stop(reply: LHTTPMessage.errorReply(status: status, reason: reason))
        }
    }
}

extension WebhookActions {
    /// Applies the answer on the session's loop, in the contract's order: reply, publish, subscribe,
    /// unsubscribe, meta, close.
    public func apply(to session: Session) {
        if let reply = self.reply { session.send(serialized: reply) }
        for publication in self.publish {
            session.gateway.publish(publication.payload, to: publication.channels)
        }
        session.subscribe(self.subscribe)
        session.unsubscribe(self.unsubscribe)
        if let meta = self.meta { session.attributes = meta }
        if let close = self.close { session.close(code: close.code, reason: close.reason) }
    }
}

/// Unique event ids: a per-process random prefix and a counter.
enum WebhookEventID {
    private static let prefix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
    private static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        "\(prefix)-\(counter.add(1, ordering: .relaxed).newValue)"
    }
}

extension WebhookRouter {
    /// The router, its caller and its libcurl client for a config. The caller owns the client: call
    /// `shutdown()` on it when the server has stopped. Nil when no route is configured.
    public static func make(_ config: GatewayConfig, limits: LHTTPLimits, logger: Logger) -> (WebhookRouter, CurlHTTPClient)? {
        guard !config.routes.isEmpty else { return nil }
        let client = CurlHTTPClient(
            configuration: .init(
                maxInFlight: config.webhook.maxInFlight,
                maxQueued: config.webhook.maxInFlight * 64,
                maxResponseBytes: config.limits.maxMessageBytes,
                timeoutMilliseconds: config.webhook.timeoutMs,
                connectTimeoutMilliseconds: min(1000, config.webhook.timeoutMs)
            ),
            logger: logger
        )
        let caller = WebhookCaller(client: client, secret: config.webhook.secret, limits: limits, logger: logger)
        return (WebhookRouter(routes: config.routes, caller: caller), client)
    }
}
