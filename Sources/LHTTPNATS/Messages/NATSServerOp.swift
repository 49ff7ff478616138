import NIOCore

/// One message from the NATS server.
public enum NATSServerOp: Sendable, Equatable {
    /// `INFO {json}`: the raw JSON.
    case info(String)
    /// `MSG <subject> <sid> [reply-to] <#bytes>` and its payload, or `HMSG` with a header block too.
    case message(NATSMessage)
    case ping
    case pong
    case ok
    /// `-ERR '<message>'`.
    case error(String)
}
