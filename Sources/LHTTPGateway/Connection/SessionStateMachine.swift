import LHTTPProtocol
import NIOCore

/// The LHTTP side of one connection: what its messages ask for, in order, and what the app and the
/// backends answered. A plain struct, confined to the connection's event loop: events in, actions out.
///
/// The handler reports an event (``opened(actions:)``, ``messageReceived(_:)``, ``routeAnswered(_:)``,
/// ``upstreamCompleted(_:)``, ``finish(code:)``), executes the action it gets, and calls ``next(_:)``
/// until ``SessionAction/none``. Everything a message does is a step in one queue, so its effects happen
/// in the documented order (replies, subscribe, publish, unsubscribe, upstream, then the app's answer:
/// reply, publish, subscribe, unsubscribe, meta, close), a refusal of the message's own effects drops the
/// rest of that message, and a message never overtakes an earlier one:
/// - while a routed message waits for the app, later messages wait behind it (at most
///   `maxBacklog`; beyond, 503);
/// - while the connection's upstream calls are at `maxUpstreamInFlight`, the next upstream message waits
///   too and reading stops (back-pressure: the client's burst is delivered in order). What was already
///   read when reading stopped (at most a few reads' worth) waits behind it, up to `maxBacklogBytes`;
///   beyond, 429.
public struct SessionStateMachine {
    /// Per-connection bounds, from the config.
    public struct Configuration: Sendable {
        /// `limits.max_subscriptions_per_connection`.
        public var maxSubscriptions: Int
        /// `webhook.max_queued_per_connection`: messages waiting behind a blocked one.
        public var maxBacklog: Int
        /// `upstream.max_in_flight_per_connection`.
        public var maxUpstreamInFlight: Int
        /// `upstream.max_queued_bytes_per_connection`: bytes of messages waiting while reading is paused.
        public var maxBacklogBytes: Int
        /// `limits.max_messages_per_second` and friends.
        public var rate: RateLimit

        public init(
            maxSubscriptions: Int = 128, maxBacklog: Int = 64, maxUpstreamInFlight: Int = 64, maxBacklogBytes: Int = 4 << 20,
            rate: RateLimit = .off
        ) {
            self.maxSubscriptions = maxSubscriptions
            self.maxBacklog = maxBacklog
            self.maxUpstreamInFlight = maxUpstreamInFlight
            self.maxBacklogBytes = maxBacklogBytes
            self.rate = rate
        }
    }

    /// What stops the step queue.
    private enum Blocker: Equatable {
        /// A routed message waits for the app's answer.
        case route
        /// An upstream step waits for one of the connection's calls to finish.
        case upstreamSlot
        /// A refresh waits for its token to be verified.
        case token
    }

    /// What to do when the hub or the broker refuses a step.
    enum Refusal: Equatable {
        /// The message's own effects: an error reply, and the rest of the message is dropped.
        case abortMessage
        /// An app's subscribe: an error reply, the rest goes on.
        case reply
        /// An app's publication: logged only.
        case log
    }

    /// One unit of work. A message becomes a run of steps ending with ``endOfMessage``.
    enum Step: Equatable {
        case send(ByteBuffer)
        case error(GatewayError)
        case subscribe([String], Refusal, since: [String: HistoryPosition?]? = nil)
        case publish(ByteBuffer, [String], PublicationSource, Refusal)
        case unsubscribe([String])
        case upstream(UpstreamCall)
        case route(RouteRequest, PlannedMessageBox)
        case setMeta([String: String])
        case close(CloseCode, String)
        case refresh(String)
        case presence(String)
        case endOfMessage
    }

    public let id: ConnectionID
    public let remoteAddress: String
    /// The app's values for this connection (a webhook answer's `meta`).
    public private(set) var meta: [String: String] = [:]
    /// The channels this connection is in.
    public private(set) var subscriptions: Set<String> = []
    /// Whether ``finish(code:)`` happened.
    public private(set) var isFinished = false
    /// Who the connection is (its verified token; a refresh replaces it); nil: no token.
    public private(set) var identity: ConnectionIdentity?
    /// Counts the tokens the connection had: a timer armed for an earlier one does nothing.
    public private(set) var tokenGeneration: UInt32 = 0

    private let pipeline: MessagePipeline
    private var configuration: Configuration { self.pipeline.session }
    private var steps = FIFO<Step>()
    /// Actions that go out before any step (an upstream call's failure).
    private var urgent: [SessionAction] = []
    private var blocker: Blocker?
    /// The refusal policy of the subscribe or publish whose outcome ``next(_:)`` reports, and the channels
    /// to take back out of ``subscriptions`` if a subscribe is refused. (Not the step itself: a `Step?`
    /// would make every idle connection 100 bytes larger.)
    private var awaiting: (policy: Refusal, subscribed: [String])?
    private var backlog = FIFO<ByteBuffer>()
    private var backlogBytes: Int32 = 0
    private var upstreamInFlight: Int32 = 0
    private var rateLimiter = RateLimiter()
    /// Whether reading is paused (between ``SessionAction/pauseReading`` and ``SessionAction/resumeReading``;
    /// never once finished).
    public private(set) var isReadingPaused = false

    /// - Parameter pipeline: shared by every connection; it holds the per-connection bounds too.
    public init(id: ConnectionID, remoteAddress: String = "", identity: ConnectionIdentity? = nil, pipeline: MessagePipeline) {
        self.id = id
        self.remoteAddress = remoteAddress
        self.identity = identity
        self.pipeline = pipeline
    }

    /// The connection as hooks and the app see it now.
    public var info: ConnectionInfo {
        ConnectionInfo(id: self.id, remoteAddress: self.remoteAddress, meta: self.meta, subscriptions: self.subscriptions, identity: self.identity)
    }

    /// Upstream calls started and not completed.
    public var upstreamCallsInFlight: Int { Int(self.upstreamInFlight) }

    // MARK: Events

    /// The connection opened; `actions` are what the connect hook's answer asked for.
    public mutating func opened(actions: [AppAction]) -> SessionAction {
        self.enqueue(actions)
        return self.next()
    }

    /// One complete websocket message arrived at `now` (the connection's clock, for the rate limits).
    ///
    /// Over the connection's rate it is dropped with an error reply 429; after `max_rate_violations` such
    /// refusals in a row the connection is closed with 4029 as well.
    public mutating func messageReceived(_ payload: ByteBuffer, now: NIODeadline = .uptimeNanoseconds(0)) -> SessionAction {
        guard !self.isFinished else { return .none }
        switch self.rateLimiter.admit(bytes: payload.readableBytes, now: now, limit: self.configuration.rate) {
        case .accepted:
            break
        case .refused:
            return .sendError(.rateLimited(self.configuration.rate))
        case .closeConnection:
            self.urgent.append(.close(.rateLimited, reason: "rate limit exceeded"))
            return .sendError(.rateLimited(self.configuration.rate))
        }
        guard self.blocker == nil, self.steps.isEmpty, self.backlog.isEmpty else {
            // Paused, only what was already read arrives: bounded in bytes. Otherwise (a route) in count.
            if self.isReadingPaused {
                guard Int(self.backlogBytes) + payload.readableBytes <= self.configuration.maxBacklogBytes else {
                    return .sendError(.upstreamBusy(limit: self.configuration.maxUpstreamInFlight))
                }
            } else {
                guard self.backlog.count < self.configuration.maxBacklog else {
                    return .sendError(.tooManyWaiting(limit: self.configuration.maxBacklog))
                }
            }
            self.backlogBytes += Int32(payload.readableBytes)
            self.backlog.append(payload)
            return .none
        }
        self.plan(payload)
        return self.next()
    }

    /// The app answered the routed message.
    public mutating func routeAnswered(_ answer: RouteAnswer) -> SessionAction {
        guard !self.isFinished, self.blocker == .route, case .route(_, let box)? = self.steps.first else { return .none }
        _ = self.steps.popFirst()
        self.blocker = nil
        var planned = box.value
        var run: [Step] = []
        switch answer {
        case .proceed(let allowed, let actions, let publication):
            // The app was asked about `needingHook`: nil allows them all, a list only those.
            if let allowed {
                let asked = Set(planned.needingHook)
                planned.narrowSubscriptions(to: planned.subscribe.filter { !asked.contains($0) || allowed.contains($0) })
            }
            planned.needingHook = []
            run = self.effects(of: planned, publication: publication)
            run.removeLast()  // the answer's actions belong to the same message
            run += actions.map(Self.step(for:))
            run.append(.endOfMessage)
        case .stop(let error):
            run = [.error(error), .endOfMessage]
        }
        for step in run.reversed() { self.steps.prepend(step) }
        return self.next()
    }

    /// An upstream call finished: nil when the backend took it, else the error for the sender.
    public mutating func upstreamCompleted(_ error: GatewayError?) -> SessionAction {
        self.upstreamInFlight -= 1
        guard !self.isFinished else { return .none }
        if let error { self.urgent.append(.sendError(error)) }
        if self.blocker == .upstreamSlot { self.blocker = nil }
        return self.next()
    }

    /// The token of a `refresh` was verified (or refused). A token for another user is refused (403): a
    /// connection keeps its user for life.
    public mutating func tokenVerified(_ result: Result<ConnectionIdentity, TokenRefusal>) -> SessionAction {
        guard !self.isFinished, self.blocker == .token else { return .none }
        self.blocker = nil
        switch result {
        case .success(let identity) where identity.user != (self.identity?.user ?? ""):
            self.urgent.append(.sendError(.rejected(status: 403, reason: "the new token is for another user")))
        case .success(let identity):
            self.identity = identity.withoutClaims
            self.tokenGeneration &+= 1
            var answer = LHTTPMessage(command: Authentication.refreshedCommand)
            if let exp = identity.expiresAt { answer.headers.add(name: "exp", value: String(Int64(exp))) }
            if let bytes = try? answer.serialized() { self.urgent.append(.send(bytes)) }
        case .failure(let refusal):
            self.urgent.append(.sendError(.unauthorized(reason: refusal.reason)))
        }
        return self.next()
    }

    /// The token of `generation` expired: the connection is asked for a new one within `grace` seconds.
    /// - Returns: the `refresh` message to send, or `.none` when a newer token came meanwhile.
    public mutating func tokenExpired(generation: UInt32, grace: Double) -> SessionAction {
        guard !self.isFinished, generation == self.tokenGeneration else { return .none }
        var ask = LHTTPMessage(command: Authentication.refreshCommand)
        ask.headers.add(name: "grace", value: String(Int(grace.rounded(.up))))
        guard let bytes = try? ask.serialized() else { return .none }
        return .send(bytes)
    }

    /// The grace after the token of `generation` expired is over: closed with 4001 unless a newer token came.
    public mutating func refreshGraceEnded(generation: UInt32) -> SessionAction {
        guard !self.isFinished, generation == self.tokenGeneration else { return .none }
        return .close(.tokenExpired, reason: "token expired")
    }

    /// The connection is over (`code`: sent, received, or 1006). Later events do nothing.
    public mutating func finish(code: CloseCode) -> SessionAction {
        guard !self.isFinished else { return .none }
        let summary = ConnectionSummary(connection: self.info, code: code)
        self.isFinished = true
        self.steps.removeAll()
        self.backlog.removeAll()
        self.backlogBytes = 0
        self.urgent.removeAll()
        self.blocker = nil
        self.awaiting = nil
        self.isReadingPaused = false
        self.subscriptions.removeAll()
        return .release(summary)
    }

    // MARK: Driving

    /// The next action, after reporting the outcome of the previous one (``StepOutcome/done`` unless a
    /// subscribe or publish was refused).
    public mutating func next(_ outcome: StepOutcome = .done) -> SessionAction {
        if let awaited = self.awaiting {
            self.awaiting = nil
            if case .refused(let error) = outcome {
                self.subscriptions.subtract(awaited.subscribed)
                return self.refused(awaited.policy, error)
            }
        }
        while true {
            if !self.urgent.isEmpty { return self.urgent.removeFirst() }
            guard !self.isFinished else { return .none }
            if self.blocker != nil { return .none }
            if let step = self.steps.popFirst() {
                if let action = self.action(for: step) { return action }
                continue
            }
            if let payload = self.backlog.popFirst() {
                self.backlogBytes -= Int32(payload.readableBytes)
                self.plan(payload)
                continue
            }
            if self.isReadingPaused {
                self.isReadingPaused = false
                return .resumeReading
            }
            return .none
        }
    }

    /// Turns a step into an action, or nil when the step needed none (done in place, or nothing to do).
    private mutating func action(for step: Step) -> SessionAction? {
        switch step {
        case .send(let bytes):
            return .send(bytes)
        case .error(let error):
            return .sendError(error)
        case .subscribe(let channels, let refusal, let since):
            var fresh: [String] = []
            for channel in channels where !self.subscriptions.contains(channel) && !fresh.contains(channel) {
                fresh.append(channel)
            }
            guard !fresh.isEmpty else { return nil }
            guard self.subscriptions.count + fresh.count <= self.configuration.maxSubscriptions else {
                return self.refused(refusal, .subscriptionLimit(limit: self.configuration.maxSubscriptions))
            }
            self.subscriptions.formUnion(fresh)
            self.awaiting = (refusal, fresh)
            guard let since else { return .subscribe(fresh) }
            return .subscribeRecovering(fresh.map { RecoveryRequest(channel: $0, position: since[$0] ?? nil) })
        case .publish(let payload, let channels, let source, let refusal):
            self.awaiting = (refusal, [])
            return .publish(payload, channels: channels, source: source)
        case .unsubscribe(let channels):
            let present = channels.filter { self.subscriptions.remove($0) != nil }
            return present.isEmpty ? nil : .unsubscribe(present)
        case .upstream(let call):
            guard Int(self.upstreamInFlight) < self.configuration.maxUpstreamInFlight else {
                self.steps.prepend(step)
                self.blocker = .upstreamSlot
                guard !self.isReadingPaused else { return SessionAction.none }
                self.isReadingPaused = true
                return .pauseReading
            }
            self.upstreamInFlight += 1
            return .callUpstream(call)
        case .route(let request, _):
            self.steps.prepend(step)
            self.blocker = .route
            return .route(request)
        case .setMeta(let meta):
            self.meta = meta
            return nil
        case .close(let code, let reason):
            return .close(code, reason: reason)
        case .refresh(let token):
            self.blocker = .token
            return .verifyToken(token)
        case .presence(let channel):
            let access = self.pipeline.access
            guard access.presence(for: channel) != nil else { return .sendError(.noPresence(channel: channel)) }
            guard self.subscriptions.contains(channel) || access.maySubscribe(channel, identity: self.identity, hookAllows: false) else {
                return .sendError(.channelForbidden(.presence, channels: [channel]))
            }
            return .queryPresence(channel)
        case .endOfMessage:
            return nil
        }
    }

    /// Applies a refusal policy. - Returns: the action it leads to.
    private mutating func refused(_ policy: Refusal, _ error: GatewayError) -> SessionAction {
        switch policy {
        case .abortMessage:
            while let dropped = self.steps.popFirst(), dropped != .endOfMessage {}
            return .sendError(error)
        case .reply:
            return .sendError(error)
        case .log:
            return .warn("app answer's publication refused", error)
        }
    }

    // MARK: Planning

    /// Turns a message into steps (or one error step when it is refused as a whole).
    private mutating func plan(_ payload: ByteBuffer) {
        let planned: PlannedMessage
        do {
            planned = try self.pipeline.plan(payload, identity: self.identity, connection: { self.info })
        } catch {
            self.steps.append(.error(error))
            return
        }
        // A publication to several channels costs its size once per channel.
        if planned.publish.count > 1 {
            self.rateLimiter.charge(bytes: payload.readableBytes * (planned.publish.count - 1), limit: self.configuration.rate)
        }
        if let token = planned.refreshToken {
            self.steps.append(.refresh(token))
            return
        }
        for reply in planned.replies {
            do {
                self.steps.append(.send(try reply.serialized()))
            } catch {
                self.steps.append(.error(.protocolError(error)))
            }
        }
        guard planned.isRouted else {
            for step in self.effects(of: planned, publication: .asClient) { self.steps.append(step) }
            return
        }
        let request = RouteRequest(message: planned.message, parts: planned.parts, subscribe: planned.needingHook, connection: self.info)
        self.steps.append(.route(request, PlannedMessageBox(planned)))
    }

    /// The message's own effects, in order, closed by ``Step/endOfMessage``. Channels the channel options
    /// refuse to this client get one error reply 403 each list (naming them); the rest of the list applies,
    /// and the published copy's lists name what was applied (as after the subscribe hook).
    private func effects(of planned: PlannedMessage, publication: OwnPublication) -> [Step] {
        var planned = planned
        var run: [Step] = []
        if !planned.forbiddenSubscribe.isEmpty {
            run.append(.error(.channelForbidden(.subscribe, channels: planned.forbiddenSubscribe)))
        }
        if !planned.needingHook.isEmpty {
            // Nobody asked the subscribe hook (none is configured): what needs it is refused.
            let refused = planned.needingHook
            run.append(.error(.channelForbidden(.subscribe, channels: refused)))
            planned.narrowSubscriptions(to: planned.subscribe.filter { !refused.contains($0) })
        }
        if !planned.subscribe.isEmpty { run.append(.subscribe(planned.subscribe, .abortMessage, since: planned.since)) }
        if let channel = planned.presence { run.append(.presence(channel)) }
        if publication == .asClient, !planned.publish.isEmpty {
            let (allowed, refused) = self.pipeline.access.publishable(planned.publish, identity: self.identity)
            if !refused.isEmpty {
                run.append(.error(.channelForbidden(.publish, channels: refused)))
                planned.narrowPublication(to: allowed)
            }
        }
        let publish = publication == .withheld ? [] : planned.publish
        if !publish.isEmpty {
            do {
                run.append(.publish(try planned.message.serialized(), publish, .websocket, .abortMessage))
            } catch {
                // A processor left a header that would forge lines: nothing of the message applies.
                return [.error(.protocolError(error)), .endOfMessage]
            }
        }
        if !planned.unsubscribe.isEmpty { run.append(.unsubscribe(planned.unsubscribe)) }
        if let target = planned.upstream {
            run.append(.upstream(UpstreamCall(target: target, message: planned.message, connection: self.id, user: self.identity?.user ?? "")))
        }
        run.append(.endOfMessage)
        return run
    }

    private mutating func enqueue(_ actions: [AppAction]) {
        guard !actions.isEmpty else { return }
        for action in actions { self.steps.append(Self.step(for: action)) }
        self.steps.append(.endOfMessage)
    }

    /// The one mapping from what the app asked for to steps.
    static func step(for action: AppAction) -> Step {
        switch action {
        case .reply(let bytes): return .send(bytes)
        case .publish(let payload, let channels): return .publish(payload, channels, .webhook, .log)
        case .subscribe(let channels): return .subscribe(channels, .reply)
        case .unsubscribe(let channels): return .unsubscribe(channels)
        case .setMeta(let meta): return .setMeta(meta)
        case .close(let code, let reason): return .close(code, reason)
        case .error(let error): return .error(error)
        }
    }
}

/// A planned message parked in a route step (a class, so the step enum stays small and `Equatable` by
/// identity).
final class PlannedMessageBox: Equatable, Sendable {
    let value: PlannedMessage

    init(_ value: PlannedMessage) { self.value = value }

    static func == (lhs: PlannedMessageBox, rhs: PlannedMessageBox) -> Bool { lhs === rhs }
}
