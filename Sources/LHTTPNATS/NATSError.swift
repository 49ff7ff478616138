/// What can go wrong talking to NATS. The one error type of `LHTTPNATS`.
public enum NATSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A server line we do not understand, or a malformed one.
    case protocolViolation(String)
    /// A control line or payload larger than allowed.
    case tooLarge(String)
    /// The server said `-ERR`.
    case server(String)
    /// A subject that is not a plain token list (empty, wildcard, whitespace).
    case invalidSubject(String)
    /// Not connected, or the connection closed.
    case notConnected
    /// The server stopped answering keep-alive PINGs.
    case stale
    /// A socket error (connect refused, reset, timeout).
    case io(String)
    /// A request got no answer in time.
    case requestTimeout
    /// JetStream refused (`code` is its HTTP-like status, `errCode` its own number, 0 when it gave none).
    case jetStream(code: Int, errCode: Int, description: String)
    /// A request reached no one (`503 No Responders`: e.g. JetStream is not enabled on the server).
    case noResponders(String)

    public var description: String {
        switch self {
        case .protocolViolation(let what): return "NATS protocol violation: \(what)"
        case .tooLarge(let what): return "NATS frame too large: \(what)"
        case .server(let message): return "NATS server error: \(message)"
        case .invalidSubject(let subject): return "invalid NATS subject '\(subject)'"
        case .notConnected: return "not connected to NATS"
        case .stale: return "NATS server stopped answering PINGs"
        case .io(let what): return "NATS connection failed: \(what)"
        case .jetStream(let code, let errCode, let description): return "JetStream refused (\(code)/\(errCode)): \(description)"
        case .requestTimeout: return "NATS request not answered in time"
        case .noResponders(let subject): return "no NATS responder for '\(subject)'"
        }
    }
}
