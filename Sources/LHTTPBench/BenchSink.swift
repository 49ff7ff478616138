import NIOCore

/// Receives what bench connections get. Lives on the bench's one event loop.
protocol BenchSink: AnyObject {
    /// One complete websocket message from connection `index` (the payload is a slice of the read buffer).
    func received(_ payload: ByteBuffer, from index: Int)
    /// Connection `index` ended.
    func closed(_ index: Int)
}
