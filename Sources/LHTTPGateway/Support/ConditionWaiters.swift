import NIOConcurrencyHelpers

/// Tasks waiting until a condition that another thread makes true holds (a count reaching zero), each
/// with a timeout measured on a clock the caller passes in, so a test can drive time itself.
///
/// The condition is checked under the same lock a waiter registers under, and whoever makes it true calls
/// ``signal()`` afterwards, so a wake-up cannot be lost between the check and the wait.
public final class ConditionWaiters: Sendable {
    private enum Entry {
        /// Made, not suspended yet.
        case pending
        case waiting(CheckedContinuation<Bool, Never>)
        /// Timed out before it suspended.
        case cancelled
    }

    private let state = NIOLockedValueBox<(nextID: UInt64, entries: [UInt64: Entry])>((0, [:]))

    public init() {}

    /// Waits until `isMet()` holds or `timeout` has passed on `clock`.
    /// - Returns: whether the condition held.
    public func wait<C: Clock>(timeout: C.Duration, clock: C, isMet: @escaping @Sendable () -> Bool) async -> Bool {
        await self.wait(until: clock.now.advanced(by: timeout), clock: clock, isMet: isMet)
    }

    /// Waits until `isMet()` holds, `deadline` passes on `clock`, or the calling task is cancelled; a
    /// deadline already past returns at once.
    /// - Returns: whether the condition held.
    public func wait<C: Clock>(until deadline: C.Instant, clock: C, isMet: @escaping @Sendable () -> Bool) async -> Bool {
        if isMet() { return true }
        guard clock.now < deadline, !Task.isCancelled else { return false }
        let id = self.state.withLockedValue { state -> UInt64 in
            state.nextID += 1
            state.entries[state.nextID] = .pending
            return state.nextID
        }
        let met = await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.suspend(id, isMet: isMet) }
            group.addTask {
                try? await clock.sleep(until: deadline, tolerance: nil)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        self.state.withLockedValue { _ = $0.entries.removeValue(forKey: id) }
        return met || isMet()
    }

    /// Waiters registered and not returned yet (0 once every wait has returned: nothing is left behind).
    public var count: Int { self.state.withLockedValue { $0.entries.count } }

    /// Wakes every waiter: call after making the condition true.
    public func signal() {
        let woken = self.state.withLockedValue { state -> [CheckedContinuation<Bool, Never>] in
            var woken: [CheckedContinuation<Bool, Never>] = []
            for (id, entry) in state.entries {
                if case .waiting(let continuation) = entry {
                    woken.append(continuation)
                    state.entries[id] = nil
                }
            }
            return woken
        }
        for continuation in woken { continuation.resume(returning: true) }
    }

    private func suspend(_ id: UInt64, isMet: @escaping @Sendable () -> Bool) async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let answer: Bool? = self.state.withLockedValue { state in
                    guard case .pending? = state.entries[id] else { return false }
                    if isMet() { return true }
                    state.entries[id] = .waiting(continuation)
                    return nil
                }
                if let answer { continuation.resume(returning: answer) }
            }
        } onCancel: {
            let continuation = self.state.withLockedValue { state -> CheckedContinuation<Bool, Never>? in
                switch state.entries[id] {
                case .waiting(let continuation):
                    state.entries[id] = nil
                    return continuation
                case .pending:
                    state.entries[id] = .cancelled
                    return nil
                case .cancelled, nil:
                    return nil
                }
            }
            continuation?.resume(returning: false)
        }
    }
}
