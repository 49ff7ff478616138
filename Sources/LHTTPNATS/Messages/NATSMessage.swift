import NIOCore

/// A message the server delivered (`MSG` or `HMSG`).
public struct NATSMessage: Sendable, Equatable {
    public var subject: String
    /// The subscription it came through.
    public var sid: UInt64
    /// Where an answer goes (a request's inbox), if anywhere.
    public var replyTo: String?
    /// The header block of an `HMSG`; nil for a plain `MSG`.
    public var headers: NATSHeaders?
    public var payload: ByteBuffer

    public init(subject: String, sid: UInt64, replyTo: String? = nil, headers: NATSHeaders? = nil, payload: ByteBuffer) {
        self.subject = subject
        self.sid = sid
        self.replyTo = replyTo
        self.headers = headers
        self.payload = payload
    }
}
