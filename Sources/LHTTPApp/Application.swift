import Foundation
import LHTTPConfig
import LHTTPGateway
import LHTTPNATS
import LHTTPServer
import LHTTPUpstream
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle

/// The composition root: builds one lhttpd node — metrics, the libcurl clients, the NATS broker, the
/// gateway core and the server — from a checked configuration, and hands them out as ServiceLifecycle
/// services. The `lhttpd` executable and the tests use this one wiring.
///
/// Services start together and stop in reverse order (swift-service-lifecycle waits for each before the
/// next): the server drains its websockets first (1001; their disconnect hooks are queued), then the
/// webhook and upstream clients finish what is in flight, then the cluster link writes what it holds.
/// All of it within one ``StopBudget`` of `shutdown_timeout_s`, counted from the signal.
public final class Application: Sendable {
    public let plan: ApplicationPlan
    public let gateway: Gateway
    public let server: GatewayServer
    /// The client of the `upstream` header.
    public let upstreamClient: CurlHTTPClient
    /// The client of the webhooks, when any is configured.
    public let webhookClient: CurlHTTPClient?
    /// The reverse proxy's client, when `proxy:` is on.
    public let proxyClient: CurlProxyClient?
    /// The NATS broker when `cluster.nats` lists a server.
    public let cluster: NATSBroker?
    /// What `/metrics` prints; every module records into it.
    public let registry: PrometheusCollectorRegistry
    public let budget: StopBudget
    /// The one-node history (nil: no channel keeps any).
    public let history: ChannelHistory?
    /// Who is on the channels with presence (nil: none keeps it).
    public let presence: Presence?
    private let clock: any Clock<Duration>
    private let logger: Logger

    /// Builds the node (threads of the curl clients start; nothing listens until the server runs).
    /// - Parameters:
    ///   - eventLoopGroup: the loops of every connection; owned by the caller.
    ///   - processors: Swift app logic by command (none in `lhttpd` itself; tests use them).
    ///   - clock: what the graceful stop's timeouts are measured on.
    public init(
        plan: ApplicationPlan,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger,
        processors: [String: any LHTTPProcessor] = [:],
        clock: any Clock<Duration> = ContinuousClock()
    ) {
        let configuration = plan.configuration
        self.plan = plan
        self.logger = logger
        self.registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: self.registry)
        let gatewayMetrics = GatewayMetrics(factory: factory)
        let backendMetrics = BackendMetrics(factory: factory)
        self.budget = StopBudget(timeout: .milliseconds(Int64(configuration.shutdownTimeoutS * 1000)), clock: clock)

        self.upstreamClient = CurlHTTPClient(configuration: CurlHTTPClient.Configuration(configuration.upstream), logger: logger)
        let upstream = UpstreamForwarder(client: self.upstreamClient, policy: plan.upstreamPolicy, metrics: backendMetrics, logger: logger)
        let webhooks = Webhooks.make(configuration, limits: plan.limits, metrics: backendMetrics, logger: logger)
        self.webhookClient = webhooks.client
        self.proxyClient = configuration.proxy.isEnabled
            ? CurlProxyClient(
                configuration: CurlProxyClient.Configuration(
                    maxInFlight: configuration.proxy.maxInFlight, maxIdleConnections: min(configuration.proxy.maxInFlight, 1024)
                ),
                logger: logger
            )
            : nil

        let hub = Hub()
        // One node, or `cluster.history: memory`: this node's own store. In a cluster with JetStream the
        // history is the stream's, never a node's own.
        let ownHistory = plan.clusterServers.isEmpty || configuration.cluster.history == .memory
        self.history = ownHistory ? ChannelHistory.make(configuration, limits: plan.limits) : nil
        let memoryHistory = self.history
        self.cluster = plan.clusterServers.isEmpty
            ? nil
            : NATSBroker(
                hub: hub, configuration: configuration.cluster, servers: plan.clusterServers, limits: plan.limits, eventLoop: eventLoopGroup.next(),
                metrics: gatewayMetrics,
                history: NATSBroker.HistorySettings(
                    policies: HistoryPolicies(configuration), history: configuration.history, idempotencyWindowS: configuration.publish.idempotencyWindowS,
                    memory: memoryHistory
                ),
                logger: logger
            )
        let cluster = self.cluster
        self.clock = clock
        let access = ChannelAccess(configuration)
        self.presence = access.hasPresence
            ? Presence(
                access: access, hub: hub, eventLoop: eventLoopGroup.next(), node: cluster?.origin ?? "node",
                configuration: Presence.Configuration(
                    heartbeat: .milliseconds(Int64(configuration.cluster.presenceHeartbeatMs)),
                    nodeTimeout: .milliseconds(3 * Int64(configuration.cluster.presenceHeartbeatMs))
                ),
                observer: webhooks.presence,
                logger: logger
            ) : nil
        if let presence = self.presence { cluster?.share(presence) }
        let authentication = plan.tokenVerifier.map { verifier in
            Authentication(
                verifier: verifier, required: configuration.auth.required, refreshGraceS: configuration.auth.jwt.refreshGraceS,
                wallClock: { Date().timeIntervalSince1970 }
            )
        }
        self.gateway = Gateway(
            limits: plan.limits,
            session: SessionStateMachine.Configuration(configuration),
            maxChannels: configuration.limits.maxChannels,
            processors: processors,
            router: webhooks.router,
            upstream: upstream,
            connectHook: webhooks.connectHook,
            observers: webhooks.observers,
            hub: hub,
            broker: { hub -> any Broker in cluster ?? LocalBroker(hub: hub) },
            access: access,
            history: self.history,
            authentication: authentication,
            presence: self.presence,
            metrics: gatewayMetrics,
            logger: logger
        )
        self.server = GatewayServer(
            configuration: configuration,
            gateway: self.gateway,
            eventLoopGroup: eventLoopGroup,
            metrics: ServerMetrics(factory: factory),
            metricsRegistry: self.registry,
            budget: self.budget,
            proxyTransport: self.proxyClient,
            certificates: plan.certificates,
            logger: logger
        )
    }

    /// Checks `configuration` and builds the node.
    public convenience init(
        configuration: GatewayConfig,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger,
        processors: [String: any LHTTPProcessor] = [:],
        clock: any Clock<Duration> = ContinuousClock()
    ) throws(ConfigError) {
        self.init(plan: try ApplicationPlan(configuration), eventLoopGroup: eventLoopGroup, logger: logger, processors: processors, clock: clock)
    }

    /// The node's services in start order; a graceful shutdown stops them in reverse.
    public var services: [any Service] {
        var services: [any Service] = []
        if let cluster = self.cluster { services.append(ClusterService(broker: cluster)) }
        services.append(CurlClientService(client: self.upstreamClient, budget: self.budget, logger: self.logger))
        if let webhookClient = self.webhookClient {
            services.append(CurlClientService(client: webhookClient, budget: self.budget, logger: self.logger))
        }
        if let proxyClient = self.proxyClient {
            services.append(ProxyClientService(client: proxyClient))
        }
        if let history = self.history {
            services.append(HistorySweepService(history: history, interval: .seconds(10), clock: self.clock))
        }
        services.append(self.server)
        return services
    }
}
