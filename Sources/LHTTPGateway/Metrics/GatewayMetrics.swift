import CoreMetrics

/// Where a publication entered the node (the `source` label of `lhttp_publications_total`).
public enum PublicationSource: String, Sendable, CaseIterable {
    case websocket, http, webhook, cluster
}

/// The metrics of the core: messages, publications, deliveries, error replies, closes and the connection
/// gauges (`docs/metrics.md`). The server, the backends and the cluster link record their own.
public final class GatewayMetrics: Sendable {
    public let labelled: LabelledMetrics
    /// Complete websocket messages received.
    public let messagesReceived: Counter
    /// Messages written to connections (one per connection per publication; local to this node).
    public let deliveries: Counter
    private let publications: [PublicationSource: Counter]
    private let connections: Gauge
    private let channels: Gauge
    private let subscriptions: Gauge

    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.labelled = LabelledMetrics(factory: factory)
        self.messagesReceived = Counter(label: "lhttp_messages_received_total", factory: factory)
        self.deliveries = Counter(label: "lhttp_deliveries_total", factory: factory)
        var publications: [PublicationSource: Counter] = [:]
        for source in PublicationSource.allCases {
            publications[source] = Counter(label: "lhttp_publications_total", dimensions: [("source", source.rawValue)], factory: factory)
        }
        self.publications = publications
        self.connections = Gauge(label: "lhttp_connections", factory: factory)
        self.channels = Gauge(label: "lhttp_channels", factory: factory)
        self.subscriptions = Gauge(label: "lhttp_subscriptions", factory: factory)
    }

    /// A publication entered through `source` and reached `deliveries` local connections.
    public func published(from source: PublicationSource, deliveries: Int) {
        self.publications[source]?.increment()
        if deliveries > 0 { self.deliveries.increment(by: deliveries) }
    }

    /// An `LHTTP/1.0 error` reply with `status` was sent.
    public func errorReply(status: Int) {
        self.labelled.counter("lhttp_error_replies_total", family: 0, value: status) { [("status", String(status))] }.increment()
    }

    /// The server closed a websocket with `code` (1001 shutdown, 4008 slow consumer, 4009 idle, 1002, ...).
    public func closed(code: CloseCode) {
        self.labelled.counter("lhttp_closes_total", family: 1, value: Int(code.rawValue)) { [("code", String(code.rawValue))] }.increment()
    }

    /// Sets the connection gauges (read when `/metrics` is scraped).
    public func recordGauges(connections: Int, stats: HubStats) {
        self.connections.record(connections)
        self.channels.record(stats.channels)
        self.subscriptions.record(stats.subscriptions)
    }
}
