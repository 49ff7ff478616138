/// Reconnect delays: exponential from `minimum` up to `maximum`, each drawn uniformly from its upper half
/// ("equal jitter"), so a fleet of nodes that lost the same server does not come back in lockstep.
struct NATSBackoff: Sendable {
    let minimumMs: Int
    let maximumMs: Int
    /// Failed attempts since the last successful connection.
    private(set) var failures = 0

    init(minimumMs: Int, maximumMs: Int) {
        precondition(minimumMs > 0 && maximumMs >= minimumMs)
        self.minimumMs = minimumMs
        self.maximumMs = maximumMs
    }

    /// The delay before the next attempt, in milliseconds; counts one more failure.
    mutating func nextDelayMs<G: RandomNumberGenerator>(using generator: inout G) -> Int {
        let exponent = min(self.failures, 30)
        self.failures += 1
        let (product, overflow) = self.minimumMs.multipliedReportingOverflow(by: 1 << exponent)
        let ceiling = overflow ? self.maximumMs : min(self.maximumMs, product)
        let half = ceiling / 2
        return half + Int.random(in: 0...(ceiling - half), using: &generator)
    }

    mutating func nextDelayMs() -> Int {
        var generator = SystemRandomNumberGenerator()
        return self.nextDelayMs(using: &generator)
    }

    mutating func reset() {
        self.failures = 0
    }
}
