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

/// Client → server frames, written straight into a buffer.
public enum NATSClientOp {
    /// `CONNECT {json}`.
    static func connect(_ json: String, into buffer: inout ByteBuffer) {
        buffer.writeString("CONNECT \(json)\r\n")
    }

    /// `PUB <subject> <#bytes>` and the payload.
    static func publish(subject: String, payload: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeString("PUB \(subject) \(payload.readableBytes)\r\n")
        var payload = payload
        buffer.writeBuffer(&payload)
        buffer.writeStaticString("\r\n")
    }

    /// `SUB <subject> <sid>`.
    static func subscribe(subject: String, sid: UInt64, into buffer: inout ByteBuffer) {
        buffer.writeString("SUB \(subject) \(sid)\r\n")
    }

    /// `UNSUB <sid>`.
    static func unsubscribe(sid: UInt64, into buffer: inout ByteBuffer) {
        buffer.writeString("UNSUB \(sid)\r\n")
    }

    static func ping(into buffer: inout ByteBuffer) { buffer.writeStaticString("PING\r\n") }
    static func pong(into buffer: inout ByteBuffer) { buffer.writeStaticString("PONG\r\n") }
}
