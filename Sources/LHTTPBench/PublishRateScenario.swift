import NIOCore
import NIOPosix

/// `publish-rps`: `workers` keep-alive connections each POSTing one publish after another (no pipelining)
/// until `requests` were answered, with `subscribers` listening; every delivery is checked.
public struct PublishRateScenario: Sendable {
    public var target: BenchTarget
    public var workers: Int
    public var requests: Int
    public var subscribers: Int
    public var payloadBytes: Int
    public var timeout: TimeAmount
    public var channel = "bench-rps"

    public init(target: BenchTarget, workers: Int, requests: Int, subscribers: Int, payloadBytes: Int = 64, timeout: TimeAmount = .seconds(120)) {
        self.target = target
        self.workers = workers
        self.requests = requests
        self.subscribers = subscribers
        self.payloadBytes = payloadBytes
        self.timeout = timeout
    }

    public func run(on eventLoop: any EventLoop) async throws -> BenchResult {
        try self.target.requireHTTPPublish("publish-rps")
        let scenario = self
        let (tracker, sink) = try await ScenarioConnections.bind(on: eventLoop) { PublishRateTracker(scenario: scenario, eventLoop: eventLoop) }
        var connections = ScenarioConnections(eventLoop: eventLoop, target: self.target)
        defer { connections.closeAll() }
        try await connections.subscribers(self.subscribers, channel: { _ in scenario.channel }, sink: sink)
        var workers: [NIOLoopBound<HTTPLoadConnection>] = []
        for _ in 0..<self.workers { workers.append(try await connections.http()) }
        let bound = workers
        try await eventLoop.flatSubmit { tracker.value.run(workers: bound.map(\.value)) }.get()
        return try await eventLoop.submit { tracker.value.result() }.get()
    }
}

/// Bookkeeping of `publish-rps`; confined to the bench's event loop.
final class PublishRateTracker: BenchSink {
    private let scenario: PublishRateScenario
    private let eventLoop: any EventLoop
    private let prefix: [UInt8]
    private let gate: WarmUpGate
    private var sent = 0
    private var answered = 0
    private var errors = 0
    private let received: DeliveryBitmap
    private var deliveries = 0
    private var duplicates = 0
    private var corrupted = 0
    private var startNanos: UInt64 = 0
    private var answeredNanos: UInt64 = 0
    private var done: EventLoopPromise<Void>?
    private var timedOut = false

    init(scenario: PublishRateScenario, eventLoop: any EventLoop) {
        self.scenario = scenario
        self.eventLoop = eventLoop
        self.prefix = scenario.target.dialect.deliveredPrefix(channel: scenario.channel)
        self.gate = WarmUpGate(eventLoop: eventLoop, subscribers: scenario.subscribers)
        self.received = DeliveryBitmap(rows: scenario.subscribers, bits: scenario.requests)
    }

    func run(workers: [HTTPLoadConnection]) -> EventLoopFuture<Void> {
        let promise = self.eventLoop.makePromise(of: Void.self)
        self.done = promise
        self.eventLoop.assumeIsolated().scheduleTask(in: self.scenario.timeout) { [weak self] in
            guard let self else { return }
            guard self.done != nil else { return }
            self.timedOut = true
            self.finish()
        }
        // Every subscriber must be in place before the first publish.
        let target = self.scenario.target.dialect.publishTarget(channel: self.scenario.channel)
        let warmUp = self.gate.open(publisher: workers[0], target: target, payloadBytes: self.scenario.payloadBytes)
        warmUp.whenFailure { error in promise.fail(error) }
        warmUp.assumeIsolated().whenSuccess { [weak self] in
            guard let self else { return }
            self.startNanos = BenchClock.nanos()
            // Warm-up requests still unanswered on the first worker: their answers are not measured ones.
            var warmUpLeft = workers[0].inFlight
            for worker in workers {
                let isFirst = worker === workers[0]
                worker.onResponse = { [weak self, weak worker] status in
                    guard let self, let worker else { return }
                    if isFirst, warmUpLeft > 0 {
                        warmUpLeft -= 1
                        return
                    }
                    if !(200..<300).contains(status) { self.errors += 1 }
                    self.answered += 1
                    if self.answered == self.scenario.requests {
                        self.answeredNanos = BenchClock.nanos()
                        self.checkDone()
                    }
                    self.sendNext(on: worker)
                }
                worker.onClose = { [weak self] in
                    guard let self else { return }
                    if self.done != nil { self.errors += 1 }
                }
                self.sendNext(on: worker)
            }
        }
        return promise.futureResult
    }

    private func sendNext(on worker: HTTPLoadConnection) {
        guard self.sent < self.scenario.requests else { return }
        let body = BenchPayload.make(seq: self.sent, sentNanos: BenchClock.nanos(), size: self.scenario.payloadBytes)
        worker.write(target: self.scenario.target.dialect.publishTarget(channel: self.scenario.channel), body: body)
        worker.flush()
        self.sent += 1
    }

    private func checkDone() {
        if self.answered == self.scenario.requests, self.deliveries == self.scenario.requests * self.scenario.subscribers {
            self.finish()
        }
    }

    private func finish() {
        let done = self.done
        self.done = nil
        if self.answeredNanos == 0 { self.answeredNanos = BenchClock.nanos() }
        done?.succeed(())
    }

    func received(_ payload: UnsafeRawBufferPointer, from index: Int) {
        let parsed = BenchPayload.check(payload, prefix: self.prefix)
        if parsed == .warmup {
            self.gate.saw(index)
            return
        }
        guard case .message(let seq, _) = parsed, seq < self.scenario.requests else {
            self.corrupted += 1
            return
        }
        guard self.received.insert(row: index, bit: seq) else {
            self.duplicates += 1
            return
        }
        self.deliveries += 1
        self.checkDone()
    }

    func closed(_ index: Int) {
        if self.done != nil { self.errors += 1 }
    }

    func result() -> BenchResult {
        let elapsed = Double(max(self.answeredNanos - self.startNanos, 1)) / 1e9
        return BenchResult(
            scenario: "publish-rps",
            dialect: self.scenario.target.dialect,
            parameters: [
                "workers": self.scenario.workers, "requests": self.scenario.requests,
                "subscribers": self.scenario.subscribers, "payload_bytes": self.scenario.payloadBytes,
            ],
            metrics: [
                "requests_per_s": Double(self.answered) / elapsed,
                "elapsed_s": elapsed,
                "deliveries": Double(self.deliveries),
            ],
            lost: self.answered * self.scenario.subscribers - self.deliveries,
            duplicates: self.duplicates,
            corrupted: self.corrupted,
            errors: self.errors + (self.scenario.requests - self.answered),
            completed: !self.timedOut,
            note: self.timedOut ? "timed out after \(self.scenario.timeout)" : nil
        )
    }
}
