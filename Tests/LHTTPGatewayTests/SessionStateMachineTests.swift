import LHTTPGateway
import LHTTPProtocol
import NIOCore
import Testing

/// Routes `chat` (and any subscribe when `subscribeHook`): the state machine only asks `routes`.
struct ChatRouter: MessageRouter {
    var subscribeHook = false
    func routes(command: String, subscribing channels: [String]) -> Bool {
        command == "chat" || (self.subscribeHook && !channels.isEmpty)
    }
    func route(_ request: RouteRequest, on eventLoop: any EventLoop, completion: @escaping @Sendable (RouteAnswer) -> Void) {}
}

/// Stands in for the upstream adapter: the state machine only needs to know one is configured.
struct NoUpstream: UpstreamCaller {
    func call(_ call: UpstreamCall, on eventLoop: any EventLoop, completion: @escaping @Sendable (GatewayError?) -> Void) {}
}

/// The session state machine on its own: events in, actions out, no gateway, no socket.
@Suite("Session state machine")
struct SessionStateMachineTests {
    func machine(
        router: (any MessageRouter)? = nil,
        maxSubscriptions: Int = 128, maxBacklog: Int = 64, maxUpstreamInFlight: Int = 64, maxBacklogBytes: Int = 1 << 20,
        rate: RateLimit = .off, access: ChannelAccess = .open
    ) -> SessionStateMachine {
        let pipeline = MessagePipeline(
            limits: .default,
            session: .init(
                maxSubscriptions: maxSubscriptions, maxBacklog: maxBacklog, maxUpstreamInFlight: maxUpstreamInFlight, maxBacklogBytes: maxBacklogBytes,
                rate: rate
            ),
            processors: [:], router: router, forwardsUpstream: true, access: access
        )
        return SessionStateMachine(id: ConnectionID(rawValue: 7), remoteAddress: "10.0.0.1:5", pipeline: pipeline)
    }

    /// Every action until `.none`, each step reported done.
    func drain(_ machine: inout SessionStateMachine, from first: SessionAction) -> [SessionAction] {
        var actions: [SessionAction] = []
        var action = first
        while action != .none {
            actions.append(action)
            action = machine.next()
        }
        return actions
    }

    func bytes(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    /// Every channel needs the subscribe hook (what a configured `hooks.subscribe` means by default).
    static let hookEverywhere = ChannelAccess(fallback: .init(prefix: "", publish: .anyone, subscribe: .hook))

    @Test func aMessagesEffectsComeInTheDocumentedOrder() {
        var machine = self.machine()
        _ = self.drain(&machine, from: machine.messageReceived(bytes("LHTTP/1.0 c\r\nsubscribe:old\r\n\r\n")))
        let text = "LHTTP/1.0 c\r\nunsubscribe:old\r\nupstream:POST http://x/y\r\npublish:b\r\nsubscribe:a a\r\n\r\nhi"
        let actions = self.drain(&machine, from: machine.messageReceived(bytes(text)))
        #expect(actions.count == 4)
        #expect(actions[0] == .subscribe(["a"]))
        guard case .publish(let payload, let channels, let source) = actions[1] else { Issue.record("\(actions)"); return }
        #expect(channels == ["b"] && source == .websocket)
        #expect(String(buffer: payload).hasSuffix("\r\n\r\nhi"))
        #expect(actions[2] == .unsubscribe(["old"]))
        guard case .callUpstream(let call) = actions[3] else { Issue.record("\(actions)"); return }
        #expect(call.target == "POST http://x/y" && call.connection == ConnectionID(rawValue: 7))
        #expect(machine.subscriptions == ["a"])
    }

    @Test func aRefusedSubscribeDropsTheRestOfTheMessageOnly() {
        var machine = self.machine()
        #expect(machine.messageReceived(bytes("LHTTP/1.0 c\r\nsubscribe:a\r\npublish:a\r\nupstream:POST http://x/\r\n\r\n")) == .subscribe(["a"]))
        #expect(machine.next(.refused(.channelLimit(limit: 1))) == .sendError(.channelLimit(limit: 1)))
        #expect(machine.next() == .none)
        #expect(machine.subscriptions.isEmpty)
        // The next message is unaffected.
        #expect(machine.messageReceived(bytes("LHTTP/1.0 c\r\nsubscribe:b\r\n\r\n")) == .subscribe(["b"]))
        #expect(machine.next() == .none)
        #expect(machine.subscriptions == ["b"])
    }

    @Test func thePerConnectionCapRefusesWithoutAskingTheHub() {
        var machine = self.machine(maxSubscriptions: 2)
        _ = self.drain(&machine, from: machine.messageReceived(bytes("LHTTP/1.0 c\r\nsubscribe:a\r\n\r\n")))
        let actions = self.drain(&machine, from: machine.messageReceived(bytes("LHTTP/1.0 c\r\nsubscribe:b c\r\npublish:a\r\n\r\n")))
        #expect(actions == [.sendError(.subscriptionLimit(limit: 2))])
        #expect(machine.subscriptions == ["a"])
    }

    @Test func aRoutedMessageHoldsLaterOnesUntilTheAnswerThenEverythingRunsInOrder() throws {
        var machine = self.machine(router: ChatRouter())
        guard case .route(let request) = machine.messageReceived(bytes("LHTTP/1.0 chat\r\nsubscribe:room\r\npublish:room\r\n\r\nhello")) else {
            Issue.record("not routed")
            return
        }
        // Nothing needs the subscribe hook (every channel is open): the request names no channel for it.
        #expect(request.subscribe == [] && request.connection.remoteAddress == "10.0.0.1:5")
        #expect(machine.next() == .none)
        #expect(machine.messageReceived(bytes("LHTTP/1.0 other\r\nsubscribe:second\r\n\r\n")) == .none)
        let answer = RouteAnswer.proceed(subscribe: nil, actions: [
            .reply(bytes("LHTTP/1.0 ack\r\n\r\n")), .setMeta(["user": "ada"]), .subscribe(["extra"]),
        ])
        let actions = self.drain(&machine, from: machine.routeAnswered(answer))
        #expect(actions.count == 5)
        #expect(actions[0] == .subscribe(["room"]))
        guard case .publish(_, let channels, .websocket) = actions[1] else { Issue.record("\(actions)"); return }
        #expect(channels == ["room"])
        #expect(actions[2] == .send(bytes("LHTTP/1.0 ack\r\n\r\n")))
        #expect(actions[3] == .subscribe(["extra"]))
        // Then the message that waited.
        #expect(actions[4] == .subscribe(["second"]))
        #expect(machine.meta == ["user": "ada"])
    }

    @Test func aStoppedMessageAppliesNothingAndTheBacklogIsBounded() {
        var machine = self.machine(router: ChatRouter(), maxBacklog: 2)
        guard case .route = machine.messageReceived(bytes("LHTTP/1.0 chat\r\nsubscribe:x\r\n\r\n")) else { Issue.record("not routed"); return }
        #expect(machine.messageReceived(bytes("LHTTP/1.0 a\r\n\r\n")) == .none)
        #expect(machine.messageReceived(bytes("LHTTP/1.0 b\r\n\r\n")) == .none)
        #expect(machine.messageReceived(bytes("LHTTP/1.0 c\r\n\r\n")) == .sendError(.tooManyWaiting(limit: 2)))
        let actions = self.drain(&machine, from: machine.routeAnswered(.stop(.refusedByApp(status: 403, channels: nil))))
        #expect(actions == [.sendError(.refusedByApp(status: 403, channels: nil))])
        #expect(machine.subscriptions.isEmpty)
    }

    @Test func theSubscribeHookNarrowsWhatIsJoinedAndWhatIsPublished() {
        var machine = self.machine(router: ChatRouter(subscribeHook: true), access: Self.hookEverywhere)
        guard case .route = machine.messageReceived(bytes("LHTTP/1.0 join\r\nsubscribe:a secret\r\npublish:a\r\n\r\n")) else {
            Issue.record("not routed")
            return
        }
        let refusal = GatewayError.refusedByApp(status: 403, channels: ["secret"])
        let actions = self.drain(&machine, from: machine.routeAnswered(.proceed(subscribe: ["a"], actions: [.error(refusal)])))
        #expect(actions.count == 3)
        #expect(actions[0] == .subscribe(["a"]))
        guard case .publish(let payload, _, _) = actions[1] else { Issue.record("\(actions)"); return }
        #expect(String(buffer: payload).contains("subscribe:a\r\n"))
        #expect(!String(buffer: payload).contains("secret"))
        #expect(actions[2] == .sendError(refusal))
    }

    @Test func upstreamCallsAtTheCapPauseReadingAndGoOutInOrderAsSlotsFree() {
        var machine = self.machine(maxUpstreamInFlight: 2)
        func upstream(_ n: Int) -> ByteBuffer { bytes("LHTTP/1.0 c\r\nupstream:POST http://x/\(n)\r\n\r\n") }
        func target(_ action: SessionAction) -> String? {
            guard case .callUpstream(let call) = action else { return nil }
            return call.target
        }
        #expect(target(machine.messageReceived(upstream(1))) == "POST http://x/1")
        #expect(machine.next() == .none)
        #expect(target(machine.messageReceived(upstream(2))) == "POST http://x/2")
        #expect(machine.next() == .none)
        // The third waits for a slot: reading stops, and what was already read queues behind it.
        #expect(machine.messageReceived(upstream(3)) == .pauseReading)
        #expect(machine.isReadingPaused)
        #expect(machine.next() == .none)
        #expect(machine.messageReceived(upstream(4)) == .none)
        #expect(machine.messageReceived(bytes("LHTTP/1.0 c\r\nsubscribe:after\r\n\r\n")) == .none)
        // A failure is reported at once; the freed slot goes to the next call in order.
        let failure = GatewayError.upstreamFailed(status: 502, reason: "upstream answered 500", url: "http://x/1")
        #expect(machine.upstreamCompleted(failure) == .sendError(failure))
        #expect(target(machine.next()) == "POST http://x/3")
        #expect(machine.next() == .none)
        #expect(target(machine.upstreamCompleted(nil)) == "POST http://x/4")
        #expect(machine.next() == .subscribe(["after"]))
        #expect(machine.next() == .resumeReading)
        #expect(!machine.isReadingPaused)
        #expect(machine.next() == .none)
        #expect(machine.upstreamCallsInFlight == 2)
    }

    @Test func beyondTheBacklogsBytesAnUpstreamBurstGets429() {
        let message = bytes("LHTTP/1.0 c\r\nupstream:POST http://x/\r\n\r\n")
        // Room for two waiting messages, whatever the count bound of routes says.
        var machine = self.machine(maxBacklog: 1, maxUpstreamInFlight: 1, maxBacklogBytes: 2 * message.readableBytes)
        _ = self.drain(&machine, from: machine.messageReceived(message))
        #expect(machine.messageReceived(message) == .pauseReading)
        #expect(machine.next() == .none)
        #expect(machine.messageReceived(message) == .none)
        #expect(machine.messageReceived(message) == .none)
        #expect(machine.messageReceived(message) == .sendError(.upstreamBusy(limit: 1)))
        // Finished while paused: nothing is held back any more (the close handshake must be read).
        guard case .release = machine.finish(code: .goingAway) else { Issue.record("no release"); return }
        #expect(!machine.isReadingPaused)
    }

    @Test func anAppsRefusedPublicationIsLoggedAndTheRestGoesOn() {
        var machine = self.machine()
        let actions = [AppAction.publish(bytes("LHTTP/1.0 n\r\n\r\n"), channels: ["big"]), .subscribe(["later"])]
        guard case .publish(_, _, .webhook) = machine.opened(actions: actions) else { Issue.record("no publish"); return }
        let refusal = GatewayError.publicationTooLarge(size: 10, limit: 5)
        #expect(machine.next(.refused(refusal)) == .warn("app answer's publication refused", refusal))
        #expect(machine.next() == .subscribe(["later"]))
        #expect(machine.next() == .none)
    }

    @Test func anAppsCloseEndsTheConnectionAndFinishReleasesEverythingOnce() {
        var machine = self.machine(router: ChatRouter())
        _ = self.drain(&machine, from: machine.messageReceived(bytes("LHTTP/1.0 c\r\nsubscribe:a b\r\n\r\n")))
        let bye = CloseCode(rawValue: 4000)
        #expect(machine.opened(actions: [.close(bye, reason: "bye")]) == .close(bye, reason: "bye"))
        guard case .release(let summary) = machine.finish(code: bye) else { Issue.record("no release"); return }
        #expect(summary.code == bye)
        #expect(summary.connection.subscriptions == ["a", "b"])
        #expect(machine.finish(code: .normal) == .none)
        #expect(machine.messageReceived(bytes("LHTTP/1.0 c\r\nsubscribe:z\r\n\r\n")) == .none)
        #expect(machine.routeAnswered(.proceed(subscribe: nil, actions: [])) == .none)
    }

    @Test func aBadMessageIsOneErrorAndNothingElse() {
        var machine = self.machine()
        let actions = self.drain(&machine, from: machine.messageReceived(bytes("LHTTP/1.0 c\r\nsubscribe:a\r\nno colon\r\n\r\n")))
        #expect(actions == [.sendError(.protocolError(.headerWithoutColon(line: 2)))])
    }
}

/// Issue 13, findings 5 and 6 in the state machine: rate limits on the connection's clock, and the
/// channel options (who may publish and subscribe) per channel.
@Suite("Session rate limits and channel options")
struct SessionRateAndAccessTests {
    let helper = SessionStateMachineTests()

    func at(_ milliseconds: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(milliseconds) * 1_000_000) }

    @Test func overTheMessageRateIsRefusedWith429AndTheAllowanceRefills() {
        let rate = RateLimit(messagesPerSecond: 10, burstMessages: 3, maxViolations: 0)
        var machine = helper.machine(rate: rate)
        let ping = helper.bytes("LHTTP/1.0 ping\r\n\r\n")
        for _ in 0..<3 { #expect(machine.messageReceived(ping, now: at(0)) == .none) }
        #expect(machine.messageReceived(ping, now: at(0)) == .sendError(.rateLimited(rate)))
        #expect(machine.messageReceived(ping, now: at(50)) == .sendError(.rateLimited(rate)), "half a token after 50 ms")
        #expect(machine.messageReceived(ping, now: at(100)) == .none, "one token after 100 ms")
        #expect(machine.messageReceived(ping, now: at(100)) == .sendError(.rateLimited(rate)))
        // A long quiet time refills up to the burst, not beyond.
        for _ in 0..<3 { #expect(machine.messageReceived(ping, now: at(60_000)) == .none) }
        #expect(machine.messageReceived(ping, now: at(60_000)) == .sendError(.rateLimited(rate)))
        #expect(GatewayError.rateLimited(rate).status == 429)
    }

    @Test func aPublicationPaysItsSizeOncePerChannel() {
        let rate = RateLimit(bytesPerSecond: 1000, burstBytes: 1000)
        var machine = helper.machine(rate: rate)
        // 100 bytes to 10 channels cost 1000 bytes: the allowance is spent.
        let body = String(repeating: "x", count: 100 - "LHTTP/1.0 c\r\npublish:a b c d e f g h i j\r\n\r\n".utf8.count)
        let wide = helper.bytes("LHTTP/1.0 c\r\npublish:a b c d e f g h i j\r\n\r\n\(body)")
        #expect(wide.readableBytes == 100)
        guard case .publish = machine.messageReceived(wide, now: at(0)) else { Issue.record("not published"); return }
        #expect(machine.next() == .none)
        #expect(machine.messageReceived(helper.bytes("LHTTP/1.0 ping\r\n\r\n"), now: at(0)) == .sendError(.rateLimited(rate)))
        // One second pays it back.
        #expect(machine.messageReceived(helper.bytes("LHTTP/1.0 ping\r\n\r\n"), now: at(1001)) == .none)
    }

    @Test func aClientThatKeepsExceedingTheRateIsClosedWith4029() {
        let rate = RateLimit(messagesPerSecond: 1, burstMessages: 1, maxViolations: 3)
        var machine = helper.machine(rate: rate)
        let ping = helper.bytes("LHTTP/1.0 ping\r\n\r\n")
        #expect(machine.messageReceived(ping, now: at(0)) == .none)
        #expect(machine.messageReceived(ping, now: at(0)) == .sendError(.rateLimited(rate)))
        #expect(machine.messageReceived(ping, now: at(0)) == .sendError(.rateLimited(rate)))
        #expect(machine.messageReceived(ping, now: at(0)) == .sendError(.rateLimited(rate)))
        #expect(machine.next() == .close(.rateLimited, reason: "rate limit exceeded"))
        #expect(CloseCode.rateLimited.rawValue == 4029 && CloseCode.rateLimited.isValidOnTheWire)
        // An accepted message in between starts the count again.
        var other = helper.machine(rate: rate)
        #expect(other.messageReceived(ping, now: at(0)) == .none)
        #expect(other.messageReceived(ping, now: at(0)) == .sendError(.rateLimited(rate)))
        #expect(other.messageReceived(ping, now: at(0)) == .sendError(.rateLimited(rate)))
        #expect(other.messageReceived(ping, now: at(1000)) == .none)
        #expect(other.messageReceived(ping, now: at(1000)) == .sendError(.rateLimited(rate)))
        #expect(other.next() == .none)
    }

    static let lockedDown = ChannelAccess(
        rules: [.init(prefix: "chat-", publish: .anyone, subscribe: .anyone), .init(prefix: "private-", publish: .none, subscribe: .hook)],
        fallback: .init(prefix: "", publish: .none, subscribe: .anyone)
    )

    @Test func aChannelClosedToClientsIsRefusedWith403AndTheOthersStillApply() {
        var machine = helper.machine(access: Self.lockedDown)
        let actions = helper.drain(&machine, from: machine.messageReceived(helper.bytes("LHTTP/1.0 c\r\npublish:lobby chat-1 news\r\n\r\nhi")))
        #expect(actions.count == 2)
        #expect(actions[0] == .sendError(.channelForbidden(.publish, channels: ["lobby", "news"])))
        guard case .publish(let payload, let channels, .websocket) = actions[1] else { Issue.record("\(actions)"); return }
        #expect(channels == ["chat-1"])
        #expect(String(buffer: payload) == "LHTTP/1.0 c\r\npublish:chat-1\r\n\r\nhi", "the copy names what it was published to")
        #expect(GatewayError.channelForbidden(.publish, channels: ["lobby"]).reply.headers["channels"] == "lobby")
        #expect(GatewayError.channelForbidden(.publish, channels: ["lobby"]).status == 403)
    }

    @Test func aHookChannelIsNotJoinedWithoutTheHook() {
        var machine = helper.machine(access: Self.lockedDown)
        let actions = helper.drain(&machine, from: machine.messageReceived(helper.bytes("LHTTP/1.0 c\r\nsubscribe:private-9 chat-1\r\n\r\n")))
        #expect(actions == [.sendError(.channelForbidden(.subscribe, channels: ["private-9"])), .subscribe(["chat-1"])])
        #expect(machine.subscriptions == ["chat-1"])
    }

    @Test func aRoutedMessagesOwnPublishListAppliesOnlyWhenTheAppSaysSo() {
        func routedPublish(_ publication: OwnPublication) -> [SessionAction] {
            var machine = helper.machine(router: ChatRouter(), access: Self.lockedDown)
            guard case .route = machine.messageReceived(helper.bytes("LHTTP/1.0 chat\r\npublish:lobby\r\n\r\nann: I quit")) else { return [] }
            return helper.drain(&machine, from: machine.routeAnswered(.proceed(subscribe: nil, actions: [], publish: publication)))
        }
        #expect(routedPublish(.withheld) == [])
        guard case .publish(_, let channels, _) = routedPublish(.byApp).first else { Issue.record("not relayed"); return }
        #expect(channels == ["lobby"], "the app relays it, even where clients may not publish")
        #expect(routedPublish(.asClient) == [.sendError(.channelForbidden(.publish, channels: ["lobby"]))])
    }
}
