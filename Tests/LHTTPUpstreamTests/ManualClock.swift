import LHTTPTestSupport
import NIOConcurrencyHelpers

/// A clock that moves only when the test advances it: a deadline on it passes exactly when the test
/// says, and one it never advances to can only be beaten by the event the test awaits.
final class ManualClock: Clock, Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration

        func advanced(by duration: Duration) -> Instant { Instant(offset: self.offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - self.offset }
        static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private enum Slot {
        case reserved
        case parked(Instant, CheckedContinuation<Void, any Error>)
        case cancelled
    }

    private struct State {
        var now = Instant(offset: .zero)
        var nextID = 0
        var slots: [Int: Slot] = [:]
        /// Tests waiting for `count` parked sleepers.
        var watchers: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []

        var parkedCount: Int {
            self.slots.values.filter { if case .parked = $0 { true } else { false } }.count
        }

        mutating func readyWatchers() -> [CheckedContinuation<Void, Never>] {
            let parked = self.parkedCount
            let ready = self.watchers.filter { $0.count <= parked }.map(\.continuation)
            self.watchers.removeAll { $0.count <= parked }
            return ready
        }
    }

    private let state = NIOLockedValueBox(State())

    var now: Instant { self.state.withLockedValue { $0.now } }
    var minimumResolution: Duration { .zero }
    /// Sleepers waiting for a deadline.
    var parkedCount: Int { self.state.withLockedValue { $0.parkedCount } }

    func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        let id = self.state.withLockedValue { state in
            defer { state.nextID += 1 }
            state.slots[state.nextID] = .reserved
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let (outcome, watchers): (Result<Void, any Error>?, [CheckedContinuation<Void, Never>]) = self.state.withLockedValue { state in
                    guard case .reserved = state.slots[id] else {
                        state.slots[id] = nil
                        return (.failure(CancellationError()), [])
                    }
                    guard deadline > state.now else {
                        state.slots[id] = nil
                        return (.success(()), [])
                    }
                    state.slots[id] = .parked(deadline, continuation)
                    return (nil, state.readyWatchers())
                }
                if let outcome { continuation.resume(with: outcome) }
                for watcher in watchers { watcher.resume() }
            }
        } onCancel: {
            let parked: CheckedContinuation<Void, any Error>? = self.state.withLockedValue { state in
                switch state.slots[id] {
                case .parked(_, let continuation):
                    state.slots[id] = nil
                    return continuation
                case .reserved:
                    state.slots[id] = .cancelled
                    return nil
                case .cancelled, nil:
                    return nil
                }
            }
            parked?.resume(throwing: CancellationError())
        }
    }

    /// Moves time on and wakes every sleeper whose deadline has come.
    func advance(by duration: Duration) {
        let due: [CheckedContinuation<Void, any Error>] = self.state.withLockedValue { state in
            state.now = state.now.advanced(by: duration)
            var due: [CheckedContinuation<Void, any Error>] = []
            for (id, slot) in state.slots {
                if case .parked(let deadline, let continuation) = slot, deadline <= state.now {
                    due.append(continuation)
                    state.slots[id] = nil
                }
            }
            return due
        }
        for sleeper in due { sleeper.resume() }
    }

    /// Returns once at least `count` sleepers wait on this clock.
    func waitForSleepers(_ count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = self.state.withLockedValue { state in
                guard state.parkedCount < count else { return true }
                state.watchers.append((count, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }
}
