extension CurlHTTPClient {
    /// Waits until no request is queued or running (a graceful stop lets calls in flight finish), or
    /// until `deadline` on `clock` passes, or until the calling task is cancelled.
    ///
    /// Nothing polls: the waiter is a continuation under the client's lock, resumed by whoever brings
    /// queued + running to zero (the curl thread). A timer on `clock` races it in a task group; the
    /// loser is cancelled and awaited, so no task outlives the call and each continuation is resumed
    /// exactly once.
    /// - Parameters:
    ///   - deadline: when to give up; one already past returns at once (true only when idle).
    ///   - clock: the clock of `deadline`; the server passes its `ContinuousClock`, tests a manual one.
    /// - Returns: whether the client became idle.
    public func waitUntilIdle<C: Clock>(until deadline: C.Instant, clock: C = ContinuousClock()) async -> Bool {
        if self.pendingCount == 0 { return true }
        guard clock.now < deadline, !Task.isCancelled else { return false }
        let idle = await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.idleSignal() }
            group.addTask {
                // The deadline, not a poll interval: `idleSignal` reports idleness the moment it happens.
                try? await clock.sleep(until: deadline, tolerance: nil)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        // The last call may have finished in the very instant the deadline passed.
        return idle || self.pendingCount == 0
    }

    /// Returns true once the client is idle, false when the task is cancelled first.
    private func idleSignal() async -> Bool {
        let id: Int? = self.withState { $0.pendingCount == 0 ? nil : $0.idleWaiters.reserve() }
        guard let id else { return true }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if let known = self.withState({ $0.idleWaiters.register(id, continuation) }) {
                    continuation.resume(returning: known)
                }
            }
        } onCancel: {
            self.withState { $0.idleWaiters.cancel(id) }?.resume(returning: false)
        }
    }
}
