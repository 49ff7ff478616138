import LHTTPGateway
import LHTTPProtocol

/// What the server refuses or fails at. The one error type of `LHTTPServer`; ``httpStatus`` is
/// the single mapping to an HTTP status.
public enum ServerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `publish.token` is set and the request's `Authorization: Bearer` token is missing or wrong.
    case unauthorized
    /// The request body is larger than `limits.max_message_bytes`.
    case bodyTooLarge(limit: Int)
    /// The LHTTP message (or the message built from the query) is malformed or over a limit.
    case protocolError(LHTTPProtocolError)
    /// The publish names no channel.
    case noChannel
    /// A query parameter is unusable (`command` with spaces, bad percent-encoding).
    case badQuery(String)
    /// No route for this method and path.
    case notFound
    /// The path exists but not for this method.
    case methodNotAllowed(allowed: String)
    /// A websocket path was requested without a websocket upgrade.
    case upgradeRequired
    /// The server could not bind its listening socket.
    case bindFailed(String)
    /// A browser page from an origin not in `websocket.allowed_origins` asked for a websocket.
    case originNotAllowed(String)
    /// `limits.max_connections` websockets are open on this node.
    case tooManyConnections(limit: Int)
    /// The request did not arrive whole within `http.request_timeout_s` (slow-loris).
    case requestTimeout
    /// The gateway refused the publication (too large for the cluster link's `max_payload`).
    case publishRefused(GatewayError)
    /// The connect hook refused (401/403) or failed (502/504): the upgrade is answered with its status.
    case connectRefused(status: Int, reason: String)
    /// `GET /history` for a channel that keeps no history.
    case noHistory(String)
    /// The cluster's history store did not answer (JetStream unreachable).
    case historyUnavailable
    /// `GET /presence` for a channel that keeps no presence.
    case noPresence(String)
    /// `tls.cert_file` or `tls.key_file` does not load (the message names the file).
    case tls(String)

    public var httpStatus: Int {
        switch self {
        case .unauthorized: return 401
        case .bodyTooLarge: return 413
        case .protocolError(let error): return error.status
        case .noChannel: return 422
        case .badQuery: return 400
        case .notFound, .noHistory, .noPresence: return 404
        case .historyUnavailable: return 503
        case .methodNotAllowed: return 405
        case .upgradeRequired: return 426
        case .bindFailed, .tls: return 500
        case .connectRefused(let status, _): return status
        case .publishRefused(let error): return error.status
        case .originNotAllowed: return 403
        case .tooManyConnections: return 503
        case .requestTimeout: return 408
        }
    }

    public var description: String {
        switch self {
        case .unauthorized: return "missing or wrong bearer token"
        case .bodyTooLarge(let limit): return "body larger than \(limit) bytes"
        case .protocolError(let error): return error.reason
        case .noChannel: return "no channel: give a 'publish' header or ?channel="
        case .badQuery(let why): return "bad query: \(why)"
        case .notFound: return "not found"
        case .noHistory(let channel): return "channel \"\(channel.prefix(200))\" keeps no history"
        case .historyUnavailable: return "the cluster's history store (JetStream) is unreachable"
        case .noPresence(let channel): return "channel \"\(channel.prefix(200))\" keeps no presence"
        case .methodNotAllowed(let allowed): return "method not allowed (allowed: \(allowed))"
        case .upgradeRequired: return "this path serves websocket upgrades only"
        case .bindFailed(let why): return "cannot listen: \(why)"
        case .connectRefused(_, let reason): return reason
        case .publishRefused(let error): return error.reason
        case .originNotAllowed(let origin): return "origin \(origin.prefix(200)) is not allowed (websocket.allowed_origins)"
        case .tooManyConnections(let limit): return "this node has its maximum of \(limit) connections; retry later or elsewhere"
        case .requestTimeout: return "request not received within http.request_timeout_s"
        case .tls(let why): return why
        }
    }
}
