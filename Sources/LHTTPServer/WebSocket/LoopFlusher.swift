import NIOCore

/// The flushes of one event loop's websocket connections, at the times their ``OutboundWriter``s ask for:
/// one task per loop tick for the quiet ones (every connection written to in a tick is flushed once, after
/// the tick's frames), and one timer for the busy ones (all of them flushed together when it fires).
///
/// A busy connection's flush is due `maxDelay` after its last one; the timer is set for the first due
/// time and flushes every connection waiting then, so none waits longer than `maxDelay`, and a loop
/// under load flushes its connections together, once per `maxDelay`. Confined to its event loop.
final class LoopFlusher {
    let eventLoop: any EventLoop
    private var endOfTick: [WebSocketConnectionHandler] = []
    private var delayed: [WebSocketConnectionHandler] = []
    /// The list being flushed, kept to reuse its storage.
    private var spare: [WebSocketConnectionHandler] = []
    private var isTimerSet = false

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Flushes `handler` at `time` (once: the writer asks only when no flush is pending).
    func schedule(_ handler: WebSocketConnectionHandler, at time: OutboundWriter.FlushTime) {
        switch time {
        case .endOfTick:
            self.endOfTick.append(handler)
            if self.endOfTick.count == 1 {
                let flusher = NIOLoopBound(self, eventLoop: self.eventLoop)
                self.eventLoop.execute { flusher.value.flush(\.endOfTick) }
            }
        case .at(let due):
            self.delayed.append(handler)
            if !self.isTimerSet {
                self.isTimerSet = true
                let flusher = NIOLoopBound(self, eventLoop: self.eventLoop)
                self.eventLoop.scheduleTask(deadline: due) {
                    flusher.value.isTimerSet = false
                    flusher.value.flush(\.delayed)
                }
            }
        }
    }

    private func flush(_ list: ReferenceWritableKeyPath<LoopFlusher, [WebSocketConnectionHandler]>) {
        swap(&self[keyPath: list], &self.spare)
        let now = self.eventLoop.now
        for handler in self.spare { handler.flushOutbound(now: now) }
        self.spare.removeAll(keepingCapacity: true)
    }
}
