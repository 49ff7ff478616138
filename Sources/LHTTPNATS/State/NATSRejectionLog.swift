import NIOCore

/// Counts rejected cluster messages and decides when to log them: at most one line per reason per
/// ``interval``, carrying how many were dropped since the last one, so a flood costs no log flood.
struct NATSRejectionLog {
    static let interval = TimeAmount.seconds(60)

    /// Rejections since start, per reason.
    private(set) var counts: [NATSRejection: Int] = [:]
    private var lastLine: [NATSRejection: NIODeadline] = [:]
    private var sinceLastLine: [NATSRejection: Int] = [:]

    /// Counts one rejection at `now`. - Returns: the number to report when a line is due (this one and
    /// the ones not logged before it), nil when the reason was logged less than ``interval`` ago.
    mutating func record(_ reason: NATSRejection, now: NIODeadline) -> Int? {
        self.counts[reason, default: 0] += 1
        let pending = self.sinceLastLine[reason, default: 0] + 1
        if let last = self.lastLine[reason], now - last < Self.interval {
            self.sinceLastLine[reason] = pending
            return nil
        }
        self.lastLine[reason] = now
        self.sinceLastLine[reason] = 0
        return pending
    }
}
