import NIOCore

/// Small helpers shared by the websocket client and the HTTP publisher.
enum ClientSupport {
    /// The `Host` header value for `host:port`, bracketing IPv6 literals.
    static func hostHeader(host: String, port: Int) -> String {
        let name = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "\(name):\(port)"
    }

    /// Maps NIO's "this channel is closed" errors to ``LHTTPClientError/connectionClosed``; others pass through.
    static func mapWriteError(_ error: any Error) -> any Error {
        guard let channelError = error as? ChannelError else { return error }
        switch channelError {
        case .ioOnClosedChannel, .alreadyClosed, .outputClosed, .eof:
            return LHTTPClientError.connectionClosed
        default:
            return error
        }
    }

    /// Whether the readable bytes are valid UTF-8 (the standard library's validator: fast even in a
    /// debug build, unlike a scalar-by-scalar parse).
    static func isValidUTF8(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { String(validating: $0, as: UTF8.self) != nil }
    }
}
