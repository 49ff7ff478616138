import Histogram
import NIOCore

/// One measured phase of the `upstream` and `webhook` scenarios: keeps `inFlight` sends outstanding until
/// `messages` came back (or arrived) intact, recording send→completion latency. Confined to the bench's loop.
final class PhaseMeter {
    struct Figures {
        var rate: Double
        var p50: Double
        var p99: Double
        var count: Int
    }

    private let eventLoop: any EventLoop
    private let messages: Int
    private let inFlight: Int
    private let timeout: TimeAmount
    private(set) var sent = 0
    private var completedCount = 0
    private var seen: DeliveryBitmap
    private(set) var duplicates = 0
    private(set) var corrupted = 0
    private(set) var timedOut = false
    private var histogram = Histogram<UInt64>(highestTrackableValue: 120_000_000)  // µs
    private var startNanos: UInt64 = 0
    private var promise: EventLoopPromise<Figures>?
    private var send: ((Int) -> Void)?

    init(eventLoop: any EventLoop, messages: Int, inFlight: Int, timeout: TimeAmount) {
        self.eventLoop = eventLoop
        self.messages = messages
        self.inFlight = max(inFlight, 1)
        self.timeout = timeout
        self.seen = DeliveryBitmap(rows: 1, bits: messages)
    }

    /// Whether a phase is running (completions outside one are ignored).
    var isRunning: Bool { self.promise != nil }

    /// Runs the phase: `send(seq)` sends message `seq`; report each completion with ``completed(_:)``.
    func run(send: @escaping (Int) -> Void) -> EventLoopFuture<Figures> {
        let promise = self.eventLoop.makePromise(of: Figures.self)
        self.promise = promise
        self.send = send
        self.startNanos = BenchClock.nanos()
        self.eventLoop.assumeIsolated().scheduleTask(in: self.timeout) { [weak self] in
            guard let self, self.promise != nil else { return }
            self.timedOut = true
            self.finish()
        }
        while self.sent < min(self.inFlight, self.messages) { self.sendNext() }
        return promise.futureResult
    }

    private func sendNext() {
        let seq = self.sent
        self.sent += 1
        self.send?(seq)
    }

    /// A message came back (or arrived); checks it, records its latency, and sends the next.
    func completed(_ parsed: BenchPayload.Parsed) {
        guard self.promise != nil else { return }
        guard case .message(let seq, let sentNanos) = parsed, seq < self.messages else {
            self.corrupted += 1
            return
        }
        guard self.seen.insert(row: 0, bit: seq) else {
            self.duplicates += 1
            return
        }
        let now = BenchClock.nanos()
        _ = self.histogram.record(now > sentNanos ? (now - sentNanos) / 1000 : 0)
        self.completedCount += 1
        if self.completedCount == self.messages {
            self.finish()
        } else if self.sent < self.messages {
            self.sendNext()
        }
    }

    private func finish() {
        guard let promise = self.promise else { return }
        let elapsed = Double(max(BenchClock.nanos() - self.startNanos, 1)) / 1e9
        self.promise = nil
        self.send = nil
        promise.succeed(Figures(
            rate: Double(self.completedCount) / elapsed,
            p50: Double(self.histogram.valueAtPercentile(50)) / 1000,
            p99: Double(self.histogram.valueAtPercentile(99)) / 1000,
            count: self.completedCount
        ))
    }
}

extension BenchResult {
    /// The result of a scenario measured through lhttpd and directly with libcurl.
    static func viaGatewayAndDirect(
        scenario: String,
        dialect: BenchDialect,
        parameters: [String: Int],
        messages: Int,
        gateway: PhaseMeter,
        gatewayFigures: PhaseMeter.Figures,
        direct: PhaseMeter,
        directFigures: PhaseMeter.Figures,
        errors: Int
    ) -> BenchResult {
        let timedOut = gateway.timedOut || direct.timedOut
        return BenchResult(
            scenario: scenario,
            dialect: dialect,
            parameters: parameters,
            metrics: [
                "messages_per_s": gatewayFigures.rate,
                "p50_ms": gatewayFigures.p50,
                "p99_ms": gatewayFigures.p99,
                "direct_messages_per_s": directFigures.rate,
                "direct_p50_ms": directFigures.p50,
                "direct_p99_ms": directFigures.p99,
                "added_p50_ms": gatewayFigures.p50 - directFigures.p50,
                "added_p99_ms": gatewayFigures.p99 - directFigures.p99,
            ],
            lost: 2 * messages - gatewayFigures.count - directFigures.count,
            duplicates: gateway.duplicates + direct.duplicates,
            corrupted: gateway.corrupted + direct.corrupted,
            errors: errors,
            completed: !timedOut,
            note: timedOut ? "timed out" : nil
        )
    }
}
