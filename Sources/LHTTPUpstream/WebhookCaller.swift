import LHTTPGateway
import LHTTPProtocol
import Logging
import NIOCore

/// Calls the app's webhooks: the JSON envelope, the signature, retries, and the answer's interpretation.
///
/// Retries only when the request provably never reached the backend (connection refused), at most
/// twice, after 100 ms and 400 ms. Every outcome is delivered on the event loop that asked.
public final class WebhookCaller: Sendable {
    public static let retryDelays: [TimeAmount] = [.milliseconds(100), .milliseconds(400)]

    private let client: CurlHTTPClient
    private let signer: WebhookSigner?
    private let parser: WebhookAnswerParser
    private let logger: Logger
    private let metrics: BackendMetrics?

    /// - Parameter secret: `webhook.secret`; empty sends no signature.
    public init(client: CurlHTTPClient, secret: String, limits: LHTTPLimits, metrics: BackendMetrics? = nil, logger: Logger) {
        self.client = client
        self.metrics = metrics
        self.signer = secret.isEmpty ? nil : WebhookSigner(secret: secret)
        self.parser = WebhookAnswerParser(limits: limits)
        self.logger = logger
    }

    /// POSTs `event` to `url`; `completion` runs on `eventLoop` with the outcome.
    public func call(
        url: String,
        event: WebhookEvent,
        timeoutMilliseconds: Int? = nil,
        on eventLoop: any EventLoop,
        completion: @escaping @Sendable (WebhookOutcome) -> Void
    ) {
        let body = event.jsonBody()
        var headers: [(name: String, value: String)] = [
            ("Content-Type", "application/json"),
            ("X-LHTTP-Event", event.kind.rawValue),
            ("X-LHTTP-Connection", event.connection.id),
        ]
        if let user = event.connection.user { headers.append(("X-LHTTP-User", user)) }
        if let signer = self.signer { headers.append((WebhookSigner.header, signer.signature(for: body))) }
        let request = UpstreamRequest(method: "POST", url: url, headers: headers, body: body, timeoutMilliseconds: timeoutMilliseconds)
        self.attempt(request, event: event, retry: 0, started: .now, on: eventLoop, completion: completion)
    }

    private func attempt(
        _ request: UpstreamRequest,
        event: WebhookEvent,
        retry: Int,
        started: ContinuousClock.Instant,
        on eventLoop: any EventLoop,
        completion: @escaping @Sendable (WebhookOutcome) -> Void
    ) {
        self.client.execute(request, on: eventLoop) { result in
            if case .failure(.connectionRefused) = result, retry < Self.retryDelays.count {
                eventLoop.scheduleTask(in: Self.retryDelays[retry]) {
                    self.attempt(request, event: event, retry: retry + 1, started: started, on: eventLoop, completion: completion)
                }
                return
            }
            let outcome = self.parser.outcome(of: result, command: event.message?.command ?? event.kind.rawValue)
            if let metrics = self.metrics {
                var resultLabel = "ok"
                if case .failed(let status, _) = outcome { resultLabel = String(status) }
                metrics.backendCall(kind: "webhook", route: event.message?.command ?? event.kind.rawValue, result: resultLabel, started: started)
            }
            if case .failed(let status, let reason) = outcome {
                self.logger.warning(
                    "webhook call failed",
                    metadata: [
                        "lhttp.conn": "\(event.connection.id)", "lhttp.event": "\(event.kind.rawValue)",
                        "lhttp.webhook_url": "\(request.url)", "http.status": "\(status)", "lhttp.reason": "\(reason)",
                    ]
                )
            }
            completion(outcome)
        }
    }
}
