import LHTTPProtocol

/// Why the gateway refused a message or could not carry out what it asked. The one error type of
/// `LHTTPGateway`.
///
/// ``status``, ``reason`` and ``reply`` are the single mapping to what a client receives
/// (`LHTTP/1.0 error` with `status` and `reason`); the HTTP side maps the same cases to HTTP statuses
/// through ``status`` too. No status literal appears anywhere else in the core.
public enum GatewayError: Error, Sendable, Equatable {
    /// The message broke the wire format or a limit.
    case protocolError(LHTTPProtocolError)
    /// The connection would hold more than `limits.max_subscriptions_per_connection` channels (429).
    case subscriptionLimit(limit: Int)
    /// The node would hold more than `limits.max_channels` channels (503).
    case channelLimit(limit: Int)
    /// More than `webhook.max_queued_per_connection` messages wait behind one the app is answering (503).
    case tooManyWaiting(limit: Int)
    /// The connection's upstream calls are at `upstream.max_in_flight_per_connection` and its backlog of
    /// waiting messages is full too (429): what cannot wait is refused.
    case upstreamBusy(limit: Int)
    /// A publication too large for the cluster link (its `max_payload`) (413).
    case publicationTooLarge(size: Int, limit: Int)
    /// A publication whose envelope, sent once per channel subject, would put more than
    /// `cluster.max_fanout_bytes` on the cluster link (413).
    case fanoutTooLarge(size: Int, channels: Int, limit: Int)
    /// The app refused (its webhook answered 401/403). `channels`: the refused channels of a subscribe.
    case refusedByApp(status: Int, channels: [String]?)
    /// The app's webhook failed: timeout (504), unreachable or an invalid answer (502).
    case appFailed(status: Int, reason: String)
    /// An `upstream` call failed: refused by the allow-list (403), queue full (503), backend error (502),
    /// timeout (504), ... — `status` and `reason` come from the upstream adapter.
    case upstreamFailed(status: Int, reason: String, url: String)
    /// A processor refused the message with its own status and reason.
    case rejected(status: Int, reason: String)
    /// The connection sends faster than its rate limits allow (429): the message was dropped.
    case rateLimited(RateLimit)
    /// A channel's options do not let this connection publish or subscribe there (403). `channels`: the
    /// refused ones; the others of the same list still apply.
    case channelForbidden(ChannelAccess.Operation, channels: [String])
    /// A token was refused (401): a refresh with a bad or expired token.
    case unauthorized(reason: String)
    /// A `presence:` header (or `GET /presence`) names a channel without presence (404).
    case noPresence(channel: String)
    /// Anything unexpected; details are logged, not sent.
    case internalError

    public var status: Int {
        switch self {
        case .protocolError(let error): return error.status
        case .subscriptionLimit, .upstreamBusy, .rateLimited: return 429
        case .channelForbidden: return 403
        case .channelLimit, .tooManyWaiting: return 503
        case .publicationTooLarge, .fanoutTooLarge: return 413
        case .refusedByApp(let status, _): return status
        case .appFailed(let status, _): return status
        case .upstreamFailed(let status, _, _): return status
        case .rejected(let status, _): return status
        case .unauthorized: return 401
        case .noPresence: return 404
        case .internalError: return 500
        }
    }

    public var reason: String {
        switch self {
        case .protocolError(let error): return error.reason
        case .subscriptionLimit(let limit): return "subscription limit: at most \(limit) channels per connection"
        case .channelLimit(let limit): return "this node has its maximum of \(limit) channels"
        case .tooManyWaiting: return "too many messages waiting for the app"
        case .upstreamBusy(let limit): return "too many upstream calls in flight (at most \(limit) per connection) and too many messages waiting"
        case .publicationTooLarge(let size, let limit):
            return "message too large for the cluster: \(size) bytes with its envelope, the cluster link's max_payload is \(limit)"
        case .fanoutTooLarge(let size, let channels, let limit):
            return "publication too large for the cluster: \(size) bytes with its envelope × \(channels) channels, over cluster.max_fanout_bytes \(limit)"
        case .refusedByApp(_, let channels): return channels == nil ? "refused by the app" : "subscription refused by the app"
        case .appFailed(_, let reason): return reason
        case .upstreamFailed(_, let reason, _): return reason
        case .rejected(_, let reason): return reason
        case .rateLimited(let limit):
            var parts: [String] = []
            if limit.messagesPerSecond > 0 { parts.append("\(limit.messagesPerSecond) messages") }
            if limit.bytesPerSecond > 0 { parts.append("\(limit.bytesPerSecond) bytes") }
            return "rate limit exceeded: at most \(parts.joined(separator: " and ")) per second; message dropped"
        case .channelForbidden(let operation, _):
            switch operation {
            case .publish: return "publishing to this channel is not allowed"
            case .subscribe: return "subscribing to this channel is not allowed"
            case .presence: return "reading this channel's presence is not allowed"
            }
        case .unauthorized(let reason): return reason
        case .noPresence: return "this channel keeps no presence"
        case .internalError: return "internal error"
        }
    }

    /// The `LHTTP/1.0 error` reply: `status`, `reason`, and `channels` (a subscribe refusal) or
    /// `upstream-url` (a failed upstream call) where they apply.
    public var reply: LHTTPMessage {
        var extra = LHTTPHeaders()
        switch self {
        case .channelForbidden(.presence, let channels):
            // `channel`, as on every presence answer (a client tells it from a refused publish's `channels`).
            extra.add(name: "channel", value: channels.joined(separator: " "))
        case .refusedByApp(_, .some(let channels)), .channelForbidden(_, let channels):
            extra.add(name: "channels", value: channels.joined(separator: " "))
        case .noPresence(let channel):
            extra.add(name: "channel", value: channel)
        case .upstreamFailed(_, _, let url):
            extra.add(name: "upstream-url", value: url)
        default:
            break
        }
        return LHTTPMessage.errorReply(status: self.status, reason: self.reason, extraHeaders: extra)
    }

    /// Maps any error a processor throws; unknown errors become 500 without leaking details.
    public init(_ error: any Error) {
        switch error {
        case let error as GatewayError: self = error
        case let error as LHTTPProtocolError: self = .protocolError(error)
        default: self = .internalError
        }
    }
}
