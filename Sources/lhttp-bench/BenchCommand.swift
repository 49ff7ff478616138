import ArgumentParser
import LHTTPBench
import NIOCore
import NIOPosix

/// `lhttp-bench`: load scenarios against lhttpd or nginx+Nchan. Argument parsing and wiring only.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lhttp-bench",
        abstract: "Benchmark lhttpd (LHTTP) or nginx+Nchan: every scenario prints one JSON line and a summary.",
        subcommands: [Fanout.self]
    )
}

struct Target: ParsableArguments {
    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server port.") var port = 8081
    @Option(help: "lhttp or nchan.") var dialect: BenchDialect = .lhttp
}

extension BenchDialect: ExpressibleByArgument {}

/// Runs a scenario on a one-thread event loop, prints its JSON line (stdout) and summary (stderr).
func report(_ run: @Sendable (any EventLoop) async throws -> BenchResult) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let outcome: Result<BenchResult, any Error>
    do {
        outcome = .success(try await run(group.next()))
    } catch {
        outcome = .failure(error)
    }
    try? await group.shutdownGracefully()
    let result = try outcome.get()
    print(result.jsonLine)
    printError(result.summary)
    if !result.ok { throw ExitCode(2) }
}

func printError(_ text: String) {
    FileHandleOutput.standardError(text + "\n")
}

struct Fanout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "S subscribers on one channel, one HTTP publisher, M messages.")
    @OptionGroup var target: Target
    @Option var subscribers = 100
    @Option var messages = 10_000
    @Option(help: "Most messages published but not yet delivered to every subscriber.") var window = 64
    @Option var payloadBytes = 64
    @Option(help: "Give up after this many seconds.") var timeout = 120

    func run() async throws {
        let scenario = FanoutScenario(
            host: target.host, port: target.port, dialect: target.dialect, subscribers: subscribers,
            messages: messages, window: window, payloadBytes: payloadBytes, timeout: .seconds(Int64(timeout))
        )
        try await report { try await scenario.run(on: $0) }
    }
}
