import CoreMetrics
import LHTTPGateway

/// The metrics of the calls to the app's backends (`docs/metrics.md`): count and latency by kind, route
/// and result.
public final class BackendMetrics: Sendable {
    private let labelled: LabelledMetrics

    public init(factory: any MetricsFactory) {
        self.labelled = LabelledMetrics(factory: factory)
    }

    /// A backend call finished. `kind`: `upstream` or `webhook`; `route`: the route's command, the hook's
    /// event, or `upstream`; `result`: `ok`, or the error status it became (`403`, `502`, `503`, `504`, ...).
    public func backendCall(kind: String, route: String, result: String, started: ContinuousClock.Instant?) {
        self.labelled.counter("lhttp_backend_calls_total", [("kind", kind), ("route", route), ("result", result)]).increment()
        if let started {
            let elapsed = ContinuousClock.now - started
            let nanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
            self.labelled.timer("lhttp_backend_call_duration_seconds", [("kind", kind), ("route", route)]).recordNanoseconds(nanoseconds)
        }
    }
}
