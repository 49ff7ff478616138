/// A websocket close code (RFC 6455 7.4), and the rules of which may travel in a close frame.
///
/// The one place those rules live: the websocket layer validates what a client sends with
/// ``isValidOnTheWire``, and nothing (not the server, not a webhook's `close` action) can put 1005,
/// 1006 or 1015 on the wire, because every close the server sends goes through ``init(sending:)``'s
/// check or one of the constants below.
public struct CloseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16

    /// Any code, valid or not (what a peer sent, or what is reported to a hook).
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// A code the server may send, or nil (1004–1006, 1015, unassigned 1016–2999, below 1000, above 4999).
    public init?(sending rawValue: UInt16) {
        let code = CloseCode(rawValue: rawValue)
        guard code.isValidOnTheWire else { return nil }
        self = code
    }

    public static let normal = CloseCode(rawValue: 1000)
    public static let goingAway = CloseCode(rawValue: 1001)
    public static let protocolError = CloseCode(rawValue: 1002)
    /// Invalid UTF-8 in a text message (1007).
    public static let invalidPayload = CloseCode(rawValue: 1007)
    public static let messageTooBig = CloseCode(rawValue: 1009)
    public static let internalError = CloseCode(rawValue: 1011)
    /// Reported (never sent) when a connection ended without a close frame.
    public static let abnormal = CloseCode(rawValue: 1006)
    /// The connection's token expired and no new one came within `auth.jwt.refresh_grace_s`.
    public static let tokenExpired = CloseCode(rawValue: 4001)
    /// The client did not read fast enough: more than `limits.max_outbound_bytes` were queued for it.
    public static let slowConsumer = CloseCode(rawValue: 4008)
    /// Nothing (no message, no pong) arrived for `websocket.idle_timeout_s`.
    public static let idleTimeout = CloseCode(rawValue: 4009)
    /// The client kept sending over its rate: `limits.max_rate_violations` messages in a row were refused.
    public static let rateLimited = CloseCode(rawValue: 4029)

    /// Whether an endpoint may put this code in a close frame: 1000–1003, 1007–1014 (RFC 6455 and the
    /// IANA registry, which added 1012–1014), 3000–4999 (libraries and applications).
    ///
    /// 1004 is reserved, 1005/1006/1015 are reserved for reporting and "MUST NOT be set as a status code
    /// in a Close control frame by an endpoint", 1016–2999 are unassigned; a close frame carrying one of
    /// them is a protocol error (1002).
    public var isValidOnTheWire: Bool {
        switch self.rawValue {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }

    public var description: String { String(self.rawValue) }
}
