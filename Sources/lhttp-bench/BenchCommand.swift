import ArgumentParser
import Foundation
import LHTTPBench
import NIOCore
import NIOPosix

/// `lhttp-bench`: load scenarios against lhttpd or nginx+Nchan. Argument parsing and wiring only.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lhttp-bench",
        abstract: "Benchmark lhttpd (LHTTP) or nginx+Nchan: every scenario prints one JSON line (stdout) and a summary (stderr).",
        subcommands: [Fanout.self, PublishRate.self, IdleConnections.self, Seed.self, Upstream.self, Webhook.self, Soak.self, Report.self]
    )
}

struct Target: ParsableArguments {
    @Option(help: "Server host (loopback).") var host = "127.0.0.1"
    @Option(help: "Server port.") var port = 8081
    @Option(help: "lhttp or nchan.") var dialect: BenchDialect = .lhttp
    @Option(help: "Give up after this many seconds.") var timeout = 120

    var server: BenchTarget { BenchTarget(host: self.host, port: self.port, dialect: self.dialect) }
    var limit: TimeAmount { .seconds(Int64(self.timeout)) }
}

extension BenchDialect: ExpressibleByArgument {}

/// Runs a scenario on a one-thread event loop, prints its JSON line and summary; exit 2 when not ok.
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
    FileHandle.standardOutput.write(Data((result.jsonLine + "\n").utf8))
    printError(result.summary)
    if !result.ok { throw ExitCode(2) }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

struct Fanout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "S subscribers on one channel, one HTTP publisher, M messages.")
    @OptionGroup var target: Target
    @Option var subscribers = 100
    @Option var messages = 10_000
    @Option(help: "Most messages published but not yet delivered to every subscriber.") var window = 64
    @Option var payloadBytes = 64
    @Option(name: .customLong("subscriber-port"), help: "Cluster mode (repeat it): spread subscribers over these ports; the publisher stays on --port.")
    var subscriberPorts: [Int] = []

    func run() async throws {
        var scenario = FanoutScenario(
            target: target.server, subscribers: subscribers, messages: messages, window: window,
            payloadBytes: payloadBytes, timeout: target.limit
        )
        scenario.subscriberPorts = subscriberPorts
        let configured = scenario
        try await report { try await configured.run(on: $0) }
    }
}

struct PublishRate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish-rps",
        abstract: "Keep-alive POST /publish rate from concurrent workers, every delivery checked."
    )
    @OptionGroup var target: Target
    @Option var workers = 32
    @Option var requests = 100_000
    @Option var subscribers = 0
    @Option var payloadBytes = 64

    func run() async throws {
        let scenario = PublishRateScenario(
            target: target.server, workers: workers, requests: requests, subscribers: subscribers,
            payloadBytes: payloadBytes, timeout: target.limit
        )
        try await report { try await scenario.run(on: $0) }
    }
}

struct IdleConnections: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idle-conns",
        abstract: "N idle websocket connections, one channel each; server RSS per connection."
    )
    @OptionGroup var target: Target
    @Option var connections = 5_000
    @Option(help: "PID of the server process (its children are counted too).") var serverPid: Int32

    func run() async throws {
        let scenario = IdleConnectionsScenario(target: target.server, connections: connections, serverPID: serverPid)
        try await report { try await scenario.run(on: $0) }
    }
}

struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "One websocket publisher, one subscriber, M messages (the original's claim).")
    @OptionGroup var target: Target
    @Option var messages = 10_000
    @Option var payloadBytes = 64

    func run() async throws {
        let scenario = SeedScenario(target: target.server, messages: messages, payloadBytes: payloadBytes, timeout: target.limit)
        try await report { try await scenario.run(on: $0) }
    }
}

struct Upstream: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Messages forwarded by the upstream header to a local backend, against calling it directly with libcurl (lhttpd only)."
    )
    @OptionGroup var target: Target
    @Option(help: "Port the bench's backend listens on (lhttpd's upstream.allow must cover it).") var backendPort: Int
    @Option var messages = 20_000
    @Option(help: "Messages sent but not yet at the backend.") var inFlight = 8
    @Option var payloadBytes = 64

    func run() async throws {
        let scenario = UpstreamScenario(
            target: target.server, backendPort: backendPort, messages: messages, inFlight: inFlight,
            payloadBytes: payloadBytes, timeout: target.limit
        )
        try await report { try await scenario.run(on: $0) }
    }
}

struct Webhook: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Round trips of a routed command (lhttpd's routes.hook must point at the bench's backend), against calling it directly (lhttpd only)."
    )
    @OptionGroup var target: Target
    @Option(help: "Port the bench's backend listens on.") var backendPort: Int
    @Option var messages = 20_000
    @Option(help: "Messages awaiting their reply.") var inFlight = 8
    @Option var payloadBytes = 64

    func run() async throws {
        let scenario = WebhookScenario(
            target: target.server, backendPort: backendPort, messages: messages, inFlight: inFlight,
            payloadBytes: payloadBytes, timeout: target.limit
        )
        try await report { try await scenario.run(on: $0) }
    }
}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the side-by-side table from JSON-lines result files.")
    @Argument(help: "Files of JSON lines written by the scenarios.") var files: [String]

    func run() throws {
        let decoder = JSONDecoder()
        var results: [BenchResult] = []
        for file in files {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            for line in text.split(separator: "\n") where line.hasPrefix("{") {
                results.append(try decoder.decode(BenchResult.self, from: Data(line.utf8)))
            }
        }
        print(BenchReport.table(results))
    }
}

struct Soak: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Many connections for a bounded time: steady publishing, churn, stalled readers; memory and losses."
    )
    @OptionGroup var target: Target
    @Option var connections = 10_000
    @Option var channels = 100
    @Option(help: "Length of the steady phase.") var seconds = 30
    @Option(help: "Publications per second.") var rate = 500
    @Option(help: "Connections closed and reopened per second.") var churn = 20
    @Option(help: "Readers that subscribe to a busy channel and stop reading.") var stalled = 10
    @Option(help: "PID of the server process.") var serverPid: Int32

    func run() async throws {
        let scenario = SoakScenario(
            target: target.server, connections: connections, channels: channels, seconds: seconds,
            rate: rate, churn: churn, stalled: stalled, serverPID: serverPid
        )
        try await report { try await scenario.run(on: $0) }
    }
}
