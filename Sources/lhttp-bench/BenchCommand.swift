import ArgumentParser
import Foundation
import LHTTPBench
import NIOCore
import NIOPosix

/// `lhttp-bench`: load scenarios against lhttpd, nginx+Nchan or nats-server. Argument parsing and wiring only.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lhttp-bench",
        abstract: "Benchmark lhttpd (LHTTP), nginx+Nchan or nats-server (websocket): every scenario prints one JSON line (stdout) and a summary (stderr).",
        subcommands: [Fanout.self, PublishRate.self, IdleConnections.self, Seed.self, Upstream.self, Webhook.self, Soak.self, Churn.self, Proxy.self, Backend.self, Report.self]
    )
}

struct Target: ParsableArguments {
    @Option(help: "Server host (loopback).") var host = "127.0.0.1"
    @Option(help: "Server port.") var port = 8081
    @Option(help: "lhttp, nchan or nats (nats: fanout --publisher websocket only).") var dialect: BenchDialect = .lhttp
    @Option(help: "Give up after this many seconds.") var timeout = 120
    @Option(name: .customLong("label"), help: "KEY=VALUE recorded in the result's labels (repeat it), e.g. pinned=false.")
    var labels: [String] = []

    var server: BenchTarget { BenchTarget(host: self.host, port: self.port, dialect: self.dialect) }
    var limit: TimeAmount { .seconds(Int64(self.timeout)) }

    var labelPairs: [String: String] {
        var pairs: [String: String] = [:]
        for label in self.labels {
            let parts = label.split(separator: "=", maxSplits: 1)
            pairs[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        return pairs
    }

    func validate() throws {
        for label in self.labels where !label.contains("=") || label.hasPrefix("=") {
            throw ValidationError("--label takes KEY=VALUE, got \(label)")
        }
    }

    /// For every scenario that publishes over HTTP (all but `fanout --publisher websocket`).
    func requireHTTPPublish() throws {
        guard self.dialect.publishesOverHTTP else {
            throw ValidationError("\(self.dialect.rawValue) takes no HTTP publish: only `fanout --publisher websocket` runs against it")
        }
    }
}

extension BenchDialect: ExpressibleByArgument {}

/// Runs a scenario on a one-thread event loop, prints its JSON line (with the `--label`s) and summary;
/// exit 2 when not ok.
func report(_ target: Target, _ run: @Sendable (any EventLoop) async throws -> BenchResult) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let outcome: Result<BenchResult, any Error>
    do {
        outcome = .success(try await run(group.next()))
    } catch {
        outcome = .failure(error)
    }
    try? await group.shutdownGracefully()
    var result = try outcome.get()
    if !target.labels.isEmpty { result.labels = (result.labels ?? [:]).merging(target.labelPairs) { $1 } }
    FileHandle.standardOutput.write(Data((result.jsonLine + "\n").utf8))
    printError(result.summary)
    if !result.ok { throw ExitCode(2) }
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// How `fanout` publishes, on the command line.
enum PublisherKind: String, ExpressibleByArgument, CaseIterable {
    case http
    case websocket
}

struct Fanout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "S subscribers on one channel, M messages from HTTP publishers (one pipelining, or N independent) or one websocket publisher."
    )
    @OptionGroup var target: Target
    @Option var subscribers = 100
    @Option var messages = 10_000
    @Option(help: "Most messages published but not yet delivered to every subscriber (publishers wait while it is full).")
    var window = 64
    @Option var payloadBytes = 64
    @Option(help: "http: POST over keep-alive HTTP; websocket: one websocket connection sending publish messages (the only one nats takes).")
    var publisher: PublisherKind = .http
    @Option(help: "HTTP publishers, each on its own connection with one POST in flight. Not given or 0: one connection pipelining its POSTs (the mode before issue 14).")
    var publishers: Int?
    @Option(name: .customLong("subscriber-port"), help: "Cluster mode (repeat it): spread subscribers over these ports; the publisher stays on --port.")
    var subscriberPorts: [Int] = []
    @Option(help: "The channel (bench/run.sh gives lhttpd history on hist-* for the history rows).")
    var channel = "bench-fanout"

    var mode: FanoutPublisher {
        switch self.publisher {
        case .websocket: return .websocket
        case .http: return (self.publishers ?? 0) == 0 ? .pipelined : .http(self.publishers ?? 0)
        }
    }

    func validate() throws {
        if let publishers {
            guard publishers >= 0 else { throw ValidationError("--publishers must be 0 or more") }
            if self.publisher == .websocket { throw ValidationError("--publishers counts HTTP publishers: the websocket publisher is one connection") }
            if self.target.dialect == .nats { throw ValidationError("nats has no HTTP publish, so no --publishers: use --publisher websocket") }
        }
        if self.publisher == .http, self.target.dialect == .nats {
            throw ValidationError("nats has no HTTP publish: use --publisher websocket")
        }
    }

    func run() async throws {
        var scenario = FanoutScenario(
            target: target.server, subscribers: subscribers, messages: messages, window: window,
            payloadBytes: payloadBytes, timeout: target.limit
        )
        scenario.subscriberPorts = subscriberPorts
        scenario.publisher = mode
        scenario.channel = channel
        let configured = scenario
        try await report(target) { try await configured.run(on: $0) }
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

    func validate() throws { try target.requireHTTPPublish() }

    func run() async throws {
        let scenario = PublishRateScenario(
            target: target.server, workers: workers, requests: requests, subscribers: subscribers,
            payloadBytes: payloadBytes, timeout: target.limit
        )
        try await report(target) { try await scenario.run(on: $0) }
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

    func validate() throws { try target.requireHTTPPublish() }

    func run() async throws {
        let scenario = IdleConnectionsScenario(target: target.server, connections: connections, serverPID: serverPid)
        try await report(target) { try await scenario.run(on: $0) }
    }
}

struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "One websocket publisher, one subscriber, M messages (the original's claim).")
    @OptionGroup var target: Target
    @Option var messages = 10_000
    @Option var payloadBytes = 64

    func validate() throws { try target.requireHTTPPublish() }

    func run() async throws {
        let scenario = SeedScenario(target: target.server, messages: messages, payloadBytes: payloadBytes, timeout: target.limit)
        try await report(target) { try await scenario.run(on: $0) }
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

    func validate() throws { try target.requireHTTPPublish() }

    func run() async throws {
        let scenario = UpstreamScenario(
            target: target.server, backendPort: backendPort, messages: messages, inFlight: inFlight,
            payloadBytes: payloadBytes, timeout: target.limit
        )
        try await report(target) { try await scenario.run(on: $0) }
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

    func validate() throws { try target.requireHTTPPublish() }

    func run() async throws {
        let scenario = WebhookScenario(
            target: target.server, backendPort: backendPort, messages: messages, inFlight: inFlight,
            payloadBytes: payloadBytes, timeout: target.limit
        )
        try await report(target) { try await scenario.run(on: $0) }
    }
}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the side-by-side table from JSON-lines result files; with --chart, draw the fan-out rows as a PNG (gnuplot)."
    )
    @Argument(help: "Files of JSON lines written by the scenarios.") var files: [String]
    @Option(help: "Write a bar chart of the fan-out deliveries/s to this PNG (needs gnuplot: Debian's gnuplot-nox).")
    var chart: String?
    @Option(help: "The chart's title (default: the first file's name).") var chartTitle: String?

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
        guard let chart else { return }
        let title = chartTitle ?? "fan-out deliveries/s, same machine, same run (\(URL(fileURLWithPath: files.first ?? "").lastPathComponent))"
        guard let script = BenchChart.gnuplotScript(results, output: chart, title: title) else {
            printError("no fan-out rows: no chart")
            return
        }
        try Self.gnuplot(script)
    }

    /// Pipes `script` into gnuplot (found on PATH).
    static func gnuplot(_ script: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gnuplot"]
        let input = Pipe()
        process.standardInput = input
        try process.run()
        input.fileHandleForWriting.write(Data(script.utf8))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidationError("gnuplot failed (exit \(process.terminationStatus)); is it installed? (apt-get install gnuplot-nox)")
        }
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

    func validate() throws { try target.requireHTTPPublish() }

    func run() async throws {
        let scenario = SoakScenario(
            target: target.server, connections: connections, channels: channels, seconds: seconds,
            rate: rate, churn: churn, stalled: stalled, serverPID: serverPid
        )
        try await report(target) { try await scenario.run(on: $0) }
    }
}

struct Churn: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Connect/disconnect churn: workers each connect, subscribe to a room, make a round trip and close cleanly, over and over; watchers in the rooms check the join/leave events (lhttpd only)."
    )
    @OptionGroup var target: Target
    @Option(help: "Independent clients, each with one connection at a time.") var workers = 50
    @Option(help: "Connections opened in all; the run ends at this count or after --seconds, whichever comes first.") var connects = 20_000
    @Option(help: "Longest churn, in seconds.") var seconds = 20
    @Option(help: "Rooms (room-0 ... room-N-1); worker k subscribes to room-(k mod N).") var rooms = 10
    @Option(help: "Long-lived anonymous connections in the rooms (watcher j in room-(j mod N)) counting join/leave events.") var watchers = 10
    @Option(help: "lhttpd's auth.jwt.hmac_secret: each worker connects with an HS256 token for its own user u<k> (none: anonymous, no join/leave).")
    var jwtSecret: String?
    @Option(help: "PID of the server process: its memory before and after.") var serverPid: Int32?

    func validate() throws {
        guard target.dialect == .lhttp else { throw ValidationError("churn speaks LHTTP (subscribe, presence): --dialect lhttp only") }
        guard workers >= 1, connects >= 1, seconds >= 1, rooms >= 1, watchers >= 0 else {
            throw ValidationError("--workers, --connects, --seconds and --rooms must be at least 1, --watchers 0 or more")
        }
    }

    func run() async throws {
        let scenario = ChurnScenario(
            target: target.server, workers: workers, connects: connects, seconds: seconds, rooms: rooms, watchers: watchers,
            jwtSecret: jwtSecret, serverPID: serverPid, timeout: target.limit
        )
        try await report(target) { try await scenario.run(on: $0) }
    }
}

struct Proxy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A reverse proxy in front of `lhttp-bench backend`: keep-alive clients GET /small one after another (requests/s, p50/p99), then a few download /large (MB/s)."
    )
    @OptionGroup var target: Target
    @Option(help: "Keep-alive clients of the small phase, each with one GET in flight.") var connections = 64
    @Option(help: "Measured length of the small phase.") var seconds = 10
    @Option(help: "Unmeasured seconds before it.") var warmUpSeconds = 1
    @Option(help: "Clients of the large phase.") var largeClients = 4
    @Option(help: "Bytes of each large body.") var largeBytes = 256 << 20
    @Option(help: "Downloads per large client, one after another.") var largeRounds = 3
    @Option(help: "PID of the proxy (its children too: nginx's worker): its CPU in each phase.") var serverPid: Int32?
    @Option(help: "PID of the backend: its CPU in each phase.") var backendPid: Int32?

    func validate() throws {
        guard target.dialect != .nats else { throw ValidationError("proxy compares lhttpd with nginx (--dialect lhttp or nchan, for the nginx of bench/run.sh)") }
        guard connections >= 1, seconds >= 1, warmUpSeconds >= 0, largeClients >= 0, largeBytes >= 0, largeRounds >= 1 else {
            throw ValidationError("--connections, --seconds and --large-rounds must be at least 1, the others 0 or more")
        }
    }

    func run() async throws {
        let scenario = ProxyScenario(
            target: target.server, connections: connections, seconds: seconds, warmUpSeconds: warmUpSeconds,
            largeClients: largeClients, largeBytes: largeBytes, largeRounds: largeRounds,
            serverPID: serverPid, backendPID: backendPid, timeout: target.limit
        )
        try await report(target) { try await scenario.run(on: $0) }
    }
}

struct Backend: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The proxy scenario's backend: HTTP/1.1 keep-alive, GET /small (100 bytes) and GET /large?n=BYTES (streamed with backpressure). Runs until killed."
    )
    @Option(help: "Port on 127.0.0.1.") var port = 9000
    @Option(help: "Event loops.") var threads = 1

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(threads, 1))
        let channel = try await ProxyBackend.start(group: group, port: port)
        printError("lhttp-bench backend listening on 127.0.0.1:\(port) (\(max(threads, 1)) loop(s))")
        try await channel.closeFuture.get()
    }
}
