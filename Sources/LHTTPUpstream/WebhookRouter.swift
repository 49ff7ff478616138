import LHTTPConfig
import LHTTPGateway
import LHTTPProtocol
import NIOCore
import Synchronization

/// The `routes:` and the `subscribe` hook of the config: a routed command's messages go to the app's
/// webhook first, and its answer decides what happens; the channels of a `subscribe` header are joined
/// only when the subscribe hook agrees (docs/webhooks.md).
public struct WebhookRouter: MessageRouter {
    private let routes: [String: RouteConfig]
    private let subscribeHook: String?
    private let caller: WebhookCaller
    private let limits: LHTTPLimits

    public init(routes: [String: RouteConfig], subscribeHook: String?, caller: WebhookCaller, limits: LHTTPLimits) {
        self.routes = routes
        self.subscribeHook = subscribeHook.flatMap { $0.isEmpty ? nil : $0 }
        self.caller = caller
        self.limits = limits
    }

    private func route(for command: String) -> RouteConfig? {
        self.routes[command] ?? self.routes["*"]
    }

    private func subscriptions(of message: LHTTPMessage) -> [String] {
        guard self.subscribeHook != nil else { return [] }
        return (try? message.channels(LHTTPChannelList.subscribeHeader, limits: self.limits)) ?? []
    }

    public func routes(_ message: LHTTPMessage) -> Bool {
        self.route(for: message.command) != nil || !self.subscriptions(of: message).isEmpty
    }

    public func route(_ message: LHTTPMessage, parts: [LHTTPPart], session: Session, completion: @escaping (RouteDecision) -> Void) {
        let completion = NIOLoopBound(completion, eventLoop: session.eventLoop)
        let connection = WebhookEvent.Connection(id: session.id.description, remote: session.remoteAddress, meta: session.attributes)
        guard let route = self.route(for: message.command) else {
            self.askSubscribe(message, connection: connection, session: session, before: { _ in }, completion: completion)
            return
        }
        let event = WebhookEvent(kind: .message, id: WebhookEventID.next(), connection: connection, message: message, parts: parts)
        let handle = session.handle
        self.caller.call(url: route.url, event: event, timeoutMilliseconds: route.timeoutMs, on: session.eventLoop) { outcome in
            guard case .accepted(let actions) = outcome else {
                completion.value(Self.decision(for: outcome))
                return
            }
            handle.withSession { session in
                // Meta from this answer goes with the subscribe event that may follow.
                var connection = connection
                if let meta = actions.meta { connection.meta = meta }
                self.askSubscribe(message, connection: connection, session: session, before: { actions.apply(to: $0) }, completion: completion)
            }
        }
    }

    /// The subscribe hook for the message's `subscribe` channels, if any; then the final decision.
    private func askSubscribe(
        _ message: LHTTPMessage,
        connection: WebhookEvent.Connection,
        session: Session,
        before: @escaping @Sendable (Session) -> Void,
        completion: NIOLoopBound<(RouteDecision) -> Void>
    ) {
        let channels = self.subscriptions(of: message)
        guard let url = self.subscribeHook, !channels.isEmpty else {
            completion.value(.proceed(then: before))
            return
        }
        let event = WebhookEvent(kind: .subscribe, id: WebhookEventID.next(), connection: connection, channels: channels)
        self.caller.call(url: url, event: event, on: session.eventLoop) { outcome in
            switch outcome {
            case .accepted(let actions):
                completion.value(.proceed(then: { session in
                    before(session)
                    actions.apply(to: session)
                }))
            case .refused(let status, let refused):
                // Without a list every channel is refused; with one, only those.
                let refusedSet = Set(refused ?? channels)
                let allowed = channels.filter { !refusedSet.contains($0) }
                let reply = LHTTPMessage.errorReply(
                    status: status,
                    reason: "subscription refused by the app",
                    extraHeaders: ["channels": channels.filter { refusedSet.contains($0) }.joined(separator: " ")]
                )
                completion.value(.proceed(rewrite: message.replacingSubscriptions(with: allowed), then: { session in
                    before(session)
                    session.send(reply)
                }))
            case .failed(let status, let reason):
                let reply = LHTTPMessage.errorReply(status: status, reason: reason)
                completion.value(.proceed(rewrite: message.replacingSubscriptions(with: []), then: { session in
                    before(session)
                    session.send(reply)
                }))
            }
        }
    }

    /// The one mapping from a message webhook's outcome to what the gateway does with the message.
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

extension LHTTPMessage {
    /// The message with its `subscribe` headers replaced by one naming `channels` (none: removed).
    func replacingSubscriptions(with channels: [String]) -> LHTTPMessage {
        var message = self
        message.headers.remove(name: LHTTPChannelList.subscribeHeader)
        if !channels.isEmpty {
            message.headers.add(name: LHTTPChannelList.subscribeHeader, value: channels.joined(separator: " "))
        }
        return message
    }
}

extension WebhookActions {
    /// Applies the answer on the session's loop, in the contract's order: reply, publish, subscribe,
    /// unsubscribe, meta, close.
    public func apply(to session: Session) {
        if let reply = self.reply { session.send(serialized: reply) }
        for publication in self.publish {
            do {
                try session.gateway.publish(publication.payload, to: publication.channels, source: "webhook")
            } catch {
                session.logger.warning(
                    "webhook answer's publication refused",
                    metadata: ["lhttp.status": "\(error.status)", "lhttp.reason": "\(error.reason)"]
                )
            }
        }
        do {
            try session.subscribe(self.subscribe)
        } catch {
            // The app asked for more than the caps allow: the client learns it like for its own subscribe.
            session.logger.warning("webhook answer's subscribe refused", metadata: ["lhttp.status": "\(error.status)", "lhttp.reason": "\(error.reason)"])
            session.send(error.reply)
        }
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

