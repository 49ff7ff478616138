import NIOCore

/// One message from the NATS server.
public enum NATSServerOp: Sendable, Equatable {
    /// `INFO {json}`: the raw JSON.
    case info(String)
    /// `MSG <subject> <sid> [reply-to] <#bytes>` and its payload.
    case message(subject: String, sid: UInt64, replyTo: String?, payload: ByteBuffer)
    case ping
    case pong
    case ok
    /// `-ERR '<message>'`.
    case error(String)
}
