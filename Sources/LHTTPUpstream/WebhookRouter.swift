import LHTTPConfig
import LHTTPGateway
import LHTTPProtocol
import NIOCore
import Synchronization

/// The `routes:` and the `subscribe` hook of the config: a routed command's messages go to the app's
/// webhook first, and its answer decides what happens; the channels of a `subscribe` header are joined
/// only when the subscribe hook agrees (docs/webhooks.md). Answers come back as data (``RouteAnswer``).
public struct WebhookRouter: MessageRouter {
    private let routes: [String: RouteConfig]
    private let subscribeHook: String?
    private let caller: WebhookCaller

    public init(routes: [String: RouteConfig], subscribeHook: String?, caller: WebhookCaller) {
        self.routes = routes
        self.subscribeHook = subscribeHook.flatMap { $0.isEmpty ? nil : $0 }
        self.caller = caller
    }

    private func route(for command: String) -> RouteConfig? {
        self.routes[command] ?? self.routes["*"]
    }

    public func routes(command: String, subscribing channels: [String]) -> Bool {
        self.route(for: command) != nil || (self.subscribeHook != nil && !channels.isEmpty)
    }

    public func route(_ request: RouteRequest, on eventLoop: any EventLoop, completion: @escaping @Sendable (RouteAnswer) -> Void) {
        let connection = WebhookEvent.Connection(request.connection)
        guard let route = self.route(for: request.message.command) else {
            self.askSubscribe(request, connection: connection, before: [], publication: .asClient, on: eventLoop) { answer in
                eventLoop.execute { completion(answer) }  // possibly inline: never complete before returning
            }
            return
        }
        let event = WebhookEvent(kind: .message, id: WebhookEventID.next(), connection: connection, message: request.message, parts: request.parts)
        self.caller.call(url: route.url, event: event, timeoutMilliseconds: route.timeoutMs, on: eventLoop) { outcome in
            guard case .accepted(let actions) = outcome else {
                completion(.stop(outcome.failure ?? .internalError))
                return
            }
            // Meta from this answer goes with the subscribe event that may follow.
            var connection = connection
            if let meta = actions.meta { connection.meta = meta }
            // The app owns a routed message: its own publish list applies only when the answer says so.
            let publication: OwnPublication = actions.relay ? .byApp : .withheld
            self.askSubscribe(
                request, connection: connection, before: actions.appActions, publication: publication, on: eventLoop, completion: completion
            )
        }
    }

    /// The subscribe hook for the message's `subscribe` channels, if any; then the answer.
    private func askSubscribe(
        _ request: RouteRequest,
        connection: WebhookEvent.Connection,
        before: [AppAction],
        publication: OwnPublication,
        on eventLoop: any EventLoop,
        completion: @escaping @Sendable (RouteAnswer) -> Void
    ) {
        let channels = request.subscribe
        guard let url = self.subscribeHook, !channels.isEmpty else {
            completion(.proceed(subscribe: nil, actions: before, publish: publication))
            return
        }
        let event = WebhookEvent(kind: .subscribe, id: WebhookEventID.next(), connection: connection, channels: channels)
        self.caller.call(url: url, event: event, on: eventLoop) { outcome in
            completion(Self.answer(toSubscribe: channels, outcome: outcome, before: before, publication: publication))
        }
    }

    /// The one mapping from the subscribe hook's outcome to what happens to the message: 2xx joins every
    /// channel but those its `refused` list names (refused with 403), 401/403 refuses every channel or
    /// those its list names, a failure joins none.
    static func answer(
        toSubscribe channels: [String], outcome: WebhookOutcome, before: [AppAction], publication: OwnPublication = .asClient
    ) -> RouteAnswer {
        switch outcome {
        case .accepted(let actions):
            guard let refused = actions.refused, !refused.isEmpty else {
                return .proceed(subscribe: nil, actions: before + actions.appActions, publish: publication)
            }
            return Self.refusing(Set(refused), of: channels, status: 403, before: before, after: actions.appActions, publication: publication)
        case .refused(let status, let refused):
            // Without a list every channel is refused; with one, only those.
            return Self.refusing(Set(refused ?? channels), of: channels, status: status, before: before, after: [], publication: publication)
        case .failed:
            return .proceed(subscribe: [], actions: before + [.error(outcome.failure ?? .internalError)], publish: publication)
        }
    }

    private static func refusing(
        _ refused: Set<String>, of channels: [String], status: Int, before: [AppAction], after: [AppAction], publication: OwnPublication
    ) -> RouteAnswer {
        let allowed = channels.filter { !refused.contains($0) }
        let named = channels.filter { refused.contains($0) }
        guard !named.isEmpty else { return .proceed(subscribe: nil, actions: before + after, publish: publication) }
        let error = GatewayError.refusedByApp(status: status, channels: named)
        return .proceed(subscribe: allowed, actions: before + [.error(error)] + after, publish: publication)
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
