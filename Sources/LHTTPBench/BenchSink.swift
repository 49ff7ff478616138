import NIOCore

/// Receives what bench connections get. Lives on the bench's one event loop.
protocol BenchSink: AnyObject {
    /// One complete websocket message from connection `index`, borrowed from the read buffer for the call.
    func received(_ payload: UnsafeRawBufferPointer, from index: Int)
    /// Connection `index` ended.
    func closed(_ index: Int)
    /// Connection `index` received a close frame with `code` (nil: none in the frame), before it ended.
    func closeFrame(_ code: UInt16?, from index: Int)
}

extension BenchSink {
    /// Most sinks only care that the connection ended (``closed(_:)``).
    func closeFrame(_ code: UInt16?, from index: Int) {}
}
