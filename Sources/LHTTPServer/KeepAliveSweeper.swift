import NIOCore

/// The websocket connections of one event loop, visited on a timer: a connection quiet for
/// `pingInterval` gets a ping, one that sent nothing at all (not even a pong) for `idleTimeout` is closed
/// with 4009. Also the registry a graceful stop uses to close every connection with 1001.
///
/// One timer per loop instead of one per connection: 50,000 idle connections cost an array slot each,
/// and a sweep is a pass over that array every few seconds. Confined to its event loop.
final class KeepAliveSweeper {
    let eventLoop: any EventLoop
    private let pingIntervalNanos: UInt64
    private let idleTimeoutNanos: UInt64
    private let tick: TimeAmount
    private var handlers: [WebSocketSessionHandler] = []
    private var task: RepeatedTask?

    init(eventLoop: any EventLoop, pingIntervalS: Double, idleTimeoutS: Double) {
        self.eventLoop = eventLoop
        self.pingIntervalNanos = UInt64(pingIntervalS * 1e9)
        self.idleTimeoutNanos = UInt64(idleTimeoutS * 1e9)
        // A quarter of the shorter period, within 20 ms...5 s: timeouts fire at most 25% late.
        let nanos = min(max(Int64(min(pingIntervalS, idleTimeoutS) * 1e9 / 4), 20_000_000), 5_000_000_000)
        self.tick = .nanoseconds(nanos)
    }

    func add(_ handler: WebSocketSessionHandler) {
        self.eventLoop.assertInEventLoop()
        handler.sweepIndex = self.handlers.count
        self.handlers.append(handler)
        if self.task == nil {
            self.task = self.eventLoop.scheduleRepeatedTask(initialDelay: self.tick, delay: self.tick) { [weak self] _ in
                self?.sweep()
            }
        }
    }

    func remove(_ handler: WebSocketSessionHandler) {
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
        let now = NIODeadline.now().uptimeNanoseconds
        var idle: [WebSocketSessionHandler] = []
        for handler in self.handlers {
            let quiet = now &- handler.lastReceivedNanos
            if quiet >= self.idleTimeoutNanos {
                idle.append(handler)
            } else if quiet >= self.pingIntervalNanos, now &- handler.lastPingNanos >= self.pingIntervalNanos {
                handler.sendPing(now: now)
            }
        }
        // Closing removes handlers from the array: not while iterating it.
        for handler in idle { handler.closeIdle() }
    }

    /// Closes every connection of this loop with `code` (graceful stop).
    func closeAll(code: UInt16, reason: String) {
        for handler in self.handlers { handler.close(code: code, reason: reason) }
    }

    func stop() {
        self.task?.cancel()
        self.task = nil
    }
}
