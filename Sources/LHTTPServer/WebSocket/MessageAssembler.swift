import NIOCore
import NIOWebSocket

/// Reassembles fragmented websocket messages (RFC 6455 5.4) within a size and fragment bound, and checks
/// that a text message is UTF-8 as it arrives (fail fast: a bad fragment is refused at once).
///
/// A plain state machine: the websocket state machine feeds it unmasked data frames. It holds a buffer
/// only while a fragmented message is in flight, so an idle connection costs nothing here (it replaced
/// NIO's `NIOWebSocketFrameAggregator`, a handler and pipeline context per connection).
struct MessageAssembler {
    enum Error: Swift.Error, Equatable {
        /// The message grew past `maxMessageBytes`.
        case messageTooBig
        /// More than `maxFragments` fragments.
        case tooManyFragments
        /// A continuation frame with no message started.
        case unexpectedContinuation
        /// A new text/binary frame while a fragmented message is unfinished.
        case interleavedMessage
        /// A text message (or one of its fragments) is not valid UTF-8.
        case invalidUTF8
    }

    let maxMessageBytes: Int
    let maxFragments: Int
    private var pending: ByteBuffer?
    private var fragments = 0
    /// Set while a text message is in flight.
    private var utf8: UTF8Validator?

    init(maxMessageBytes: Int, maxFragments: Int = 1024) {
        self.maxMessageBytes = maxMessageBytes
        self.maxFragments = maxFragments
    }

    /// Feeds one unmasked data frame. - Returns: a complete message, or nil while one is being assembled.
    mutating func receive(opcode: WebSocketOpcode, fin: Bool, payload: ByteBuffer) throws(Error) -> ByteBuffer? {
        switch opcode {
        case .continuation:
            guard var pending = self.pending else { throw .unexpectedContinuation }
            self.pending = nil
            self.fragments += 1
            guard self.fragments <= self.maxFragments else { throw .tooManyFragments }
            guard pending.readableBytes + payload.readableBytes <= self.maxMessageBytes else { throw .messageTooBig }
            try self.checkText(payload, fin: fin)
            var payload = payload
            pending.writeBuffer(&payload)
            guard fin else {
                self.pending = pending
                return nil
            }
            self.fragments = 0
            return pending
        default:
            guard self.pending == nil else { throw .interleavedMessage }
            if opcode == .text { self.utf8 = UTF8Validator() }
            try self.checkText(payload, fin: fin)
            guard !fin else { return payload }
            self.fragments = 1
            self.pending = payload
            return nil
        }
    }

    /// Checks a fragment of a text message; at its end, that it ends on a code point boundary.
    private mutating func checkText(_ payload: ByteBuffer, fin: Bool) throws(Error) {
        guard var validator = self.utf8 else { return }
        guard validator.feed(payload), !fin || validator.isAtBoundary else {
            self.utf8 = nil
            throw .invalidUTF8
        }
        self.utf8 = fin ? nil : validator
    }
}
