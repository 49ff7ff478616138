import NIOCore
import NIOWebSocket

/// The websocket close codes lhttpd sends, and the one mapping from connection errors to them.
public enum CloseCode {
    public static let normal: UInt16 = 1000
    public static let goingAway: UInt16 = 1001
    public static let protocolError: UInt16 = 1002
    public static let messageTooBig: UInt16 = 1009
    public static let internalError: UInt16 = 1011
    /// The client did not read fast enough: more than `limits.max_outbound_bytes` were queued for it.
    public static let slowConsumer: UInt16 = 4008
    /// Nothing (no message, no pong) arrived for `websocket.idle_timeout_s`.
    public static let idleTimeout: UInt16 = 4009

    /// The close code and reason for an error raised while reading websocket frames,
    /// or nil when the connection is already unusable (I/O errors): then it is just closed.
    static func forError(_ error: any Error, maxMessageBytes: Int) -> (code: UInt16, reason: String)? {
        switch error {
        case NIOWebSocketError.invalidFrameLength:
            return (messageTooBig, "frame larger than \(maxMessageBytes) bytes")
        case let error as NIOWebSocketError:
            return (protocolError, "websocket protocol error: \(error)")
        case MessageAssembler.Error.messageTooBig:
            return (messageTooBig, "message larger than \(maxMessageBytes) bytes")
        case MessageAssembler.Error.tooManyFragments:
            return (messageTooBig, "too many fragments")
        case MessageAssembler.Error.unexpectedContinuation:
            return (protocolError, "continuation frame without a message")
        case MessageAssembler.Error.interleavedMessage:
            return (protocolError, "new message before the fragmented one ended")
        case is ByteToMessageDecoderError:
            return (protocolError, "websocket protocol error")
        default:
            return nil
        }
    }
}
