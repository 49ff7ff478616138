import CoreMetrics

/// The cluster link's gauges (`lhttp_nats_*` in `docs/metrics.md`), set when `/metrics` is scraped.
final class NATSGauges: Sendable {
    private let connected: Gauge
    private let pendingBytes: Gauge
    private let dropped: Gauge
    private let reconnects: Gauge
    private let channels: Gauge

    init(factory: any MetricsFactory) {
        self.connected = Gauge(label: "lhttp_nats_connected", factory: factory)
        self.pendingBytes = Gauge(label: "lhttp_nats_pending_bytes", factory: factory)
        self.dropped = Gauge(label: "lhttp_nats_dropped_messages", factory: factory)
        self.reconnects = Gauge(label: "lhttp_nats_reconnects", factory: factory)
        self.channels = Gauge(label: "lhttp_nats_channels", factory: factory)
    }

    func record(_ status: NATSClient.Status, channels: Int) {
        self.connected.record(status.state == .connected ? 1 : 0)
        self.pendingBytes.record(status.pendingBytes)
        self.dropped.record(status.droppedMessages)
        self.reconnects.record(max(0, status.connections - 1))
        self.channels.record(channels)
    }
}
