import LHTTPProtocol
import NIOCore

/// Carries out the `upstream` header: forwards a message to a backend (the libcurl adapter implements it).
public protocol UpstreamCaller: Sendable {
    /// Starts the call. `completion` runs exactly once, on `eventLoop`, never before `call` returned: nil
    /// when the backend took the message, else the error the sender gets.
    func call(_ call: UpstreamCall, on eventLoop: any EventLoop, completion: @escaping @Sendable (GatewayError?) -> Void)
}

/// One `upstream:METHOD URL` header of a message, to carry out.
public struct UpstreamCall: Sendable, Equatable {
    /// The header's value (`POST http://host/path`), checked by the adapter against `upstream.allow`.
    public var target: String
    /// The message as processed (its serialized form is the request body of POST, PUT and PATCH).
    public var message: LHTTPMessage
    public var connection: ConnectionID
    /// The connection's user (its token's `sub`; empty: none), sent as `X-LHTTP-User`.
    public var user: String

    public init(target: String, message: LHTTPMessage, connection: ConnectionID, user: String = "") {
        self.target = target
        self.message = message
        self.connection = connection
        self.user = user
    }
}
