import NIOCore

/// Where the hub writes one connection's frames: the connection's handler.
///
/// Every call happens on the connection's event loop. The hub never sees a socket, a session or a state
/// machine: only this. When the frames go out (coalescing, flushes) is the sink's own business.
public protocol FrameSink: AnyObject {
    /// Queues a complete, pre-encoded websocket frame (the same buffer goes to every subscriber). Order
    /// is kept per connection; the caller never waits for the write.
    func enqueueFrame(_ frame: ByteBuffer)
}
