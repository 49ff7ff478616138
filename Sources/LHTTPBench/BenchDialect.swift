import NIOCore

/// The server a scenario talks to: lhttpd (LHTTP), nginx + Nchan, or nats-server's websocket listener (NATS).
public enum BenchDialect: String, Sendable, Codable, CaseIterable {
    case lhttp
    case nchan
    case nats

    /// Whether the server takes publications over HTTP (NATS does not: it publishes over websocket only).
    public var publishesOverHTTP: Bool {
        switch self {
        case .lhttp, .nchan: return true
        case .nats: return false
        }
    }

    /// The NATS CONNECT every NATS connection opens with: no +OK per message, no echo of its own publications.
    static let natsConnect = "CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false}\r\n"

    /// Websocket path a subscriber of `channel` connects to.
    func subscribePath(channel: String) -> String {
        switch self {
        case .lhttp: return "/ws"
        case .nchan: return "/sub/\(channel)"
        case .nats: return "/"
        }
    }

    /// Messages a subscriber sends after the upgrade to join `channel` (Nchan joins by path).
    func subscribeFrames(channel: String) -> [String] {
        switch self {
        case .lhttp: return ["LHTTP/1.0 bench\r\nsubscribe:\(channel)\r\n\r\n"]
        case .nchan: return []
        case .nats: return [Self.natsConnect + "SUB \(channel) 1\r\n"]
        }
    }

    /// HTTP target of a publish to `channel`; the request body is the bench body. Only when
    /// ``publishesOverHTTP``.
    func publishTarget(channel: String) -> String {
        switch self {
        case .lhttp: return "/publish?channel=\(channel)&command=bench"
        case .nchan: return "/pub?id=\(channel)"
        case .nats: preconditionFailure("NATS has no HTTP publish")
        }
    }

    /// Websocket path of a publisher.
    func websocketPublishPath(channel: String) -> String {
        switch self {
        case .lhttp: return "/ws"
        case .nchan: return "/pub?id=\(channel)"
        case .nats: return "/"
        }
    }

    /// Messages a websocket publisher sends once after the upgrade.
    func websocketPublisherHello() -> [String] {
        switch self {
        case .lhttp, .nchan: return []
        case .nats: return [Self.natsConnect]
        }
    }

    /// Websocket opcode of the client's messages: text for LHTTP and Nchan, binary for NATS.
    var websocketOpcode: UInt8 {
        switch self {
        case .lhttp, .nchan: return 0x1
        case .nats: return 0x2
        }
    }

    /// How a client reads this server's websocket messages.
    var framing: RawWebSocketHandler.Framing {
        switch self {
        case .lhttp, .nchan: return .messages
        case .nats: return .nats
        }
    }

    /// What a subscriber of `channel` receives around a published body (LHTTP wraps it in a message; a
    /// NATS subscriber gets the MSG payload, which is the body).
    func deliveredPrefix(channel: String) -> [UInt8] {
        switch self {
        case .lhttp: return Array("LHTTP/1.0 bench\r\npublish:\(channel)\r\n\r\n".utf8)
        case .nchan, .nats: return []
        }
    }

    /// The websocket message payload a websocket publisher sends for `body`.
    func websocketPublishPayload(channel: String, body: [UInt8]) -> [UInt8] {
        switch self {
        case .lhttp, .nchan: return self.deliveredPrefix(channel: channel) + body
        case .nats: return Array("PUB \(channel) \(body.count)\r\n".utf8) + body + [13, 10]
        }
    }
}
