/// Why an upstream call failed. The one error type of `LHTTPUpstream`; ``status`` is the single mapping
/// to the status of the client's error reply.
public enum UpstreamError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The URL is not allowed by `upstream.allow` (or is not an http/https URL at all).
    case disallowed(String)
    /// The `upstream` header or a request header value is malformed.
    case invalidRequest(String)
    /// `max_in_flight` calls are running and `max_queued` are waiting.
    case queueFull
    /// The call did not finish within `timeout_ms` (or connect within `connect_timeout_ms`).
    case timeout
    /// The backend refused the connection: the request provably never reached it (safe to retry).
    case connectionRefused(String)
    /// The backend could not be reached (unresolvable, reset, no answer).
    case unreachable(String)
    /// The backend's answer is larger than `max_response_bytes`.
    case responseTooLarge(limit: Int)
    /// The backend answered with a 5xx status.
    case backendError(status: Int)
    /// Any other transfer failure, with libcurl's code and message.
    case transport(code: Int, message: String)
    /// The client is shutting down.
    case shutdown

    /// The status of the client's `LHTTP/1.0 error` reply.
    public var status: Int {
        switch self {
        case .disallowed: return 403
        case .invalidRequest: return 400
        case .queueFull, .shutdown: return 503
        case .timeout: return 504
        case .connectionRefused, .unreachable, .responseTooLarge, .backendError, .transport: return 502
        }
    }

    public var description: String {
        switch self {
        case .disallowed(let why): return "upstream URL not allowed: \(why)"
        case .invalidRequest(let why): return "invalid upstream request: \(why)"
        case .queueFull: return "upstream queue full"
        case .timeout: return "upstream timed out"
        case .connectionRefused(let why): return "upstream refused the connection: \(why)"
        case .unreachable(let why): return "upstream unreachable: \(why)"
        case .responseTooLarge(let limit): return "upstream response larger than \(limit) bytes"
        case .backendError(let status): return "upstream answered \(status)"
        case .transport(let code, let message): return "upstream failed (curl \(code)): \(message)"
        case .shutdown: return "upstream client is shutting down"
        }
    }
}
