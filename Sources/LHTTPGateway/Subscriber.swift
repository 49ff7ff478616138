import NIOCore

/// The hub's handle on one connection: safe to keep in shared registries, usable only on its loop.
public final class Subscriber: Sendable {
    public let id: ConnectionID
    /// The hub's slot for the connection's event loop (delivery batches and flushes happen there).
    let slot: LoopSlot
    let session: NIOLoopBound<Session>

    init(session: Session, slot: LoopSlot) {
        self.id = session.id
        self.slot = slot
        self.session = NIOLoopBound(session, eventLoop: session.eventLoop)
    }
}
