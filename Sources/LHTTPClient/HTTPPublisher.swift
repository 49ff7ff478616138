import NIOCore
import NIOHTTP1
import NIOPosix

/// A minimal keep-alive HTTP/1.1 client, for `POST /publish` and plain GETs (`/healthz`, static files).
///
/// ```swift
/// let publisher = try await HTTPPublisher.connect(host: "127.0.0.1", port: port)
/// let response = try await publisher.request(path: "/publish", body: ByteBuffer(string: "..."))
/// #expect(response.status == 200)
/// try await publisher.close()
/// ```
///
/// Requests run one at a time on one connection; calls made concurrently are queued and sent in call
/// order. Once the connection ends — the server closed it, answered with `Connection: close`, a response
/// timed out or was malformed — the pending request fails and every later call throws
/// ``LHTTPClientError/connectionClosed``; connect again for a new connection.
public final class HTTPPublisher: Sendable {
    private let channel: any Channel
    private let hostHeader: String

    private init(channel: any Channel, hostHeader: String) {
        self.channel = channel
        self.hostHeader = hostHeader
    }

    deinit {
        self.channel.close(promise: nil)
    }

    /// Opens a TCP connection (TCP_NODELAY) to `host:port`.
    ///
    /// - Parameters:
    ///   - timeout: Bound for the TCP connect and for each request's complete response. A late response
    ///     fails its request with ``LHTTPClientError/timeout`` and closes the connection.
    public static func connect(
        host: String,
        port: Int,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        timeout: Duration = .seconds(30)
    ) async throws -> HTTPPublisher {
        let requestTimeout = TimeAmount(timeout)
        let channel = try await ClientBootstrap(group: eventLoopGroup)
            .connectTimeout(requestTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(HTTPPublisherHandler(requestTimeout: requestTimeout))
                }
            }
            .connect(host: host, port: port)
            .get()
        return HTTPPublisher(channel: channel, hostHeader: ClientSupport.hostHeader(host: host, port: port))
    }

    /// Sends one request and returns the complete response (any status: a 413 is a response, not an error).
    ///
    /// Adds `Host` and, when there is a body or the method is POST/PUT/PATCH, `Content-Length`, unless
    /// `headers` already has them (a deliberately wrong `Content-Length` is sent as given).
    ///
    /// - Throws: ``LHTTPClientError/connectionClosed`` if the connection is or gets closed before the
    ///   response is complete; ``LHTTPClientError/timeout``; ``LHTTPClientError/invalidResponse(_:)``.
    public func request(
        method: HTTPMethod = .POST,
        path: String,
        headers: [(String, String)] = [],
        body: ByteBuffer? = nil
    ) async throws -> HTTPResponse {
        var requestHeaders = HTTPHeaders(headers)
        if !requestHeaders.contains(name: "host") {
            requestHeaders.add(name: "Host", value: self.hostHeader)
        }
        if !requestHeaders.contains(name: "content-length"), !requestHeaders.contains(name: "transfer-encoding") {
            if let body {
                requestHeaders.add(name: "Content-Length", value: String(body.readableBytes))
            } else if method == .POST || method == .PUT || method == .PATCH {
                requestHeaders.add(name: "Content-Length", value: "0")
            }
        }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: requestHeaders)
        let response = self.channel.eventLoop.makePromise(of: HTTPResponse.self)
        // The write fails without reaching the handler once the channel is closed.
        self.channel.writeAndFlush(PendingHTTPRequest(head: head, body: body, response: response)).whenFailure {
            error in
            response.fail(ClientSupport.mapWriteError(error))
        }
        return try await response.futureResult.get()
    }

    /// Closes the connection; a request in flight fails with ``LHTTPClientError/connectionClosed``. Idempotent.
    public func close() async throws {
        do {
            try await self.channel.close()
        } catch ChannelError.alreadyClosed {
            // Already closed: nothing to do.
        }
    }
}
