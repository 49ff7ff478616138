import NIOCore

/// The hub's handle on one connection: safe to keep in shared registries, usable only on its loop.
public final class Subscriber: Sendable {
    public let id: ConnectionID
    /// The hub's slot for the connection's event loop (delivery batches and flushes happen there).
    let slot: LoopSlot
    let sink: NIOLoopBound<any FrameSink>

    init(id: ConnectionID, sink: any FrameSink, slot: LoopSlot) {
        self.id = id
        self.slot = slot
        self.sink = NIOLoopBound(sink, eventLoop: slot.eventLoop)
    }

    /// The connection's event loop.
    public var eventLoop: any EventLoop { self.slot.eventLoop }

    /// Asks for one ``FrameSink/flushFrames()`` after the frames written in this tick (call on the loop,
    /// once per tick: the sink keeps the flag).
    public func requestFlush() {
        self.slot.scheduleFlush(self)
    }
}
