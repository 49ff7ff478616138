import Foundation
import Histogram
import NIOCore
import NIOPosix

/// `proxy` (issue 17): a reverse proxy (lhttpd's `proxy.backend`, or nginx's `proxy_pass`) in front of the
/// bench's backend (`lhttp-bench backend`, the same one for both in a run), measured in two phases:
///
/// 1. **small**: `connections` keep-alive HTTP/1.1 clients, each `GET /small` (100 bytes) and waiting for the
///    answer before the next (no pipelining), for `warmUpSeconds` unmeasured then `seconds` measured:
///    requests/s and request→response latency p50/p99 (HdrHistogram, µs).
/// 2. **large**: `largeClients` clients each download `GET /large?n=largeBytes` `largeRounds` times, one
///    after another: MB/s (10^6 bytes) over the phase.
///
/// Every response is checked: status 200, the exact length, every byte against the backend's pattern
/// (``ProxyBody``). With `serverPID` (and `backendPID`) the CPU those processes used in each phase is reported.
public struct ProxyScenario: Sendable {
    public var target: BenchTarget
    public var connections: Int
    public var seconds: Int
    public var warmUpSeconds: Int
    public var largeClients: Int
    public var largeBytes: Int
    public var largeRounds: Int
    public var serverPID: Int32?
    public var backendPID: Int32?
    public var timeout: TimeAmount

    public init(
        target: BenchTarget, connections: Int = 64, seconds: Int = 10, warmUpSeconds: Int = 1,
        largeClients: Int = 4, largeBytes: Int = 256 << 20, largeRounds: Int = 3,
        serverPID: Int32? = nil, backendPID: Int32? = nil, timeout: TimeAmount = .seconds(120)
    ) {
        self.target = target
        self.connections = connections
        self.seconds = seconds
        self.warmUpSeconds = warmUpSeconds
        self.largeClients = largeClients
        self.largeBytes = largeBytes
        self.largeRounds = largeRounds
        self.serverPID = serverPID
        self.backendPID = backendPID
        self.timeout = timeout
    }

    public func run(on eventLoop: any EventLoop) async throws -> BenchResult {
        let scenario = self
        let tracker = try await eventLoop.submit { NIOLoopBound(ProxyTracker(scenario: scenario, eventLoop: eventLoop), eventLoop: eventLoop) }.get()
        var connections = ScenarioConnections(eventLoop: eventLoop, target: self.target)
        defer { connections.closeAll() }
        var small: [NIOLoopBound<HTTPLoadConnection>] = []
        for _ in 0..<self.connections { small.append(try await connections.http()) }
        let smallBound = small
        try await eventLoop.flatSubmit { tracker.value.runSmall(smallBound.map(\.value)) }.get()
        var large: [NIOLoopBound<HTTPLoadConnection>] = []
        for _ in 0..<self.largeClients { large.append(try await connections.http()) }
        let largeBound = large
        try await eventLoop.flatSubmit { tracker.value.runLarge(largeBound.map(\.value)) }.get()
        return try await eventLoop.submit { tracker.value.result() }.get()
    }
}

/// Bookkeeping of `proxy`; confined to the bench's event loop.
final class ProxyTracker {
    private enum Phase { case idle, warmUp, measuring, draining, large }

    /// CPU used by the load generator, the server and the backend between two instants.
    private struct CPUSample {
        var wall = BenchClock.nanos()
        var load = BenchClock.processCPUNanos()
        var server: UInt64?
        var backend: UInt64?

        init(server: Int32?, backend: Int32?) {
            self.server = server.flatMap(ProcessCPU.nanosWithChildren(pid:))
            self.backend = backend.flatMap(ProcessCPU.nanosWithChildren(pid:))
        }
    }

    private let scenario: ProxyScenario
    private let eventLoop: any EventLoop
    private static let reference = ProxyBody.pattern(count: ProxyBody.period)
    private var phase = Phase.idle
    private var promise: EventLoopPromise<Void>?
    private var timedOut = false
    private var errors = 0
    private var corrupted = 0
    private var inFlight = 0

    private var histogram = Histogram<UInt64>(highestTrackableValue: 120_000_000)  // µs
    private var measured = 0
    private var smallStart: CPUSample?
    private var smallEnd: CPUSample?

    private var largeStart: CPUSample?
    private var largeEnd: CPUSample?
    private var largeBytesReceived = 0
    private var downloadsLeft = 0

    init(scenario: ProxyScenario, eventLoop: any EventLoop) {
        self.scenario = scenario
        self.eventLoop = eventLoop
    }

    private func sample() -> CPUSample { CPUSample(server: self.scenario.serverPID, backend: self.scenario.backendPID) }

    private func begin() -> EventLoopFuture<Void> {
        let promise = self.eventLoop.makePromise(of: Void.self)
        self.promise = promise
        self.eventLoop.assumeIsolated().scheduleTask(in: self.scenario.timeout) { [weak self] in
            guard let self, self.promise != nil else { return }
            self.timedOut = true
            self.finish()
        }
        return promise.futureResult
    }

    private func finish() {
        let promise = self.promise
        self.promise = nil
        self.phase = .idle
        promise?.succeed(())
    }

    /// Checks `body` as bytes `offset...` of a body whose byte `i` is `expected(i)`'s: false when one differs.
    private static func matches(_ body: ByteBuffer, at offset: Int, small: Bool) -> Bool {
        body.withUnsafeReadableBytes { raw in
            guard let base = raw.baseAddress else { return true }
            if small {
                guard offset + raw.count <= ProxyBody.small.count else { return false }
                return ProxyBody.small.withUnsafeBytes { memcmp(base, $0.baseAddress! + offset, raw.count) == 0 }
            }
            return Self.reference.withUnsafeBytes { reference in
                var done = 0
                while done < raw.count {
                    let at = (offset + done) % ProxyBody.period
                    let length = min(raw.count - done, ProxyBody.period - at)
                    if memcmp(base + done, reference.baseAddress! + at, length) != 0 { return false }
                    done += length
                }
                return true
            }
        }
    }

    // MARK: small responses

    func runSmall(_ workers: [HTTPLoadConnection]) -> EventLoopFuture<Void> {
        let future = self.begin()
        self.phase = .warmUp
        let loop = self.eventLoop.assumeIsolated()
        loop.scheduleTask(in: .seconds(Int64(self.scenario.warmUpSeconds))) { [weak self] in
            guard let self, self.phase == .warmUp else { return }
            self.phase = .measuring
            self.smallStart = self.sample()
            loop.scheduleTask(in: .seconds(Int64(self.scenario.seconds))) { [weak self] in
                guard let self, self.phase == .measuring else { return }
                self.smallEnd = self.sample()
                self.phase = .draining
                if self.inFlight == 0 { self.finish() }
            }
        }
        for worker in workers {
            var sentNanos: UInt64 = 0
            var received = 0
            var bad = false
            worker.onBody = { body in
                if !Self.matches(body, at: received, small: true) { bad = true }
                received += body.readableBytes
            }
            worker.onResponse = { [weak self, weak worker] status in
                guard let self, let worker else { return }
                self.inFlight -= 1
                if status != 200 {
                    self.errors += 1
                } else if bad || received != ProxyBody.small.count {
                    self.corrupted += 1
                }
                if self.phase == .measuring {
                    let now = BenchClock.nanos()
                    _ = self.histogram.record((now - sentNanos) / 1000)
                    self.measured += 1
                }
                switch self.phase {
                case .warmUp, .measuring:
                    received = 0
                    bad = false
                    sentNanos = BenchClock.nanos()
                    self.inFlight += 1
                    worker.get(target: "/small")
                case .draining:
                    if self.inFlight == 0 { self.finish() }
                case .idle, .large:
                    break
                }
            }
            worker.onClose = { [weak self] in
                guard let self, self.promise != nil else { return }
                self.errors += 1
            }
            sentNanos = BenchClock.nanos()
            self.inFlight += 1
            worker.get(target: "/small")
        }
        return future
    }

    // MARK: large responses

    func runLarge(_ clients: [HTTPLoadConnection]) -> EventLoopFuture<Void> {
        guard !clients.isEmpty else { return self.eventLoop.makeSucceededVoidFuture() }  // --large-clients 0: small only
        let future = self.begin()
        self.phase = .large
        self.downloadsLeft = clients.count * self.scenario.largeRounds
        self.largeStart = self.sample()
        let target = "/large?n=\(self.scenario.largeBytes)"
        for client in clients {
            var received = 0
            var bad = false
            var rounds = self.scenario.largeRounds
            client.onBody = { [weak self] body in
                if !bad, !Self.matches(body, at: received, small: false) { bad = true }
                received += body.readableBytes
                self?.largeBytesReceived += body.readableBytes
            }
            client.onResponse = { [weak self, weak client] status in
                guard let self, let client else { return }
                if status != 200 {
                    self.errors += 1
                } else if bad || received != self.scenario.largeBytes {
                    self.corrupted += 1
                }
                self.downloadsLeft -= 1
                rounds -= 1
                received = 0
                bad = false
                if self.downloadsLeft == 0 {
                    self.largeEnd = self.sample()
                    self.finish()
                } else if rounds > 0 {
                    client.get(target: target)
                }
            }
            client.onClose = { [weak self] in
                guard let self, self.promise != nil else { return }
                self.errors += 1
            }
            client.get(target: target)
        }
        return future
    }

    func result() -> BenchResult {
        var metrics: [String: Double] = [:]
        func seconds(_ start: CPUSample, _ end: CPUSample) -> Double { Double(max(end.wall &- start.wall, 1)) / 1e9 }
        func pct(_ a: UInt64?, _ b: UInt64?, _ elapsed: Double) -> Double? {
            guard let a, let b else { return nil }
            return 100 * Double(b &- a) / 1e9 / elapsed
        }
        if let start = self.smallStart, let end = self.smallEnd {
            let elapsed = seconds(start, end)
            metrics["requests"] = Double(self.measured)
            metrics["requests_per_s"] = Double(self.measured) / elapsed
            metrics["p50_ms"] = Double(self.histogram.valueAtPercentile(50)) / 1000
            metrics["p99_ms"] = Double(self.histogram.valueAtPercentile(99)) / 1000
            metrics["max_ms"] = Double(self.histogram.max) / 1000
            metrics["load_cpu_pct"] = pct(start.load, end.load, elapsed)
            metrics["server_cpu_pct"] = pct(start.server, end.server, elapsed)
            metrics["backend_cpu_pct"] = pct(start.backend, end.backend, elapsed)
            if let a = start.server, let b = end.server, self.measured > 0 {
                metrics["server_cpu_us_per_request"] = Double(b &- a) / 1000 / Double(self.measured)
            }
        }
        if let start = self.largeStart, let end = self.largeEnd {
            let elapsed = seconds(start, end)
            metrics["large_s"] = elapsed
            metrics["mb_per_s"] = Double(self.largeBytesReceived) / 1e6 / elapsed
            metrics["large_load_cpu_pct"] = pct(start.load, end.load, elapsed)
            metrics["large_server_cpu_pct"] = pct(start.server, end.server, elapsed)
            metrics["large_backend_cpu_pct"] = pct(start.backend, end.backend, elapsed)
            if let a = start.server, let b = end.server, self.largeBytesReceived > 0 {
                metrics["server_cpu_ms_per_gb"] = Double(b &- a) / 1e6 / (Double(self.largeBytesReceived) / 1e9)
            }
        }
        return BenchResult(
            scenario: "proxy",
            dialect: self.scenario.target.dialect,
            parameters: [
                "connections": self.scenario.connections, "seconds": self.scenario.seconds,
                "small_bytes": ProxyBody.small.count, "large_clients": self.scenario.largeClients,
                "large_bytes": self.scenario.largeBytes, "large_rounds": self.scenario.largeRounds,
            ],
            metrics: metrics,
            // Downloads that never ended.
            lost: self.downloadsLeft,
            corrupted: self.corrupted,
            errors: self.errors + (self.measured == 0 ? 1 : 0),
            completed: !self.timedOut,
            note: self.timedOut ? "timed out after \(self.scenario.timeout)" : nil
        )
    }
}
