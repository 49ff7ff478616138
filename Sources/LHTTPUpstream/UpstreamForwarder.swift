import LHTTPGateway
import LHTTPProtocol
import Logging
import NIOCore

/// The `upstream` header: `upstream:POST http://host/path` forwards the message to a backend.
///
/// The gateway carries it out after the message's pub/sub, like the original, and bounds a connection's
/// calls in flight itself (back-pressure). Fire-and-forget: the backend's answer is not sent to the
/// client, but every failure is (an `LHTTP/1.0 error` reply with `status`, `reason` and `upstream-url`),
/// with a log line and a counter.
public struct UpstreamForwarder: UpstreamCaller {
    private let client: CurlHTTPClient
    private let policy: UpstreamURLPolicy
    private let metrics: BackendMetrics?
    private let logger: Logger

    public init(client: CurlHTTPClient, policy: UpstreamURLPolicy, metrics: BackendMetrics? = nil, logger: Logger = Logger(label: "lhttpd.upstream")) {
        self.client = client
        self.policy = policy
        self.metrics = metrics
        self.logger = logger
    }

    public func call(_ call: UpstreamCall, on eventLoop: any EventLoop, completion: @escaping @Sendable (GatewayError?) -> Void) {
        let request: UpstreamRequest
        do {
            request = try self.request(for: call)
        } catch {
            self.metrics?.backendCall(kind: "upstream", route: "upstream", result: String(error.status), started: nil)
            let failure = self.report(error, url: Self.urlPart(of: call.target), connection: call.connection)
            // Never inline: the caller is in the middle of its own work.
            eventLoop.execute { completion(failure) }
            return
        }
        let started = ContinuousClock.now
        self.client.execute(request, on: eventLoop) { result in
            switch result {
            case .success(let response) where response.status >= 500:
                let error = UpstreamError.backendError(status: response.status)
                self.metrics?.backendCall(kind: "upstream", route: "upstream", result: String(error.status), started: started)
                completion(self.report(error, url: request.url, connection: call.connection))
            case .success:
                self.metrics?.backendCall(kind: "upstream", route: "upstream", result: "ok", started: started)
                completion(nil)
            case .failure(let error):
                self.metrics?.backendCall(kind: "upstream", route: "upstream", result: String(error.status), started: started)
                completion(self.report(error, url: request.url, connection: call.connection))
            }
        }
    }

    /// Builds the request: the whole message (as serialized after processing) for POST, PUT and PATCH.
    func request(for call: UpstreamCall) throws(UpstreamError) -> UpstreamRequest {
        let parts = call.target.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2 else { throw .invalidRequest("want 'upstream:METHOD URL'") }
        let method = parts[0].uppercased()
        guard UpstreamRequest.methods.contains(method) else { throw .invalidRequest("method \(parts[0]) is not allowed") }
        let url = try self.policy.check(String(parts[1]).trimmingCharacters(in: [" ", "\t"]))
        let sendsBody = method == "POST" || method == "PUT" || method == "PATCH"
        let body: ByteBuffer?
        do {
            body = sendsBody ? try call.message.serialized() : nil
        } catch {
            throw .invalidRequest(error.reason)
        }
        var headers: [(name: String, value: String)] = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("X-LHTTP-Command", call.message.command),
            ("X-LHTTP-Connection", call.connection.description),
        ]
        if !call.user.isEmpty { headers.append(("X-LHTTP-User", call.user)) }
        return UpstreamRequest(method: method, url: url, headers: headers, body: body)
    }

    /// Logs a failure and maps it to what the sender gets (the one place for upstream errors).
    private func report(_ error: UpstreamError, url: String, connection: ConnectionID) -> GatewayError {
        self.logger.warning(
            "upstream call failed",
            metadata: ["lhttp.conn": "\(connection)", "lhttp.upstream_url": "\(url.prefix(200))", "lhttp.error": "\(error)"]
        )
        return .upstreamFailed(status: error.status, reason: error.description, url: url)
    }

    private static func urlPart(of value: String) -> String {
        value.split(separator: " ", maxSplits: 1).dropFirst().first.map(String.init) ?? value
    }
}
