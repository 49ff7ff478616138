import CoreMetrics
import NIOConcurrencyHelpers

/// Every metric lhttpd records, named once (the list is `docs/metrics.md`).
///
/// Built on swift-metrics with an explicit factory, so each server (and each test) can have its own
/// registry; the executable passes swift-prometheus's factory and serves its registry on `/metrics`.
/// Hot-path counters are made once; labelled ones are cached per label value (label values come from
/// small closed sets: statuses, close codes, route names from the config).
public final class LHTTPMetrics: Sendable {
    private let factory: any MetricsFactory
    /// Complete websocket messages received.
    public let messagesReceived: Counter
    /// Messages written to connections (one per connection per publication; local to this node).
    public let deliveries: Counter
    /// Publications by where they entered: `websocket`, `http`, `webhook`, `cluster`.
    private let publications: [String: Counter]
    /// Counters labelled by a status or a close code, looked up by an integer key: `/publish` answers
    /// and error replies are frequent, and a key string per event would be an allocation each.
    private let byStatus = NIOLockedValueBox<[Int: Counter]>([:])
    private let labelled = NIOLockedValueBox<[String: Counter]>([:])
    private let timers = NIOLockedValueBox<[String: Timer]>([:])
    private let gauges: [String: Gauge]

    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        self.messagesReceived = Counter(label: "lhttp_messages_received_total", factory: factory)
        self.deliveries = Counter(label: "lhttp_deliveries_total", factory: factory)
        var publications: [String: Counter] = [:]
        for source in ["websocket", "http", "webhook", "cluster"] {
            publications[source] = Counter(label: "lhttp_publications_total", dimensions: [("source", source)], factory: factory)
        }
        self.publications = publications
        var gauges: [String: Gauge] = [:]
        for name in Self.gaugeNames {
            gauges[name] = Gauge(label: name, factory: factory)
        }
        self.gauges = gauges
    }

    static let gaugeNames = [
        "lhttp_connections", "lhttp_channels", "lhttp_subscriptions",
        "lhttp_nats_connected", "lhttp_nats_pending_bytes", "lhttp_nats_dropped_messages", "lhttp_nats_reconnects",
        "lhttp_nats_channels",
    ]

    /// A publication entered through `source` (`websocket`, `http`, `webhook`, `cluster`) and reached
    /// `deliveries` local connections.
    public func published(from source: String, deliveries: Int) {
        self.publications[source]?.increment()
        if deliveries > 0 { self.deliveries.increment(by: deliveries) }
    }

    /// An `LHTTP/1.0 error` reply with `status` was sent.
    public func errorReply(status: Int) {
        self.counter(family: 0, status) { [("status", String(status))] }.increment()
    }

    /// Routes of `lhttp_http_requests_total`.
    public enum HTTPRoute: Int, Sendable {
        case publish = 1, healthz, metrics, staticFile, upgrade, other

        var label: String {
            switch self {
            case .publish: return "publish"
            case .healthz: return "healthz"
            case .metrics: return "metrics"
            case .staticFile: return "static"
            case .upgrade: return "upgrade"
            case .other: return "other"
            }
        }
    }

    /// A plain HTTP request was answered.
    public func httpRequest(route: HTTPRoute, status: Int) {
        self.counter(family: route.rawValue, status) { [("route", route.label), ("status", String(status))] }.increment()
    }

    /// The server closed a websocket with `code` (1001 shutdown, 4008 slow consumer, 4009 idle, 1009, ...).
    public func closed(code: UInt16) {
        self.counter(family: 10, Int(code)) { [("code", String(code))] }.increment()
    }

    /// A websocket upgrade was refused with `status` (403 origin, 503 connection cap, 401/403/502/504 hook).
    public func upgradeRefused(status: Int) {
        self.counter(family: 11, status) { [("status", String(status))] }.increment()
    }

    /// An HTTP connection was cut by `http.request_timeout_s`.
    public func httpRequestTimedOut() {
        self.counter("lhttp_http_request_timeouts_total", []).increment()
    }

    /// A backend call finished. `kind`: `upstream` or `webhook`; `route`: the route's command, the hook's
    /// event, or `upstream`; `result`: `ok`, or the error status it became (`403`, `502`, `503`, `504`, ...).
    public func backendCall(kind: String, route: String, result: String, seconds: Double?) {
        self.counter("lhttp_backend_calls_total", [("kind", kind), ("route", route), ("result", result)]).increment()
        if let seconds {
            self.timer("lhttp_backend_call_duration_seconds", [("kind", kind), ("route", route)]).recordNanoseconds(Int64(seconds * 1e9))
        }
    }

    /// Sets the gauges read at scrape time.
    public func recordGauges(connections: Int, channels: Int, subscriptions: Int, cluster: BrokerHealth?) {
        self.gauges["lhttp_connections"]?.record(connections)
        self.gauges["lhttp_channels"]?.record(channels)
        self.gauges["lhttp_subscriptions"]?.record(subscriptions)
        guard let cluster else { return }
        self.gauges["lhttp_nats_connected"]?.record(cluster.isConnected ? 1 : 0)
        self.gauges["lhttp_nats_pending_bytes"]?.record(cluster.pendingBytes)
        self.gauges["lhttp_nats_dropped_messages"]?.record(cluster.droppedMessages)
        self.gauges["lhttp_nats_reconnects"]?.record(max(0, cluster.connections - 1))
        self.gauges["lhttp_nats_channels"]?.record(cluster.channels)
    }

    /// Families keyed by integers: 0 error replies, 1...6 HTTP requests by route, 10 closes, 11 refused upgrades.
    private static func familyName(_ family: Int) -> String {
        switch family {
        case 0: return "lhttp_error_replies_total"
        case 10: return "lhttp_closes_total"
        case 11: return "lhttp_upgrades_refused_total"
        default: return "lhttp_http_requests_total"
        }
    }

    /// The counter of `family` for `value` (a status or a close code, below 65536); `dimensions` is only
    /// evaluated the first time.
    private func counter(family: Int, _ value: Int, dimensions: () -> [(String, String)]) -> Counter {
        let key = family << 16 | (value & 0xFFFF)
        return self.byStatus.withLockedValue { cache in
            if let counter = cache[key] { return counter }
            let counter = Counter(label: Self.familyName(family), dimensions: dimensions(), factory: self.factory)
            cache[key] = counter
            return counter
        }
    }

    private func counter(_ name: String, _ dimensions: [(String, String)]) -> Counter {
        let key = name + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        return self.labelled.withLockedValue { cache in
            if let counter = cache[key] { return counter }
            let counter = Counter(label: name, dimensions: dimensions, factory: self.factory)
            cache[key] = counter
            return counter
        }
    }

    private func timer(_ name: String, _ dimensions: [(String, String)]) -> Timer {
        let key = name + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        return self.timers.withLockedValue { cache in
            if let timer = cache[key] { return timer }
            let timer = Timer(label: name, dimensions: dimensions, factory: self.factory)
            cache[key] = timer
            return timer
        }
    }
}
