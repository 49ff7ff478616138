import NIOConcurrencyHelpers
import NIOCore

/// `POST /publish` with an `Idempotency-Key`: a retried request (a cron job that timed out and tried again)
/// publishes once within `window`, and the retry is answered with the first answer (same `seq`).
///
/// One node: a bounded table, the oldest key dropped first past `maxKeys`. The lock is held across the
/// publication (synchronous: it hands frames over, it does no I/O), so two copies of one request arriving
/// on two loops at once still publish once. Only successful answers are kept: a refused request may be
/// retried. Times are passed in.
final class PublishDeduplication: Sendable {
    /// Longest key accepted (bytes).
    static let maxKeyBytes = 256

    let window: TimeAmount
    let maxKeys: Int
    private let state = NIOLockedValueBox(State())

    private struct State {
        var answers: [String: (answer: ByteBuffer, at: NIODeadline)] = [:]
        /// Keys in the order they were stored (a key stored again later appears twice; the stale one is
        /// recognised by its time).
        var order = CircularBuffer<(key: String, at: NIODeadline)>()

        mutating func expire(now: NIODeadline, window: TimeAmount, maxKeys: Int) {
            while let oldest = self.order.first, oldest.at + window <= now || self.answers.count > maxKeys || self.order.count > 2 * maxKeys {
                self.order.removeFirst()
                if let stored = self.answers[oldest.key], stored.at == oldest.at { self.answers[oldest.key] = nil }
            }
        }
    }

    init(window: TimeAmount, maxKeys: Int) {
        self.window = window
        self.maxKeys = maxKeys
    }

    /// Publishes through `publish` unless `key` was published within the window.
    /// - Returns: the answer body, and whether it is the stored answer of an earlier request.
    func publishOnce(key: String, now: NIODeadline, publish: () throws(ServerError) -> ByteBuffer) throws(ServerError) -> (answer: ByteBuffer, replayed: Bool) {
        let result = self.state.withLockedValue { state -> Result<(ByteBuffer, Bool), ServerError> in
            state.expire(now: now, window: self.window, maxKeys: self.maxKeys)
            if let stored = state.answers[key] { return .success((stored.answer, true)) }
            let answer: ByteBuffer
            do throws(ServerError) {
                answer = try publish()
            } catch {
                return .failure(error)
            }
            state.answers[key] = (answer, now)
            state.order.append((key, now))
            state.expire(now: now, window: self.window, maxKeys: self.maxKeys)
            return .success((answer, false))
        }
        let (answer, replayed) = try result.get()
        return (answer, replayed)
    }

    /// Keys held now (tests: the table stays bounded).
    var count: Int { self.state.withLockedValue { $0.answers.count } }
}
