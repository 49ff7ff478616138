import LHTTPGateway
import Logging
import NIOCore
import NIOWebSocket

/// The one handler of an upgraded connection: feeds its ``ConnectionStateMachine`` the events of the
/// channel and executes the actions it returns. No decision is made here.
///
/// Outbound frames are pre-encoded (``WebSocketFrameBytes``) and written through the context of NIO's
/// `WebSocketFrameEncoder`, i.e. below it, so a publish's one buffer goes to every socket untouched. It is
/// duplex only to hold back `read()` while the session has reading paused (back-pressure).
final class WebSocketConnectionHandler: ChannelDuplexHandler, FrameSink {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame

    struct Settings {
        var maxMessageBytes: Int
        /// How long a close handshake may take before the connection is reset.
        var closeTimeout: TimeAmount
        /// The longest a delivery to a busy connection waits to share a write (`websocket.write_coalescing_us`).
        var writeCoalescing: TimeAmount = .zero
    }

    private let gateway: Gateway
    private let metrics: ServerMetrics?
    private let closeTimeout: TimeAmount
    /// What the connect hook asked for (the id it saw is the session's).
    private let connectActions: [AppAction]
    // What a delivery touches (`enqueueFrame`) is declared together: the write context, then the machine
    // (whose first fields are the websocket's state and the writer).
    private var writeContext: ChannelHandlerContext?
    /// Never optional, never copied: the hot path (`enqueueFrame`) mutates it in place.
    private var machine: ConnectionStateMachine
    private var subscriber: Subscriber?
    private var context: ChannelHandlerContext?
    /// Set once the connection was opened with the gateway (`handlerAdded`).
    private var isOpened = false
    /// A `read()` held back while reading is paused.
    private var readPending = false
    private var closeTimer: Scheduled<Void>?
    /// The token's expiry, then its refresh grace (nil: no token, or it does not expire).
    private var tokenTimer: Scheduled<Void>?
    /// Set while actions are being executed: an adapter completing inline is deferred to the next tick.
    private var isDriving = false
    /// The loop's keep-alive sweeper and flusher.
    private let loop: ConnectionLoop
    /// The connection cap's slot this websocket holds, given back when the session is released.
    private var slot: ConnectionSlot?
    var sweepIndex = -1

    /// - Parameter remoteAddress: `ip:port` of the peer, for logs and the app's events.
    init(
        gateway: Gateway,
        settings: Settings,
        metrics: ServerMetrics? = nil,
        id: ConnectionID = .next(),
        remoteAddress: String = "",
        identity: ConnectionIdentity? = nil,
        connectActions: [AppAction] = [],
        slot: ConnectionSlot? = nil,
        loop: ConnectionLoop
    ) {
        self.slot = slot
        self.gateway = gateway
        self.metrics = metrics
        self.closeTimeout = settings.closeTimeout
        self.machine = ConnectionStateMachine(
            session: gateway.makeSession(id: id, remoteAddress: remoteAddress, identity: identity), maxMessageBytes: settings.maxMessageBytes,
            writeCoalescing: settings.writeCoalescing, now: .uptimeNanoseconds(0)
        )
        self.connectActions = connectActions
        self.loop = loop
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // Writing from the encoder's own context sends bytes from just below it.
        self.writeContext = try? context.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self)
        self.subscriber = self.gateway.open(self.machine.session.info, sink: self, eventLoop: context.eventLoop)
        self.isOpened = true
        self.machine.writabilityChanged(isWritable: context.channel.isWritable)
        self.loop.sweeper.add(self)
        let now = context.eventLoop.now
        self.run { $0.opened(actions: self.connectActions, now: now) }
        self.armTokenTimer()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.ended()
        self.context = nil
        self.writeContext = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.ended()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        let now = context.eventLoop.now
        self.run { $0.frameReceived(frame, now: now) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        let count = self.machine.takeReceivedCount()
        if count > 0 { self.gateway.metrics.messagesReceived.increment(by: count) }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.machine.writabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let action = self.machine.decodingFailed(error) else {
            self.gateway.logger(for: self.connectionInfo).debug("connection error", metadata: ["lhttp.error": "\(error)"])
            context.close(promise: nil)
            return
        }
        self.run { _ in action }
    }

    func read(context: ChannelHandlerContext) {
        guard !self.machine.isReadingPaused else {
            self.readPending = true
            return
        }
        context.read()
    }

    /// The channel is gone: the session ends (1006 unless a close code was sent or received).
    private func ended() {
        self.closeTimer?.cancel()
        self.closeTimer = nil
        self.tokenTimer?.cancel()
        self.tokenTimer = nil
        guard self.isOpened, !self.machine.session.isFinished else { return }
        self.run { $0.channelInactive() }
    }

    // MARK: Events from the keep-alive sweeper, the drain and the adapters

    /// The loop's keep-alive sweep.
    func keepAliveTick(now: NIODeadline, stalled: TimeAmount, _ keepAlive: ConnectionStateMachine.KeepAlive) {
        self.run { $0.keepAliveTick(now: now, stalled: stalled, keepAlive) }
    }

    /// Closes the connection with `code` (the graceful stop's 1001).
    func close(code: CloseCode, reason: String) {
        self.run { $0.closeRequested(code, reason: reason) }
    }

    private func routeAnswered(_ answer: RouteAnswer) {
        self.run { $0.routeAnswered(answer) }
    }

    private func upstreamCompleted(_ error: GatewayError?) {
        self.run { $0.upstreamCompleted(error) }
    }

    // MARK: Executing actions

    /// Feeds the machine one event and executes what follows, until it has nothing more to do.
    private func run(_ event: (inout ConnectionStateMachine) -> ConnectionAction) {
        guard self.isOpened else { return }
        // In place: a local copy of the machine would make every later mutation copy its buffers.
        var action = event(&self.machine)
        let wasDriving = self.isDriving
        self.isDriving = true
        defer { self.isDriving = wasDriving }
        while action != .none {
            let outcome = self.execute(action)
            action = self.machine.next(outcome)
        }
    }

    /// Executes one action. - Returns: the outcome the machine asked for (a refused subscribe or publish).
    private func execute(_ action: ConnectionAction) -> StepOutcome {
        switch action {
        case .none:
            return .done
        case .session(let sessionAction):
            return self.execute(sessionAction)
        case .writeControl(let frame):
            self.writePending()
            self.writeContext?.writeAndFlush(NIOAny(frame), promise: nil)
        case .sendClose(let code, let reason):
            self.sendClose(code, reason: reason)
        case .answerClose(let code):
            self.writePending()
            guard let writeContext = self.writeContext, let channel = self.context?.channel else { return .done }
            writeContext.writeAndFlush(NIOAny(WebSocketFrameBytes.close(code: code.rawValue, reason: ""))).whenComplete { _ in
                channel.close(promise: nil)
            }
            self.armCloseTimer()
        case .closeChannel:
            self.context?.close(promise: nil)
        case .reset:
            self.reset()
        }
        return .done
    }

    private func execute(_ action: SessionAction) -> StepOutcome {
        guard let subscriber = self.subscriber else { return .done }
        switch self.gateway.carryOut(action, subscriber: subscriber, connection: self.connectionInfo) {
        case .outcome(let outcome):
            if case .release = action {
                self.subscriber = nil
                self.loop.sweeper.remove(self)
                self.slot?.release()
                self.slot = nil
            }
            return outcome
        case .send(let bytes):
            self.enqueueFrame(WebSocketFrameBytes.message(bytes))
        case .connections(.callUpstream(let call)):
            let handler = NIOLoopBound(self, eventLoop: subscriber.eventLoop)
            self.gateway.upstream?.call(call, on: subscriber.eventLoop) { error in handler.value.deferIfDriving { $0.upstreamCompleted(error) } }
        case .connections(.route(let request)):
            let handler = NIOLoopBound(self, eventLoop: subscriber.eventLoop)
            self.gateway.router?.route(request, on: subscriber.eventLoop) { answer in handler.value.deferIfDriving { $0.routeAnswered(answer) } }
        case .connections(.verifyToken(let token)):
            guard let verifier = self.gateway.authentication?.verifier else { break }
            let handler = NIOLoopBound(self, eventLoop: subscriber.eventLoop)
            let loop = subscriber.eventLoop
            verifier.verify(token) { result in
                loop.execute {
                    handler.value.deferIfDriving { handler in
                        let generation = handler.machine.session.tokenGeneration
                        handler.run { $0.tokenVerified(result) }
                        // Only a new token moves the deadline: a refused one leaves the grace running.
                        if handler.machine.session.tokenGeneration != generation { handler.armTokenTimer() }
                    }
                }
            }
        case .connections(.resumeReading):
            self.issueHeldRead()
        case .connections:
            break  // `pauseReading`: `read()` checks the machine; `close` became `sendClose` in the machine
        }
        return .done
    }

    /// Runs `body` now, or on the next tick when called from inside the action loop (an adapter that
    /// completed inline): events never nest.
    private func deferIfDriving(_ body: @escaping (WebSocketConnectionHandler) -> Void) {
        guard self.isDriving, let loop = self.context?.eventLoop else { return body(self) }
        let bound = NIOLoopBound((self, body), eventLoop: loop)
        loop.execute { bound.value.1(bound.value.0) }
    }

    /// Sends the close frame after what is pending, half-closes our side once it is out (so it is not lost
    /// to a reset while the peer is still sending), and arms the close timer.
    private func sendClose(_ code: CloseCode, reason: String) {
        self.gateway.metrics.closed(code: code)
        if code != .normal, code != .goingAway {
            let message = code == .slowConsumer ? "closing slow consumer" : code == .idleTimeout ? "closing idle connection" : "closing connection"
            self.gateway.logger(for: self.connectionInfo).warning("\(message)", metadata: ["lhttp.close_code": "\(code)", "lhttp.reason": "\(reason)"])
        }
        self.writePending()
        guard let writeContext = self.writeContext, let channel = self.context?.channel else { return }
        writeContext.writeAndFlush(NIOAny(WebSocketFrameBytes.close(code: code.rawValue, reason: reason))).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
        }
        self.armCloseTimer()
        self.issueHeldRead()
    }

    /// Issues the `read()` held back while reading was paused.
    private func issueHeldRead() {
        guard self.readPending else { return }
        self.readPending = false
        self.context?.read()
    }

    /// Arms the current token's expiry: at `exp` the connection is asked for a new token (`refresh`), and
    /// closed with 4001 after `auth.jwt.refresh_grace_s` unless one came (a newer token's generation makes
    /// both timers do nothing).
    private func armTokenTimer() {
        self.tokenTimer?.cancel()
        self.tokenTimer = nil
        guard let authentication = self.gateway.authentication, let exp = self.machine.session.identity?.expiresAt,
            let loop = self.context?.eventLoop, !self.machine.session.isFinished
        else { return }
        let generation = self.machine.session.tokenGeneration
        let grace = authentication.refreshGraceS
        let handler = NIOLoopBound(self, eventLoop: loop)
        let delay = max(0, exp - authentication.wallClock())
        self.tokenTimer = loop.scheduleTask(in: .nanoseconds(Int64(min(delay, 1e9) * 1e9))) {
            let handler = handler.value
            handler.run { $0.tokenExpired(generation: generation, grace: grace) }
            guard handler.machine.session.tokenGeneration == generation else { return }
            handler.tokenTimer = loop.scheduleTask(in: .nanoseconds(Int64(grace * 1e9))) {
                handler.tokenTimer = nil
                handler.run { $0.refreshGraceEnded(generation: generation) }
            }
        }
    }

    private func armCloseTimer() {
        guard self.closeTimer == nil, let loop = self.context?.eventLoop else { return }
        let handler = NIOLoopBound(self, eventLoop: loop)
        self.closeTimer = loop.scheduleTask(in: self.closeTimeout) {
            handler.value.closeTimer = nil
            handler.value.run { $0.closeTimedOut() }
        }
    }

    /// Closes with a TCP reset: what the kernel still holds for this socket is freed at once.
    private func reset() {
        guard let channel = self.context?.channel, channel.isActive else { return }
        self.metrics?.websocketReset()
        channel.reset()
    }

    // MARK: FrameSink and the flusher

    func enqueueFrame(_ frame: ByteBuffer) {
        // The common case (a frame appended to what is held) touches only the machine: no context.
        guard self.writeContext != nil else { return }
        switch self.machine.outboundFrame(frame, now: self.loop.eventLoop.now) {
        case .drop:
            return
        case .step(.slowConsumer):
            self.run { $0.closeRequested(.slowConsumer, reason: "slow consumer") }
            return
        case .step(.write(let handoff, let flush)):
            switch handoff {
            case .none:
                break
            case .one(let buffer):
                self.writeContext?.write(NIOAny(buffer), promise: nil)
            case .two(let first, let second):
                self.writeContext?.write(NIOAny(first), promise: nil)
                self.writeContext?.write(NIOAny(second), promise: nil)
            }
            if let flush { self.loop.flusher.schedule(self, at: flush) }
        }
    }

    /// The loop's flusher: the flush this connection asked for is due.
    func flushOutbound(now: NIODeadline) {
        guard let writeContext = self.writeContext else { return }
        switch self.machine.flushOutbound(now: now) {
        case .nothing:
            break
        case .flush:
            writeContext.flush()
        case .writeAndFlush(let held):
            // One pipeline pass for the held bytes and the flush.
            writeContext.writeAndFlush(NIOAny(held), promise: nil)
        }
    }

    /// The connection for logs and error replies (only read, never kept).
    private var connectionInfo: ConnectionInfo {
        self.machine.session.info
    }

    /// Hands what the outbound buffer holds to the channel (before a control frame or a close).
    private func writePending() {
        guard let pending = self.machine.takeOutbound() else { return }
        self.writeContext?.write(NIOAny(pending), promise: nil)
    }
}
