import NIOCore
import NIOHTTP1

/// Sits after `NIOHTTPClientUpgradeHandler` while the upgrade is pending and fails the upgrade promise when the
/// server answers without upgrading, the response is malformed, or the connection ends.
///
/// On success the upgrade's completion handler removes it (by ``name``) before the websocket handlers are added,
/// so it never sees a websocket byte. Confined to the channel's event loop.
final class WebSocketUpgradeResponseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    static let name = "LHTTPClient.WebSocketUpgradeResponseHandler"

    private let upgraded: EventLoopPromise<Void>
    /// Why `NIOHTTPClientUpgradeHandler` refused a 101 response; the response head follows it.
    private var refusal: NIOHTTPClientUpgradeError?

    init(upgraded: EventLoopPromise<Void>) {
        self.upgraded = upgraded
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = Self.unwrapInboundIn(data) else { return }
        let status = Int(head.status.code)
        if let refusal = self.refusal {
            self.upgraded.fail(
                LHTTPClientError.invalidResponse("HTTP \(status) answer to the websocket upgrade was refused: \(refusal)")
            )
        } else {
            self.upgraded.fail(LHTTPClientError.upgradeFailed(status: status))
        }
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let refusal = error as? NIOHTTPClientUpgradeError,
            refusal == .responseProtocolNotFound || refusal == .upgraderDeniedUpgrade
        {
            // The response head comes next and completes the promise.
            self.refusal = refusal
            return
        }
        if error is HTTPParserError || error is NIOHTTPClientUpgradeError {
            self.upgraded.fail(LHTTPClientError.invalidResponse("\(error)"))
        } else {
            self.upgraded.fail(error)
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.upgraded.fail(LHTTPClientError.connectionClosed)
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension WebSocketUpgradeResponseHandler: Sendable {}
