import NIOCore

/// The hub's handle on one connection: safe to keep in shared registries, usable only on its loop.
public final class Subscriber: Sendable {
    public let id: ConnectionID
    /// The hub's slot for the connection's event loop (where its deliveries run).
    let slot: LoopSlot
    /// Touched only on `slot.eventLoop`: ``LoopSlot/deliver(_:to:)`` checks the loop once per publication,
    /// not once per subscriber (a `NIOLoopBound` would ask the loop for every delivery).
    nonisolated(unsafe) let sink: any FrameSink

    init(id: ConnectionID, sink: any FrameSink, slot: LoopSlot) {
        self.id = id
        self.slot = slot
        self.sink = sink
    }

    /// The connection's event loop.
    public var eventLoop: any EventLoop { self.slot.eventLoop }
}
