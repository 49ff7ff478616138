import NIOCore

/// Asks the app whether a websocket may connect, before the upgrade is answered (the `connect` webhook).
public protocol ConnectHook: Sendable {
    /// Called on the connection's event loop during the upgrade; `completion` runs exactly once, on
    /// `eventLoop`.
    func connect(_ request: ConnectRequest, on eventLoop: any EventLoop, completion: @escaping @Sendable (ConnectDecision) -> Void)
}

/// The upgrade request as the connect hook sees it.
public struct ConnectRequest: Sendable {
    /// The id the connection will have.
    public var id: ConnectionID
    /// `ip:port` of the peer.
    public var remoteAddress: String
    /// The request path, without the query.
    public var path: String
    /// The raw query string, without `?`.
    public var query: String
    /// `cookie`, `authorization`, `origin`, `user-agent` when present (lowercase names).
    public var headers: [String: String]
    /// The verified token, when the upgrade carried one (`auth.jwt`).
    public var identity: ConnectionIdentity?

    public init(id: ConnectionID, remoteAddress: String, path: String, query: String, headers: [String: String], identity: ConnectionIdentity? = nil) {
        self.id = id
        self.remoteAddress = remoteAddress
        self.path = path
        self.query = query
        self.headers = headers
        self.identity = identity
    }
}

/// The app's verdict on a connection.
public enum ConnectDecision: Sendable, Equatable {
    /// Upgrade; then carry out `actions` on the new connection (meta, reply, subscribe, ...).
    case accept(actions: [AppAction])
    /// Answer the upgrade request with `status` instead (401/403 refusals, 502/504 failures: fail closed).
    case refuse(status: Int, reason: String)
}
