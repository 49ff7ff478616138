import LHTTPProtocol

/// Why the gateway rejected a message. The one error type of `LHTTPGateway`.
///
/// ``status`` and ``reason`` are the single mapping to the error reply a client receives.
public enum GatewayError: Error, Sendable, Equatable {
    /// The message broke the wire format or a limit.
    case protocolError(LHTTPProtocolError)
    /// A processor or filter refused the message with a status and a reason.
    case rejected(status: Int, reason: String)

    public var status: Int {
        switch self {
        case .protocolError(let error): return error.status
        case .rejected(let status, _): return status
        }
    }

    public var reason: String {
        switch self {
        case .protocolError(let error): return error.reason
        case .rejected(_, let reason): return reason
        }
    }

    /// The `LHTTP/1.0 error` reply for this error.
    public var reply: LHTTPMessage { LHTTPMessage.errorReply(status: self.status, reason: self.reason) }

    /// Maps any error thrown by a processor or filter; unknown errors become 500 without leaking details.
    public init(_ error: any Error) {
        switch error {
        case let error as GatewayError: self = error
        case let error as LHTTPProtocolError: self = .protocolError(error)
        default: self = .rejected(status: 500, reason: "internal error")
        }
    }
}
