import NIOCore

/// Where the hub writes one connection's frames: the connection's handler.
///
/// Every call happens on the connection's event loop. The hub never sees a socket, a session or a state
/// machine: only this.
public protocol FrameSink: AnyObject {
    /// Queues a complete, pre-encoded websocket frame (the same buffer goes to every subscriber).
    /// The sink asks its ``Subscriber`` for a flush once per tick (``Subscriber/requestFlush()``).
    func enqueueFrame(_ frame: ByteBuffer)
    /// Writes out what was queued since the last flush.
    func flushFrames()
}
