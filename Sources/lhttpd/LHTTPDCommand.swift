import ArgumentParser
import Foundation
import LHTTPConfig
import LHTTPGateway
import LHTTPNATS
import LHTTPProtocol
import LHTTPServer
import LHTTPUpstream
import Logging
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle

/// `lhttpd`: the websocket gateway. Wiring and argument parsing only.
@main
struct LHTTPDCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lhttpd",
        abstract: "LHTTP websocket gateway: channels, fan-out and HTTP publish for apps in any language."
    )

    @Option(name: .long, help: "Path of the YAML configuration.")
    var config: String = "config/lhttpd.yaml"

    @Option(name: .long, help: "Override the listen address (HOST:PORT).")
    var listen: String?

    @Option(name: .long, help: "Override the number of event-loop threads (0 = one per core).")
    var threads: Int?

    @Flag(name: .long, help: "Load and validate the configuration, print the result, and exit (0 valid, 1 invalid).")
    var checkConfig = false

    func run() async throws {
        var configuration: GatewayConfig
        do {
            configuration = try ConfigLoader.load(path: self.config)
            if let listen = self.listen {
                configuration.listen = try ListenAddress(parsing: listen)
            }
            if let threads = self.threads {
                configuration.threads = threads
                if let problem = configuration.validate().first(where: { $0.keyPath == "threads" }) {
                    throw ConfigError(problem)
                }
            }
        } catch {
            printError("lhttpd: invalid configuration:\n\(error)")
            throw ExitCode(1)
        }
        if self.checkConfig {
            print("\(self.config): configuration OK")
            return
        }

        let level = Logger.Level(rawValue: configuration.log.level.rawValue) ?? .info
        let format = configuration.log.format
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
        let logger = Logger(label: "lhttpd")
        let group = MultiThreadedEventLoopGroup(
            numberOfThreads: configuration.threads > 0 ? configuration.threads : System.coreCount
        )
        let upstream: (filter: UpstreamFilter, client: CurlHTTPClient)
        do {
            upstream = try UpstreamFilter.make(configuration.upstream, logger: logger)
        } catch {
            printError("lhttpd: invalid configuration:\nupstream.allow: \(error)")
            throw ExitCode(1)
        }
        let limits = LHTTPLimits(configuration.limits)
        // Metrics: one Prometheus registry, served on metrics.path.
        let registry = PrometheusCollectorRegistry()
        let metrics = LHTTPMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let webhooks = Webhooks.make(configuration, limits: limits, metrics: metrics, logger: logger)
        // Both clients stop on every way out from here (their threads would keep them otherwise).
        func stopClients() async {
            await upstream.client.shutdown()
            await webhooks.client?.shutdown()
        }
        // Clustered when `cluster.nats` lists a server; the NATS link comes up in the background.
        let hub = Hub()
        let cluster: NATSBroker?
        do {
            cluster = configuration.cluster.isEnabled
                ? try NATSBroker(hub: hub, configuration: configuration.cluster, eventLoop: group.next(), metrics: metrics, logger: logger)
                : nil
        } catch {
            printError("lhttpd: invalid configuration:\n\(error)")
            await stopClients()
            throw ExitCode(1)
        }
        cluster?.start()
        let gateway = Gateway(
            limits: limits,
            filters: webhooks.filters,
            filtersAfterPubSub: [upstream.filter],
            router: webhooks.router,
            connectHook: webhooks.connectHook,
            maxQueuedWhileRouting: configuration.webhook.maxQueuedPerConnection,
            caps: SubscriptionCaps(configuration.limits),
            hub: hub,
            broker: { hub -> any Broker in
                if let cluster { return cluster }
                return LocalBroker(hub: hub)
            },
            metrics: metrics,
            logger: logger
        )
        let server = GatewayServer(configuration: configuration, gateway: gateway, eventLoopGroup: group, metricsRegistry: registry, logger: logger)
        // Services stop in reverse order: the second-signal guard arms first, then the server drains.
        let services = ServiceGroup(
            configuration: .init(
                services: [.init(service: server), .init(service: SecondSignalExit(logger: logger))],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        var failure: (any Error)?
        do {
            try await services.run()
        } catch {
            failure = error
        }
        // The websockets are closed (1001); webhook and upstream calls in flight, disconnect hooks
        // included, get what is left of shutdown_timeout_s.
        // The budget counts from the signal (not from start-up: a node that ran longer than
        // shutdown_timeout_s had none left and failed every disconnect hook still queued).
        let deadline = server.shutdownDeadline ?? .now
        for client in [upstream.client, webhooks.client].compactMap({ $0 })
        where !(await client.waitUntilIdle(until: deadline, clock: ContinuousClock())) {
            logger.warning("calls still in flight after shutdown_timeout_s", metadata: ["lhttp.pending": "\(client.pendingCount)"])
        }
        await cluster?.shutdown()
        await stopClients()
        logger.info("lhttpd stopped")
        if let failure { throw failure }
    }
}

/// After the first SIGTERM/SIGINT has started a graceful stop, a second one exits at once (an operator
/// who presses Ctrl-C twice means it).
struct SecondSignalExit: Service {
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        for signalNumber in [SIGTERM, SIGINT] {
            #if canImport(Darwin)
            // kqueue delivers to the source only when the signal is ignored; on Linux, Dispatch installs
            // its own handler and SIG_IGN would swallow the signal.
            signal(signalNumber, SIG_IGN)
            #endif
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                FileHandle.standardError.write(Data("lhttpd: second signal, exiting now\n".utf8))
                _exit(1)
            }
            source.resume()
            Self.sources.append(source)
        }
    }

    /// Kept alive until the process exits. Written only here, once, by this one task.
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []
}

/// Writes to standard error unbuffered, so the message is not lost if the process is killed.
private func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
