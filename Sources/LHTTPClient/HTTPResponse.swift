import NIOCore
import NIOHTTP1

/// One complete HTTP response received by ``HTTPPublisher``.
public struct HTTPResponse: Sendable {
    /// The status code, e.g. 200, 413.
    public var status: Int
    /// The response headers, in order; look-ups (`headers["content-type"]`, `headers.first(name:)`) ignore case.
    public var headers: HTTPHeaders
    /// The whole body (de-chunked).
    public var body: ByteBuffer

    /// Creates a response value.
    public init(status: Int, headers: HTTPHeaders, body: ByteBuffer) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The body decoded as UTF-8 (invalid sequences repaired).
    public var bodyString: String { String(buffer: self.body) }

    /// The first value of header `name` (case-insensitive), or nil.
    public func header(_ name: String) -> String? { self.headers.first(name: name) }
}
