/// Everything that can go wrong in `LHTTPClient`. The one error type of this module.
///
/// Transport errors from NIO (connection refused, DNS failure, reset) are passed through unchanged;
/// writes on a connection that is already closed are reported as ``connectionClosed``.
public enum LHTTPClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server answered the websocket upgrade request without upgrading (e.g. 404, 400); the HTTP status.
    case upgradeFailed(status: Int)
    /// A bounded wait (connect, upgrade, next event, HTTP response) ran out of time.
    case timeout
    /// The websocket event stream has ended: the `.closed` event was already delivered.
    case closed
    /// The connection is closed (or closed before a pending request was answered).
    case connectionClosed
    /// The next websocket event was not the one the caller expected.
    case unexpectedEvent(LHTTPClientEvent)
    /// The server sent something that is not a valid HTTP response or websocket handshake.
    case invalidResponse(String)

    /// A one-line human-readable description.
    public var description: String {
        switch self {
        case .upgradeFailed(let status): return "websocket upgrade failed: server answered HTTP \(status)"
        case .timeout: return "timed out"
        case .closed: return "the websocket event stream has ended"
        case .connectionClosed: return "the connection is closed"
        case .unexpectedEvent(let event): return "unexpected event: \(event)"
        case .invalidResponse(let why): return "invalid response: \(why)"
        }
    }
}
