import Histogram
import NIOCore
import NIOPosix

/// `fanout`: S subscribers on one channel, one HTTP publisher posting M messages with at most `window`
/// messages not yet delivered to every subscriber. Measures deliveries/s and publish→receive latency,
/// and checks every delivery byte for byte (lost, duplicate, corrupted).
public struct FanoutScenario: Sendable {
    public var target: BenchTarget
    public var subscribers: Int
    public var messages: Int
    public var window: Int
    public var payloadBytes: Int
    public var timeout: TimeAmount
    public var channel = "bench-fanout"
    /// Cluster mode: subscribers spread round-robin over these ports (the publisher stays on the
    /// target's port). Empty: everything on the target.
    public var subscriberPorts: [Int] = []

    public init(target: BenchTarget, subscribers: Int, messages: Int, window: Int, payloadBytes: Int = 64, timeout: TimeAmount = .seconds(120)) {
        self.target = target
        self.subscribers = subscribers
        self.messages = messages
        self.window = window
        self.payloadBytes = payloadBytes
        self.timeout = timeout
    }

    public func run(on eventLoop: any EventLoop) async throws -> BenchResult {
        let scenario = self
        let (tracker, sink) = try await ScenarioConnections.bind(on: eventLoop) { FanoutTracker(scenario: scenario, eventLoop: eventLoop) }
        var connections = ScenarioConnections(eventLoop: eventLoop, target: self.target)
        defer { connections.closeAll() }
        try await connections.subscribers(self.subscribers, channel: { _ in scenario.channel }, ports: self.subscriberPorts, sink: sink)
        let publisher = try await connections.http()
        // Warm-up until every subscriber is known to be subscribed, then the measured run.
        try await eventLoop.flatSubmit { tracker.value.warmUp(with: publisher.value) }.get()
        try await eventLoop.flatSubmit { tracker.value.measure() }.get()
        return try await eventLoop.submit { tracker.value.result() }.get()
    }
}

/// The fan-out bookkeeping; confined to the bench's event loop.
final class FanoutTracker: BenchSink {
    private let scenario: FanoutScenario
    private let eventLoop: any EventLoop
    private let prefix: [UInt8]
    private var publisher: HTTPLoadConnection?

    private let gate: WarmUpGate

    private let received: DeliveryBitmap
    private let remaining: Countdown
    private var published = 0
    private var completed = 0
    private var deliveries = 0
    private var duplicates = 0
    private var corrupted = 0
    private var errors = 0
    private var histogram = Histogram<UInt64>(highestTrackableValue: 120_000_000)  // µs
    private var startNanos: UInt64 = 0
    private var endNanos: UInt64 = 0
    private var done: EventLoopPromise<Void>?
    private var timedOut = false

    init(scenario: FanoutScenario, eventLoop: any EventLoop) {
        self.scenario = scenario
        self.eventLoop = eventLoop
        self.prefix = scenario.target.dialect.deliveredPrefix(channel: scenario.channel)
        self.gate = WarmUpGate(eventLoop: eventLoop, subscribers: scenario.subscribers)
        self.received = DeliveryBitmap(rows: scenario.subscribers, bits: scenario.messages)
        self.remaining = Countdown(count: scenario.messages, start: scenario.subscribers)
    }

    func warmUp(with publisher: HTTPLoadConnection) -> EventLoopFuture<Void> {
        self.publisher = publisher
        publisher.onResponse = { [weak self] status in
            guard let self else { return }
            if !(200..<300).contains(status) { self.errors += 1 }
            if self.startNanos > 0 { self.pump() }
        }
        publisher.onClose = { [weak self] in
            guard let self else { return }
            self.errors += 1
            self.done?.fail(BenchError.connectionClosed("publisher"))
            self.gate.fail(BenchError.connectionClosed("publisher"))
        }
        return self.gate.open(
            publisher: publisher,
            target: self.scenario.target.dialect.publishTarget(channel: self.scenario.channel),
            payloadBytes: self.scenario.payloadBytes
        )
    }

    func measure() -> EventLoopFuture<Void> {
        let promise = self.eventLoop.makePromise(of: Void.self)
        self.done = promise
        self.startNanos = BenchClock.nanos()
        self.eventLoop.assumeIsolated().scheduleTask(in: self.scenario.timeout) { [weak self] in
            guard let self else { return }
            guard let done = self.done else { return }
            self.timedOut = true
            self.endNanos = BenchClock.nanos()
            self.done = nil
            done.succeed(())
        }
        self.pump()
        return promise.futureResult
    }

    /// Publishes while fewer than `window` messages are undelivered.
    private func pump() {
        guard let publisher = self.publisher, self.done != nil else { return }
        let target = self.scenario.target.dialect.publishTarget(channel: self.scenario.channel)
        var wrote = false
        while self.published < self.scenario.messages, self.published - self.completed < self.scenario.window {
            let body = BenchPayload.make(seq: self.published, sentNanos: BenchClock.nanos(), size: self.scenario.payloadBytes)
            publisher.write(target: target, body: body)
            self.published += 1
            wrote = true
        }
        if wrote { publisher.flush() }
    }

    func received(_ payload: UnsafeRawBufferPointer, from index: Int) {
        switch BenchPayload.check(payload, prefix: self.prefix) {
        case .warmup:
            self.gate.saw(index)
        case .corrupt:
            self.corrupted += 1
        case .message(let seq, let sentNanos):
            guard seq < self.scenario.messages, self.startNanos > 0 else {
                self.corrupted += 1
                return
            }
            guard self.received.insert(row: index, bit: seq) else {
                self.duplicates += 1
                return
            }
            self.deliveries += 1
            let now = BenchClock.nanos()
            _ = self.histogram.record(now > sentNanos ? (now - sentNanos) / 1000 : 0)
            if self.remaining.tick(seq) {
                self.completed += 1
                if self.completed == self.scenario.messages {
                    self.endNanos = now
                    let done = self.done
                    self.done = nil
                    done?.succeed(())
                } else {
                    self.pump()
                }
            }
        }
    }

    func closed(_ index: Int) {
        if self.startNanos > 0, self.done != nil { self.errors += 1 }
    }

    func result() -> BenchResult {
        let elapsed = Double(max(self.endNanos - self.startNanos, 1)) / 1e9
        let expected = self.published * self.scenario.subscribers
        var parameters = [
            "subscribers": self.scenario.subscribers, "messages": self.scenario.messages,
            "window": self.scenario.window, "payload_bytes": self.scenario.payloadBytes,
        ]
        if !self.scenario.subscriberPorts.isEmpty { parameters["nodes"] = self.scenario.subscriberPorts.count }
        return BenchResult(
            scenario: self.scenario.subscriberPorts.isEmpty ? "fanout" : "fanout-cluster",
            dialect: self.scenario.target.dialect,
            parameters: parameters,
            metrics: [
                "deliveries_per_s": Double(self.deliveries) / elapsed,
                "elapsed_s": elapsed,
                "deliveries": Double(self.deliveries),
                "p50_ms": Double(self.histogram.valueAtPercentile(50)) / 1000,
                "p99_ms": Double(self.histogram.valueAtPercentile(99)) / 1000,
                "max_ms": Double(self.histogram.max) / 1000,
            ],
            lost: expected - self.deliveries + (self.scenario.messages - self.published) * self.scenario.subscribers,
            duplicates: self.duplicates,
            corrupted: self.corrupted,
            errors: self.errors,
            completed: !self.timedOut,
            note: self.timedOut ? "timed out after \(self.scenario.timeout)" : nil
        )
    }
}
