import Foundation
import NIOCore

/// The life of one TCP connection to a NATS server, apart from sockets: INFO → CONNECT + PING → PONG → ready,
/// then keep-alive PINGs. ``NATSHandler`` feeds it server ops and does what the returned action says.
struct NATSConnectionStateMachine {
    enum State: Equatable {
        /// Connected at TCP level, waiting for the server's INFO.
        case awaitingInfo
        /// CONNECT and PING sent: the PONG means the server accepted CONNECT (an `-ERR` comes first otherwise).
        case awaitingHandshakePong
        case ready
        case failed
    }

    enum Action: Equatable {
        case none
        /// Send CONNECT and PING; `maxPayload` is the server's limit from INFO.
        case sendConnect(maxPayload: Int)
        /// The handshake completed.
        case becomeReady(maxPayload: Int)
        case answerPing
        /// The PONG of a PING we sent after the handshake (keep-alive or flush), oldest first.
        case completePing
        case deliver(NATSMessage)
        /// Close the connection with this error.
        case fail(NATSError)
        /// The server refused one operation but keeps the connection (a permissions violation): report it.
        case report(NATSError)
    }

    private(set) var state = State.awaitingInfo
    private(set) var maxPayload = 1 << 20
    /// PINGs sent after the handshake whose PONG has not come yet.
    private(set) var outstandingPings = 0

    mutating func received(_ op: NATSServerOp) -> Action {
        switch (self.state, op) {
        case (.failed, _):
            return .none
        case (.awaitingInfo, .info(let json)):
            let info = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any]
            if let maxPayload = info?["max_payload"] as? Int, maxPayload > 0 { self.maxPayload = maxPayload }
            self.state = .awaitingHandshakePong
            return .sendConnect(maxPayload: self.maxPayload)
        case (.awaitingInfo, _):
            self.state = .failed
            return .fail(.protocolViolation("the server did not start with INFO"))
        case (_, .info):
            // Later INFOs announce cluster changes; the configured server list is what we use.
            return .none
        case (_, .ping):
            return .answerPing
        case (.awaitingHandshakePong, .pong):
            self.state = .ready
            return .becomeReady(maxPayload: self.maxPayload)
        case (.ready, .pong):
            guard self.outstandingPings > 0 else { return .none }
            self.outstandingPings -= 1
            return .completePing
        case (_, .ok):
            return .none
        case (.ready, .error(let message)) where message.lowercased().hasPrefix("permissions violation"):
            // The one -ERR after which nats-server keeps the connection: a subject this user may not use.
            return .report(.server(message))
        case (_, .error(let message)):
            // Every other -ERR (authorization, parser, payload, slow consumer) ends the connection server-side.
            self.state = .failed
            return .fail(.server(message))
        case (.ready, .message(let message)):
            return .deliver(message)
        case (.awaitingHandshakePong, .message):
            self.state = .failed
            return .fail(.protocolViolation("MSG before the handshake completed"))
        }
    }

    /// A PING was sent after the handshake.
    mutating func pingSent() {
        self.outstandingPings += 1
    }

    mutating func closed() {
        self.state = .failed
    }
}
