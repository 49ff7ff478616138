import LHTTPGateway
import LHTTPProtocol
import Logging
import NIOCore

/// The `upstream` header: `upstream:POST http://host/path` forwards the message to a backend.
///
/// Runs after pub/sub (register it in `Gateway(filtersAfterPubSub:)`), like the original. The call is
/// asynchronous: the connection goes on with its next message meanwhile. Fire-and-forget: the backend's
/// answer is not sent to the client, but every failure is (an `LHTTP/1.0 error` reply with `status`,
/// `reason` and `upstream-url`), with a log line and a counter.
public struct UpstreamFilter: HeaderFilter {
    public static let header = "upstream"

    private let client: CurlHTTPClient
    private let policy: UpstreamURLPolicy
    private let logger: Logger
    /// Calls of one connection in flight at once (`upstream.max_in_flight_per_connection`); beyond, 429.
    private let maxInFlightPerConnection: Int

    public init(
        client: CurlHTTPClient,
        policy: UpstreamURLPolicy,
        maxInFlightPerConnection: Int = 64,
        logger: Logger = Logger(label: "lhttpd.upstream")
    ) {
        self.client = client
        self.policy = policy
        self.maxInFlightPerConnection = maxInFlightPerConnection
        self.logger = logger
    }

    public func afterMessage(_ session: Session) throws {
        guard let message = session.message, let value = message.headers[Self.header] else { return }
        let handle = session.handle
        let metrics = session.gateway.metrics
        let request: UpstreamRequest
        do {
            request = try self.request(for: message, value: value, connection: session.id)
        } catch {
            metrics.backendCall(kind: "upstream", route: "upstream", result: String(error.status), seconds: nil)
            Self.report(error, url: Self.urlPart(of: value), handle: handle, logger: self.logger)
            return
        }
        guard session.callsInFlight < self.maxInFlightPerConnection else {
            metrics.backendCall(kind: "upstream", route: "upstream", result: "429", seconds: nil)
            Self.report(.tooManyInFlight(limit: self.maxInFlightPerConnection), url: request.url, handle: handle, logger: self.logger)
            return
        }
        session.callsInFlight += 1
        let logger = self.logger
        let started = ContinuousClock.now
        self.client.execute(request, on: session.eventLoop) { result in
            handle.withSession { $0.callsInFlight -= 1 }
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            switch result {
            case .success(let response) where response.status >= 500:
                let error = UpstreamError.backendError(status: response.status)
                metrics.backendCall(kind: "upstream", route: "upstream", result: String(error.status), seconds: seconds)
                Self.report(error, url: request.url, handle: handle, logger: logger)
            case .success:
                metrics.backendCall(kind: "upstream", route: "upstream", result: "ok", seconds: seconds)
            case .failure(let error):
                metrics.backendCall(kind: "upstream", route: "upstream", result: String(error.status), seconds: seconds)
                Self.report(error, url: request.url, handle: handle, logger: logger)
            }
        }
    }

    /// Builds the request: the whole message (as serialized after processing) for POST, PUT and PATCH.
    func request(for message: LHTTPMessage, value: String, connection: ConnectionID) throws(UpstreamError) -> UpstreamRequest {
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2 else { throw .invalidRequest("want 'upstream:METHOD URL'") }
        let method = parts[0].uppercased()
        guard UpstreamRequest.methods.contains(method) else { throw .invalidRequest("method \(parts[0]) is not allowed") }
        let url = try self.policy.check(String(parts[1]).trimmingCharacters(in: [" ", "\t"]))
        let sendsBody = method == "POST" || method == "PUT" || method == "PATCH"
        return UpstreamRequest(
            method: method,
            url: url,
            headers: [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("X-LHTTP-Command", message.command),
                ("X-LHTTP-Connection", connection.description),
            ],
            body: sendsBody ? message.serialized() : nil
        )
    }

    private static func report(_ error: UpstreamError, url: String, handle: SessionHandle, logger: Logger) {
        logger.warning(
            "upstream call failed",
            metadata: ["lhttp.conn": "\(handle.id)", "lhttp.upstream_url": "\(url.prefix(200))", "lhttp.error": "\(error)"]
        )
        handle.send(LHTTPMessage.errorReply(status: error.status, reason: error.description, extraHeaders: ["upstream-url": url]))
    }

    private static func urlPart(of value: String) -> String {
        value.split(separator: " ", maxSplits: 1).dropFirst().first.map(String.init) ?? value
    }
}
