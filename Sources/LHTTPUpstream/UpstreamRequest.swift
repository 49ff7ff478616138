import NIOCore

/// One HTTP request for the libcurl client.
public struct UpstreamRequest: Sendable {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    public var method: String
    /// An absolute http/https URL (already checked against the allow-list by the caller).
    public var url: String
    /// Request headers; values must not contain CR, LF or NUL.
    public var headers: [(name: String, value: String)]
    /// The body (sent for POST, PUT and PATCH).
    public var body: ByteBuffer?
    /// Whole-request timeout for this call; nil uses the client's `timeoutMilliseconds`.
    public var timeoutMilliseconds: Int?

    public init(
        method: String,
        url: String,
        headers: [(name: String, value: String)] = [],
        body: ByteBuffer? = nil,
        timeoutMilliseconds: Int? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    /// Methods this client sends; the upstream header accepts exactly these.
    public static let methods: Set<String> = ["GET", "POST", "PUT", "PATCH", "DELETE"]
}

/// A complete HTTP response.
public struct UpstreamResponse: Sendable {
    public var status: Int
    /// Header lines of the final response, in order, names as sent.
    public var headers: [(name: String, value: String)]
    public var body: ByteBuffer

    public init(status: Int, headers: [(name: String, value: String)], body: ByteBuffer) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        self.headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}
