import LHTTPGateway
import NIOCore
import NIOWebSocket

/// RFC 6455 for one server-side connection, the parts NIOWebSocket leaves to the handler: every inbound
/// frame is checked (reserved bits, masking, opcodes, close payloads, UTF-8 of text messages), fragments
/// are joined, control frames answered, and the closing handshake tracked. A plain struct.
///
/// This is the one mapping from what a client did wrong to the close code it gets:
/// - 1002: reserved bits set (no extension is ever negotiated), an unmasked frame, an unknown opcode, a
///   continuation without a message or a new message inside a fragmented one, a close frame with a
///   1-byte payload, a code that may not be sent (``CloseCode/isValidOnTheWire``) or a reason that is
///   not UTF-8, and NIO's own frame errors (fragmented or oversized control frames);
/// - 1007: a text message (or fragment) that is not UTF-8;
/// - 1009: a frame or a joined message over `max_message_bytes`, or more than 1024 fragments.
struct WebSocketStateMachine {
    enum State: Equatable {
        case open
        /// We sent a close frame with this code and wait for the peer's.
        case closeSent(CloseCode)
        /// The closing handshake is over (or the peer closed first and we answered).
        case closed
    }

    /// What a frame leads to.
    enum FrameResult: Equatable {
        case none
        /// A complete data message.
        case message(ByteBuffer)
        /// Answer a ping with this pong payload.
        case pong(ByteBuffer)
        /// Fail the connection: send a close frame with this code.
        case fail(CloseCode, reason: String)
        /// The peer closed first with this (valid) code: answer with the same code, then close.
        case peerClosed(CloseCode)
        /// The peer answered our close frame: the handshake is complete.
        case closeAcknowledged
    }

    private(set) var state = State.open
    private var assembler: MessageAssembler

    init(maxMessageBytes: Int) {
        self.assembler = MessageAssembler(maxMessageBytes: maxMessageBytes)
    }

    /// `limits.max_message_bytes`.
    var maxMessageBytes: Int { self.assembler.maxMessageBytes }

    /// Whether frames may still be sent (no close frame went out).
    var isOpen: Bool { self.state == .open }

    /// One frame from the peer (its payload still masked).
    mutating func received(_ frame: WebSocketFrame) -> FrameResult {
        switch self.state {
        case .closed:
            return .none
        case .open, .closeSent:
            break
        }
        guard !frame.rsv1, !frame.rsv2, !frame.rsv3 else {
            return self.fail(.protocolError, "reserved bits set without a negotiated extension")
        }
        guard let key = frame.maskKey else { return self.fail(.protocolError, "client frames must be masked") }
        var payload = frame.data
        payload.unmask(key)
        switch frame.opcode {
        case .text, .binary, .continuation:
            // After our close frame, data is read and dropped (RFC 6455 1.4).
            guard self.state == .open else { return .none }
            do {
                guard let message = try self.assembler.receive(opcode: frame.opcode, fin: frame.fin, payload: payload) else { return .none }
                return .message(message)
            } catch {
                return self.fail(error)
            }
        case .ping:
            return self.state == .open ? .pong(payload) : .none
        case .pong:
            return .none
        case .connectionClose:
            return self.receivedClose(payload)
        default:
            return self.fail(.protocolError, "unknown opcode \(frame.opcode)")
        }
    }

    /// NIO's frame decoder threw (oversized frame, fragmented or oversized control frame).
    mutating func decodingFailed(_ error: any Error) -> FrameResult? {
        switch error {
        case NIOWebSocketError.invalidFrameLength:
            return self.fail(.messageTooBig, "frame larger than \(self.maxMessageBytes) bytes")
        case let error as NIOWebSocketError:
            return self.fail(.protocolError, "websocket protocol error: \(error)")
        case is ByteToMessageDecoderError:
            return self.fail(.protocolError, "websocket protocol error")
        default:
            return nil  // an I/O error: the connection is unusable, nothing to send
        }
    }

    /// We are about to send a close frame. - Returns: false when one was already sent or received.
    mutating func closing(_ code: CloseCode) -> Bool {
        guard self.state == .open else { return false }
        self.state = .closeSent(code)
        return true
    }

    private mutating func receivedClose(_ payload: ByteBuffer) -> FrameResult {
        var payload = payload
        let code: CloseCode
        switch payload.readableBytes {
        case 0:
            code = .normal  // "no status code": answered, and reported, as a normal close
        case 1:
            return self.failClose("close frame with a 1-byte payload")
        default:
            code = CloseCode(rawValue: payload.readInteger(as: UInt16.self)!)
            guard code.isValidOnTheWire else { return self.failClose("close code \(code.rawValue) may not be sent") }
            var reason = UTF8Validator()
            guard reason.feed(payload), reason.isAtBoundary else { return self.failClose("close reason is not UTF-8") }
        }
        switch self.state {
        case .open:
            self.state = .closed
            return .peerClosed(code)
        case .closeSent:
            self.state = .closed
            return .closeAcknowledged
        case .closed:
            return .none
        }
    }

    /// A bad close frame: fail with 1002, or just finish when our close already went out.
    private mutating func failClose(_ reason: String) -> FrameResult {
        guard self.state == .open else {
            self.state = .closed
            return .closeAcknowledged
        }
        return self.fail(.protocolError, reason)
    }

    private mutating func fail(_ error: MessageAssembler.Error) -> FrameResult {
        switch error {
        case .messageTooBig: return self.fail(.messageTooBig, "message larger than \(self.maxMessageBytes) bytes")
        case .tooManyFragments: return self.fail(.messageTooBig, "too many fragments")
        case .unexpectedContinuation: return self.fail(.protocolError, "continuation frame without a message")
        case .interleavedMessage: return self.fail(.protocolError, "new message before the fragmented one ended")
        case .invalidUTF8: return self.fail(.invalidPayload, "text message is not valid UTF-8")
        }
    }

    private mutating func fail(_ code: CloseCode, _ reason: String) -> FrameResult {
        guard self.state == .open else { return .none }
        return .fail(code, reason: reason)
    }
}

extension ByteBuffer {
    /// Unmasks a client frame's payload in place, eight bytes at a time (NIO's `webSocketUnmask`
    /// goes byte by byte, and this runs for every inbound frame).
    mutating func unmask(_ key: WebSocketMaskingKey) {
        let k = (UInt32(key[0]) | UInt32(key[1]) << 8 | UInt32(key[2]) << 16 | UInt32(key[3]) << 24)
        let wide = UInt64(k) | UInt64(k) << 32
        self.withUnsafeMutableReadableBytes { bytes in
            var index = 0
            let count = bytes.count
            while index + 8 <= count {
                let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                bytes.storeBytes(of: word ^ wide, toByteOffset: index, as: UInt64.self)
                index += 8
            }
            while index < count {
                bytes[index] ^= key[index & 3]
                index += 1
            }
        }
    }
}
