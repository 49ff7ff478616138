import NIOCore

/// What a session needs from its connection. Implemented by the server's websocket handler;
/// every call happens on the connection's event loop.
public protocol SessionTransport: AnyObject {
    /// Writes a complete, pre-encoded websocket frame without flushing.
    func writeFrame(_ frame: ByteBuffer)
    /// Flushes what was written.
    func flush()
    /// Sends a close frame with `code` and `reason`, then closes the connection.
    func close(code: UInt16, reason: String)
}
