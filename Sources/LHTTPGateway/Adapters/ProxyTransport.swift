import NIOCore

/// The app's backend, as the server's reverse proxy sees it: one streamed exchange per proxied request.
///
/// The server hands over a request head and then its body piece by piece; the transport answers with
/// ``ProxyEvent``s on the event loop that asked, in order. Both directions are windowed: ``ProxyStream/write(_:)``
/// says when the request side is full (the server stops reading from its client until
/// ``ProxyEvent/requestBodyWanted``), and the transport stops reading from the backend while more than its
/// window of response bytes is delivered but not yet ``ProxyStream/consumed(_:)``.
public protocol ProxyTransport: Sendable {
    /// Starts one exchange. `events` runs on `eventLoop` with the events that arrived since its last call, in
    /// order (the server writes a batch and flushes once), and never after ``ProxyEvent/end`` or
    /// ``ProxyEvent/failed(_:)``.
    func start(_ request: ProxyRequest, on eventLoop: any EventLoop, events: @escaping @Sendable (CircularBuffer<ProxyEvent>) -> Void) -> any ProxyStream
}

/// One exchange in flight, driven from the event loop that started it.
public protocol ProxyStream: AnyObject, Sendable {
    /// Queues request body bytes for the backend. - Returns: false when the window is full: read no more
    /// from the client until ``ProxyEvent/requestBodyWanted``.
    func write(_ chunk: ByteBuffer) -> Bool
    /// The request body is complete.
    func end()
    /// `bytes` of response body went to the client's socket: the backend may send that much more.
    func consumed(_ bytes: Int)
    /// Abandons the exchange (the client left, or a timeout): no event follows.
    func cancel()
}

/// A request for the backend: the target URL, the headers to send (already filtered) and how the body is framed.
public struct ProxyRequest: Sendable {
    /// How the request body reaches the backend.
    public enum Body: Sendable, Equatable {
        /// No body (`GET`, `HEAD`, `DELETE` without one).
        case none
        /// Exactly this many bytes (`Content-Length`).
        case length(Int)
        /// A body of unknown length (the client sent it chunked): sent chunked.
        case chunked
    }

    public var method: String
    /// Scheme, authority, path and query.
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: Body
    /// Milliseconds to connect (then ``ProxyFailure/timeout``).
    public var connectTimeoutMilliseconds: Int

    public init(method: String, url: String, headers: [(name: String, value: String)], body: Body, connectTimeoutMilliseconds: Int) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
    }
}

/// What the backend sent, or what went wrong, as the server receives it.
public enum ProxyEvent: Sendable {
    /// The response head (informational `1xx` heads are not passed on). Header lines as received, in order.
    case head(status: Int, reason: String, headers: [(name: String, value: String)])
    /// Response body bytes (transfer coding removed, content coding kept).
    case body(ByteBuffer)
    /// The response is complete.
    case end
    /// The exchange failed; when no head was delivered the server answers with ``ProxyFailure/httpStatus``.
    case failed(ProxyFailure)
    /// The request window has room again: read from the client.
    case requestBodyWanted
}

/// Why an exchange with the backend failed.
public enum ProxyFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// Nothing listens at the backend's address (connection refused).
    case refused(String)
    /// The backend could not be reached or closed the connection before answering whole.
    case unreachable(String)
    /// Connecting, the first byte or the idle limit took too long.
    case timeout(String)
    /// `proxy.max_in_flight` exchanges run already.
    case overloaded
    /// The transport failed (libcurl refused an option, shut down).
    case transport(String)

    /// The status the client gets when no response head went out yet.
    public var httpStatus: Int {
        switch self {
        case .refused, .unreachable, .transport: return 502
        case .timeout: return 504
        case .overloaded: return 503
        }
    }

    public var description: String {
        switch self {
        case .refused(let why): return "backend refused the connection: \(why)"
        case .unreachable(let why): return "backend unreachable: \(why)"
        case .timeout(let what): return "backend timed out: \(what)"
        case .overloaded: return "too many proxied requests in flight (proxy.max_in_flight)"
        case .transport(let why): return "proxy transport failed: \(why)"
        }
    }
}
