import NIOConcurrencyHelpers
import NIOCore

/// The shared state of one websocket connection, all under one lock: the events received and not yet
/// consumed, the consumers waiting for one, and whether this side has sent its close frame.
///
/// The channel handler pushes events from the event loop; consumers (``LHTTPWebSocketClient/nextEvent(timeout:)``
/// and the ``LHTTPWebSocketClient/events`` stream) take them from any task. An event is handed to exactly one
/// consumer: a wait that times out or is cancelled is removed under the lock, so it can never swallow an event.
final class WebSocketClientState: Sendable {
    /// How a wait for the next event ended.
    enum WaitResult: Sendable {
        case event(LHTTPClientEvent)
        /// The final `.closed` event was already taken; nothing will ever arrive.
        case finished
        case timedOut
        case cancelled
    }

    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<WaitResult, Never>
        var timer: Scheduled<Void>?
    }

    private struct State {
        /// Events not yet taken. Non-empty only while `waiters` is empty.
        var buffered = CircularBuffer<LHTTPClientEvent>()
        /// Consumers waiting, oldest first. Non-empty only while `buffered` is empty.
        var waiters: [Waiter] = []
        /// Whether `.closed` was delivered or buffered: no later event is accepted.
        var finished = false
        /// Whether this side has sent (or is sending) a close frame.
        var closeFrameSent = false
        var lastWaiterID: UInt64 = 0
        /// Payloads of the pongs received, oldest first (a few per test at most).
        var pongs: [ByteBuffer] = []
    }

    // A pthread-based lock rather than Synchronization's Mutex: ThreadSanitizer does not see the Mutex's
    // futex on Linux and reports its critical sections as races.
    private let state = NIOLockedValueBox(State())
    /// Runs the timers of timed waits.
    private let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    // MARK: Producer side (the channel handler)

    /// Records a pong's payload.
    func recordPong(_ payload: ByteBuffer) {
        self.state.withLockedValue { $0.pongs.append(payload) }
    }

    /// The pongs received so far.
    var pongs: [ByteBuffer] { self.state.withLockedValue { $0.pongs } }

    /// Hands `event` to the oldest waiter, or buffers it. Ignored after ``finish(code:reason:)``.
    func push(_ event: LHTTPClientEvent) {
        let waiter: Waiter? = self.state.withLockedValue { state in
            guard !state.finished else { return nil }
            guard !state.waiters.isEmpty else {
                state.buffered.append(event)
                return nil
            }
            return state.waiters.removeFirst()
        }
        if let waiter {
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: .event(event))
        }
    }

    /// Delivers the final `.closed` event; only the first call has an effect.
    func finish(code: UInt16?, reason: String) {
        let event = LHTTPClientEvent.closed(code: code, reason: reason)
        let waiters: [Waiter] = self.state.withLockedValue { state in
            guard !state.finished else { return [] }
            state.finished = true
            guard !state.waiters.isEmpty else {
                state.buffered.append(event)
                return []
            }
            let waiters = state.waiters
            state.waiters.removeAll()
            return waiters
        }
        for (index, waiter) in waiters.enumerated() {
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: index == 0 ? .event(event) : .finished)
        }
    }

    /// Records that this side sends a close frame. True for the first caller only, who must send it.
    func markCloseFrameSent() -> Bool {
        self.state.withLockedValue { state in
            defer { state.closeFrameSent = true }
            return !state.closeFrameSent
        }
    }

    // MARK: Consumer side

    /// The next event, waiting at most `timeout` (nil: until an event arrives, the stream ends or the task is cancelled).
    func next(timeout: TimeAmount?) async -> WaitResult {
        enum FastPath {
            case done(WaitResult)
            case wait(id: UInt64)
        }
        let fastPath: FastPath = self.state.withLockedValue { state in
            if let event = state.buffered.popFirst() { return .done(.event(event)) }
            if state.finished { return .done(.finished) }
            state.lastWaiterID &+= 1
            return .wait(id: state.lastWaiterID)
        }
        let id: UInt64
        switch fastPath {
        case .done(let result): return result
        case .wait(let waiterID): id = waiterID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<WaitResult, Never>) in
                self.register(id: id, continuation: continuation, timeout: timeout)
            }
        } onCancel: {
            self.removeWaiter(id: id, result: .cancelled)
        }
    }

    private func register(id: UInt64, continuation: CheckedContinuation<WaitResult, Never>, timeout: TimeAmount?) {
        let immediate: WaitResult? = self.state.withLockedValue { state in
            // An event may have arrived since the fast path looked.
            if let event = state.buffered.popFirst() { return .event(event) }
            if state.finished { return .finished }
            // The cancellation handler may have run before this waiter existed.
            if Task.isCancelled { return .cancelled }
            state.waiters.append(Waiter(id: id, continuation: continuation, timer: nil))
            return nil
        }
        if let immediate {
            continuation.resume(returning: immediate)
            return
        }
        guard let timeout else { return }
        let timer = self.eventLoop.scheduleTask(in: timeout) {
            self.removeWaiter(id: id, result: .timedOut)
        }
        let stillWaiting = self.state.withLockedValue { state in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return false }
            state.waiters[index].timer = timer
            return true
        }
        if !stillWaiting { timer.cancel() }
    }

    /// Ends the wait `id` with `result` if it is still waiting (nothing happens if an event got there first).
    private func removeWaiter(id: UInt64, result: WaitResult) {
        let waiter: Waiter? = self.state.withLockedValue { state in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        guard let waiter else { return }
        waiter.timer?.cancel()
        waiter.continuation.resume(returning: result)
    }
}
