import ArgumentParser
import Foundation
import LHTTPApp
import LHTTPConfig
import LHTTPServer
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
        let plan: ApplicationPlan
        do {
            var configuration = try ConfigLoader.load(path: self.config)
            if let listen = self.listen {
                configuration.listen = try ListenAddress(parsing: listen)
            }
            if let threads = self.threads { configuration.threads = threads }
            // Every check start-up runs (libcurl's parse of upstream.allow, the cluster URLs), so
            // --check-config cannot approve a config that start-up refuses.
            plan = try ApplicationPlan(configuration)
        } catch {
            printError("lhttpd: invalid configuration:\n\(error)")
            throw ExitCode(1)
        }
        if self.checkConfig {
            print("\(self.config): configuration OK")
            return
        }
        let configuration = plan.configuration
        let level = Logger.Level(rawValue: configuration.log.level.rawValue) ?? .info
        let format = configuration.log.format
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = TextLogHandler(label: label)
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
        let application = Application(plan: plan, eventLoopGroup: group, logger: logger)
        // Services stop in reverse order: the second-signal guard arms first, then the server drains,
        // then the curl clients finish their calls, then the cluster link closes.
        let services = ServiceGroup(
            configuration: .init(
                services: (application.services + [CertificateReloadService(server: application.server, logger: logger), SecondSignalExit(logger: logger)])
                    .map { .init(service: $0) },
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
        logger.info("lhttpd stopped")
        try? await group.shutdownGracefully()
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
