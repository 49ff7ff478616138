import LHTTPProtocol
import NIOCore

/// One thing that happened on an ``LHTTPWebSocketClient`` connection, in arrival order.
public enum LHTTPClientEvent: Sendable, Equatable, CustomStringConvertible {
    /// A complete (reassembled) text or binary websocket message that parsed as LHTTP.
    /// `raw` is the whole payload; `binary` tells whether it arrived in a binary frame.
    case message(LHTTPMessage, raw: ByteBuffer, binary: Bool)
    /// A complete text or binary websocket message that is not a valid LHTTP message.
    case unparsable(ByteBuffer, binary: Bool)
    /// The connection ended; always the last event, delivered exactly once.
    ///
    /// `code` is the status code of the server's close frame, nil when the frame had no code or the
    /// TCP connection ended without a close frame (then `reason` is
    /// `"connection closed without close frame"`).
    case closed(code: UInt16?, reason: String)

    /// A one-line summary (payloads shortened to 200 bytes), for logs and test failures.
    public var description: String {
        switch self {
        case .message(let message, _, let binary):
            let headers = message.headers.map { "\($0.name):\($0.value)" }.joined(separator: ", ")
            return "message(\(binary ? "binary" : "text") '\(message.command)' [\(headers)] body: \(Self.preview(message.body)))"
        case .unparsable(let bytes, let binary):
            return "unparsable(\(binary ? "binary" : "text") \(Self.preview(bytes)))"
        case .closed(let code, let reason):
            return "closed(code: \(code.map(String.init) ?? "none"), reason: \"\(reason)\")"
        }
    }

    /// At most 200 bytes of a payload, decoded leniently, for test failure messages.
    private static func preview(_ bytes: ByteBuffer) -> String {
        let shown = bytes.getSlice(at: bytes.readerIndex, length: min(bytes.readableBytes, 200)) ?? ByteBuffer()
        let text = String(decoding: shown.readableBytesView, as: UTF8.self)
        let suffix = bytes.readableBytes > 200 ? "… (\(bytes.readableBytes) bytes)" : ""
        return "\"\(text)\"\(suffix)"
    }
}
