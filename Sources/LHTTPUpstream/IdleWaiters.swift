/// The tasks waiting in ``CurlHTTPClient/waitUntilIdle(until:clock:)``, kept under the client's lock.
///
/// A waiter's id is reserved (while the client is busy) before its continuation exists, because two
/// things can happen in between: its task is cancelled, or the client becomes idle. Either marks the
/// reserved id, and the registration that follows resumes at once instead of parking a continuation
/// nobody would resume (or missing the idle moment). Every path removes the id, so nothing stays
/// behind after a waiter returned.
struct IdleWaiters {
    private enum Slot {
        case reserved
        case waiting(CheckedContinuation<Bool, Never>)
        case cancelled
        /// The client became idle while the waiter was reserved.
        case idled
    }

    private var slots: [Int: Slot] = [:]
    private var nextID = 0

    /// Waiters holding an id (reserved, parked or cancelled but not registered yet).
    var count: Int { self.slots.count }

    /// Reserves an id for a waiter about to register.
    mutating func reserve() -> Int {
        defer { self.nextID += 1 }
        self.slots[self.nextID] = .reserved
        return self.nextID
    }

    /// Parks `continuation` under `id` and returns nil; or, when the waiter's outcome is already known,
    /// parks nothing and returns it for the caller to resume with (true: idle, false: cancelled).
    mutating func register(_ id: Int, _ continuation: CheckedContinuation<Bool, Never>) -> Bool? {
        switch self.slots[id] {
        case .reserved:
            self.slots[id] = .waiting(continuation)
            return nil
        case .idled:
            self.slots[id] = nil
            return true
        case .cancelled, .waiting, nil:
            // `.waiting` and nil cannot happen (one registration per reserved id); treated as cancelled.
            self.slots[id] = nil
            return false
        }
    }

    /// The waiter `id` was cancelled: returns its continuation to resume with `false`, or nil when it
    /// has none yet (then it is marked, see ``register(_:_:)``) or was resumed already.
    mutating func cancel(_ id: Int) -> CheckedContinuation<Bool, Never>? {
        switch self.slots[id] {
        case .waiting(let continuation):
            self.slots[id] = nil
            return continuation
        case .reserved:
            self.slots[id] = .cancelled
            return nil
        case .cancelled, .idled, nil:
            // Idled stays idled: it did become idle, and its registration says so.
            return nil
        }
    }

    /// The client became idle: removes and returns every parked continuation, and marks the reserved
    /// ids so that their registration returns true.
    mutating func takeParked() -> [CheckedContinuation<Bool, Never>] {
        guard !self.slots.isEmpty else { return [] }
        var parked: [CheckedContinuation<Bool, Never>] = []
        for (id, slot) in self.slots {
            switch slot {
            case .waiting(let continuation):
                parked.append(continuation)
                self.slots[id] = nil
            case .reserved:
                self.slots[id] = .idled
            case .cancelled, .idled:
                break
            }
        }
        return parked
    }
}
