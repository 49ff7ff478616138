import LHTTPProtocol
import NIOCore
import NIOWebSocket

/// The last handler of an upgraded client pipeline (after `NIOWebSocketFrameAggregator`).
///
/// Turns complete data frames into ``LHTTPClientEvent``s, answers pings, ignores pongs, and runs the
/// close handshake from the server's side. Confined to the channel's event loop; it shares nothing but
/// the lock-protected ``WebSocketClientState``.
final class WebSocketFrameHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    static let closedWithoutFrameReason = "connection closed without close frame"

    /// Parses whatever the server sends: the client reports, the server enforces limits.
    private static let parser = LHTTPParser(
        limits: LHTTPLimits(
            maxMessageBytes: .max,
            maxHeaders: .max,
            maxHeaderLineBytes: .max,
            maxChannelsPerMessage: .max,
            maxChannelNameBytes: .max
        )
    )

    private let state: WebSocketClientState

    init(state: WebSocketClientState) {
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            self.deliver(frame.unmaskedData, binary: frame.opcode == .binary)
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(Self.wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            self.receivedClose(context: context, payload: frame.unmaskedData)
        case .pong:
            self.state.recordPong(frame.unmaskedData)
        default:
            // Opcodes this client does not know: nothing to do.
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.state.finish(code: nil, reason: Self.closedWithoutFrameReason)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Decoder errors (`NIOWebSocketError`): `WebSocketProtocolErrorHandler` has already sent the close
        // frame and closes the connection once it is written.
        guard !(error is NIOWebSocketError) else { return }
        guard self.state.markCloseFrameSent() else {
            context.close(promise: nil)
            return
        }
        let code: WebSocketErrorCode =
            (error as? NIOWebSocketFrameAggregator.Error) == .accumulatedFrameSizeIsTooLarge
            ? .messageTooLarge : .protocolError
        var payload = context.channel.allocator.buffer(capacity: 2)
        payload.write(webSocketErrorCode: code)
        self.sendCloseThenClose(context: context, payload: payload)
    }

    private func deliver(_ payload: ByteBuffer, binary: Bool) {
        do {
            let message = try Self.parser.parse(payload)
            self.state.push(.message(message, raw: payload, binary: binary))
        } catch {
            self.state.push(.unparsable(payload, binary: binary))
        }
    }

    private func receivedClose(context: ChannelHandlerContext, payload: ByteBuffer) {
        var payload = payload
        var code: UInt16?
        var reason = ""
        if payload.readableBytes >= 2, let received = payload.readInteger(as: UInt16.self) {
            code = received
            reason = String(decoding: payload.readableBytesView, as: UTF8.self)
        }
        self.state.finish(code: code, reason: reason)

        guard self.state.markCloseFrameSent() else {
            // We started the handshake; this is the answer.
            context.close(promise: nil)
            return
        }
        // Echo the status code, unless it is one that must never appear on the wire (RFC 6455 §7.4.1).
        var reply = context.channel.allocator.buffer(capacity: 2)
        if let code, ![1005, 1006, 1015].contains(code) {
            reply.writeInteger(code)
        }
        self.sendCloseThenClose(context: context, payload: reply)
    }

    /// Writes a (masked) close frame and closes the connection once it is written or failed.
    private func sendCloseThenClose(context: ChannelHandlerContext, payload: ByteBuffer) {
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: payload)
        context.writeAndFlush(Self.wrapOutboundOut(frame)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension WebSocketFrameHandler: Sendable {}
