import LHTTPGateway

extension CurlHTTPClient {
    /// Waits until no request is queued or running (a graceful stop lets calls in flight finish), or
    /// until `deadline` on `clock` passes, or until the calling task is cancelled.
    ///
    /// Nothing polls: the waiter is a continuation (``ConditionWaiters``) resumed by the curl thread when
    /// it brings queued + running to zero, raced against the deadline on `clock`.
    /// - Parameters:
    ///   - deadline: when to give up; one already past returns at once (true only when idle).
    ///   - clock: the clock of `deadline`; the composition root passes its stop budget's, tests a manual one.
    /// - Returns: whether the client became idle.
    public func waitUntilIdle<C: Clock>(until deadline: C.Instant, clock: C = ContinuousClock()) async -> Bool {
        await self.idle.wait(until: deadline, clock: clock) { [self] in self.pendingCount == 0 }
    }
}
