import NIOCore

/// One LHTTP message: `LHTTP/1.0 <command>`, ordered headers, and a verbatim body.
public struct LHTTPMessage: Sendable, Equatable {
    /// The protocol token of every message this implementation reads or writes.
    public static let version = "LHTTP/1.0"

    /// The command from the start line (`chat`, `upload`, ...). Selects the processor.
    public var command: String
    /// The headers, in the sender's order and spelling.
    public var headers: LHTTPHeaders
    /// The body: every byte after the blank line, untouched.
    public var body: ByteBuffer

    public init(command: String, headers: LHTTPHeaders = LHTTPHeaders(), body: ByteBuffer = ByteBuffer()) {
        self.command = command
        self.headers = headers
        self.body = body
    }

    public init(command: String, headers: LHTTPHeaders = LHTTPHeaders(), body: String) {
        self.init(command: command, headers: headers, body: ByteBuffer(string: body))
    }

    /// The body decoded as UTF-8 (invalid sequences repaired), for logs and simple processors.
    public var bodyString: String { String(buffer: self.body) }

    /// The command of error replies.
    public static let errorCommand = "error"

    /// The error reply a client receives for a rejected message:
    /// `LHTTP/1.0 error\r\nstatus:<code>\r\nreason:<text>\r\n\r\n`.
    public static func errorReply(status: Int, reason: String, extraHeaders: LHTTPHeaders = LHTTPHeaders()) -> LHTTPMessage {
        var headers: LHTTPHeaders = ["status": String(status), "reason": reason.lhttpSanitized(max: 512)]
        for header in extraHeaders {
            headers.add(name: header.name, value: header.value.lhttpSanitized(max: 1024))
        }
        return LHTTPMessage(command: errorCommand, headers: headers)
    }

    /// The error reply for a protocol error.
    public static func errorReply(for error: LHTTPProtocolError) -> LHTTPMessage {
        errorReply(status: error.status, reason: error.reason)
    }
}
