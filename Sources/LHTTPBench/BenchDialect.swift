import NIOCore

/// The server a scenario talks to: lhttpd (LHTTP) or nginx + Nchan.
public enum BenchDialect: String, Sendable, Codable, CaseIterable {
    case lhttp
    case nchan

    /// Websocket path a subscriber of `channel` connects to.
    func subscribePath(channel: String) -> String {
        switch self {
        case .lhttp: return "/ws"
        case .nchan: return "/sub/\(channel)"
        }
    }

    /// Text frames a subscriber sends after the upgrade to join `channel` (Nchan joins by path).
    func subscribeFrames(channel: String) -> [String] {
        switch self {
        case .lhttp: return ["LHTTP/1.0 bench\r\nsubscribe:\(channel)\r\n\r\n"]
        case .nchan: return []
        }
    }

    /// HTTP target of a publish to `channel`; the request body is the bench body.
    func publishTarget(channel: String) -> String {
        switch self {
        case .lhttp: return "/publish?channel=\(channel)&command=bench"
        case .nchan: return "/pub?id=\(channel)"
        }
    }

    /// Websocket path of a publisher (seed scenario).
    func websocketPublishPath(channel: String) -> String {
        switch self {
        case .lhttp: return "/ws"
        case .nchan: return "/pub?id=\(channel)"
        }
    }

    /// What a subscriber of `channel` receives around a published body (LHTTP wraps it in a message).
    func deliveredPrefix(channel: String) -> [UInt8] {
        switch self {
        case .lhttp: return Array("LHTTP/1.0 bench\r\npublish:\(channel)\r\n\r\n".utf8)
        case .nchan: return []
        }
    }

    /// The websocket frame payload a websocket publisher sends for `body`.
    func websocketPublishPayload(channel: String, body: [UInt8]) -> [UInt8] {
        self.deliveredPrefix(channel: channel) + body
    }
}
