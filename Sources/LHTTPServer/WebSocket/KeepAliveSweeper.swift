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

    private func sweep() {
        let now = self.eventLoop.now
        // Iterates a snapshot: a tick may close connections, which removes them from the array.
        for handler in self.handlers { handler.keepAliveTick(now: now, self.keepAlive) }
    }

    /// Closes every connection of this loop with `code` (graceful stop).
    func closeAll(code: CloseCode, reason: String) {
        for handler in self.handlers { handler.close(code: code, reason: reason) }
    }

    func stop() {
        self.task?.cancel()
        self.task = nil
    }
}
