import Synchronization

/// The node's connection cap (`limits.max_connections`), counted by reservation: a slot is taken
/// atomically when an upgrade is accepted for consideration — before the connect hook is asked — and
/// given back exactly once, on whatever path the connection ends (refused by the hook, the client gone
/// before the answer, the upgrade failing, the websocket closing). So parallel upgrades and slow hooks
/// can never let more than the cap through.
public final class ConnectionSlots: Sendable {
    private let taken = Atomic<Int>(0)

    public init() {}

    /// Slots reserved or in use now.
    public var inUse: Int { self.taken.load(ordering: .relaxed) }

    /// Takes a slot if fewer than `limit` are taken. - Returns: the slot, or nil at the cap.
    public func reserve(limit: Int) -> ConnectionSlot? {
        var current = self.taken.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = self.taken.compareExchange(
                expected: current, desired: current + 1, successOrdering: .acquiringAndReleasing, failureOrdering: .relaxed
            )
            if exchanged { return ConnectionSlot(owner: self) }
            current = original
        }
        return nil
    }

    fileprivate func giveBack() {
        self.taken.subtract(1, ordering: .acquiringAndReleasing)
    }
}

/// One reserved connection slot. ``release()`` gives it back (once; later calls do nothing), and so does
/// dropping the last reference to it: a path that forgets it cannot leak the slot.
public final class ConnectionSlot: Sendable {
    private let owner: ConnectionSlots
    private let released = Atomic<Bool>(false)

    fileprivate init(owner: ConnectionSlots) {
        self.owner = owner
    }

    /// Gives the slot back (idempotent).
    public func release() {
        guard !self.released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        self.owner.giveBack()
    }

    deinit {
        self.release()
    }
}
