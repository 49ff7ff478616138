import LHTTPGateway
import NIOCore

/// The websocket connections of one event loop, visited on a timer: each gets a keep-alive tick (its
/// state machine pings a quiet connection and closes a silent one with 4009). Also the registry a
/// graceful stop uses to close every connection with 1001.
///
/// One timer per loop instead of one per connection: 50,000 idle connections cost an array slot each,
/// and a sweep is a pass over that array every few seconds. Time is the event loop's clock
/// (`eventLoop.now`), so a test on an `EmbeddedEventLoop` advances it. Confined to its event loop.
final class KeepAliveSweeper {
    let eventLoop: any EventLoop
    private let keepAlive: ConnectionStateMachine.KeepAlive
    private let tick: TimeAmount
    private var handlers: [WebSocketConnectionHandler] = []
    private var task: RepeatedTask?
    /// When the last sweep ran: a sweep much later than its tick shows the loop itself was held up.
    private var lastSweep: NIODeadline?

    init(eventLoop: any EventLoop, pingIntervalS: Double, idleTimeoutS: Double) {
        self.eventLoop = eventLoop
        self.keepAlive = .init(pingInterval: TimeAmount(.seconds(pingIntervalS)), idleTimeout: TimeAmount(.seconds(idleTimeoutS)))
        // A quarter of the shorter period, within 20 ms...5 s: timeouts fire at most 25% late.
        let nanos = min(max(Int64(min(pingIntervalS, idleTimeoutS) * 1e9 / 4), 20_000_000), 5_000_000_000)
        self.tick = .nanoseconds(nanos)
    }

    /// Connections currently registered.
    var count: Int { self.handlers.count }

    func add(_ handler: WebSocketConnectionHandler) {
        self.eventLoop.assertInEventLoop()
        handler.sweepIndex = self.handlers.count
        self.handlers.append(handler)
        if self.task == nil {
            // The task runs on this loop; the box keeps the sweeper alive while it is scheduled.
            let sweeper = NIOLoopBound(self, eventLoop: self.eventLoop)
            self.task = self.eventLoop.scheduleRepeatedTask(initialDelay: self.tick, delay: self.tick) { _ in
                sweeper.value.sweep()
            }
        }
    }

    func remove(_ handler: WebSocketConnectionHandler) {
        self.eventLoop.assertInEventLoop()
        let index = handler.sweepIndex
        guard index >= 0, index < self.handlers.count, self.handlers[index] === handler else { return }
        let last = self.handlers.removeLast()
        if index < self.handlers.count {
            self.handlers[index] = last
            last.sweepIndex = index
        }
        handler.sweepIndex = -1
    }

    /// One pass at `now` (the loop's clock; a test passes a late one).
    ///
    /// A sweep that comes more than two ticks after the previous one means this loop did not run meanwhile
    /// (the process was not scheduled, or a long task held the loop): what the clients sent in that time is
    /// still unread in their sockets, so the delay beyond one tick is not counted as their silence.
    func sweep(now: NIODeadline) {
        let stalled = self.lastSweep.map { max(TimeAmount.zero, now - $0 - self.tick - self.tick) } ?? .zero
        self.lastSweep = now
        // Iterates a snapshot: a tick may close connections, which removes them from the array.
        for handler in self.handlers { handler.keepAliveTick(now: now, stalled: stalled, self.keepAlive) }
    }

    private func sweep() {
        self.sweep(now: self.eventLoop.now)
    }

    /// Closes every connection of this loop with `code` (graceful stop).
    func closeAll(code: CloseCode, reason: String) {
        for handler in self.handlers { handler.close(code: code, reason: reason) }
    }

    func stop() {
        self.task?.cancel()
        self.task = nil
        self.lastSweep = nil
    }
}
