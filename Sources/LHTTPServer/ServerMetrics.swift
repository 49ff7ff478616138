import CoreMetrics
import LHTTPGateway

/// The metrics of the HTTP side of the port (`docs/metrics.md`): requests by route and status, refused
/// upgrades, slow-loris cuts.
public final class ServerMetrics: Sendable {
    private let labelled: LabelledMetrics

    public init(factory: any MetricsFactory) {
        self.labelled = LabelledMetrics(factory: factory)
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
        self.labelled.counter("lhttp_http_requests_total", family: route.rawValue, value: status) {
            [("route", route.label), ("status", String(status))]
        }.increment()
    }

    /// A websocket upgrade was refused with `status` (403 origin, 503 connection cap, 401/403/502/504 hook).
    public func upgradeRefused(status: Int) {
        self.labelled.counter("lhttp_upgrades_refused_total", family: 0, value: status) { [("status", String(status))] }.increment()
    }

    /// A websocket was reset (TCP RST) because its closing handshake did not end within
    /// `websocket.close_timeout_s` (a client that stopped reading, typically a slow consumer).
    public func websocketReset() {
        self.labelled.counter("lhttp_websocket_resets_total").increment()
    }

    /// An HTTP connection was cut by `http.request_timeout_s`.
    public func httpRequestTimedOut() {
        self.labelled.counter("lhttp_http_request_timeouts_total").increment()
    }

    /// A proxied request was answered with `status` (the backend's, or lhttpd's own 413, 502, 503, 504).
    func proxyResponse(route: ProxyRoutes.Route, status: Int) {
        self.labelled.counter("lhttp_proxy_responses_total", family: 1000 + route.index, value: status) {
            [("route", route.label), ("status", String(status))]
        }.increment()
    }

    /// A proxied response was cut after its head went out (the backend failed or went quiet mid-body).
    func proxyAborted(route: ProxyRoutes.Route) {
        self.labelled.counter("lhttp_proxy_aborted_total", [("route", route.label)]).increment()
    }

    /// A websocket upgrade was tunnelled to the backend (`proxy.websocket`).
    func proxyTunnel(route: ProxyRoutes.Route) {
        self.labelled.counter("lhttp_proxy_tunnels_total", [("route", route.label)]).increment()
    }
}
