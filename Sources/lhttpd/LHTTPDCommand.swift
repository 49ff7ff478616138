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
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
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
        defer { upstream.client.shutdown() }
        let limits = LHTTPLimits(configuration.limits)
        let webhooks = Webhooks.make(configuration, limits: limits, logger: logger)
        defer { webhooks.client?.shutdown() }
        // Clustered when `cluster.nats` lists a server; the NATS link comes up in the background.
        let hub = Hub()
        let cluster: NATSBroker?
        do {
            cluster = configuration.cluster.isEnabled
                ? try NATSBroker(hub: hub, configuration: configuration.cluster, eventLoop: group.next(), logger: logger)
                : nil
        } catch {
            printError("lhttpd: invalid configuration:\n\(error)")
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
            hub: hub,
            broker: { hub -> any Broker in
                if let cluster { return cluster }
                return LocalBroker(hub: hub)
            },
            logger: logger
        )
        let server = GatewayServer(configuration: configuration, gateway: gateway, eventLoopGroup: group, logger: logger)
        let services = ServiceGroup(
            configuration: .init(
                services: [.init(service: server)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        do {
            try await services.run()
        } catch {
            await cluster?.shutdown()
            throw error
        }
        await cluster?.shutdown()
    }
}

/// Writes to standard error unbuffered, so the message is not lost if the process is killed.
private func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
