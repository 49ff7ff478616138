import Histogram
import NIOCore
import NIOPosix

/// How `fanout` publishes.
public enum FanoutPublisher: Sendable, Equatable {
    /// One keep-alive HTTP connection pipelining its POSTs (the only mode before issue 14; the default).
    case pipelined
    /// This many keep-alive HTTP connections, each with exactly one POST in flight: it waits for the answer
    /// before the next, like PHP workers or cron jobs.
    case http(Int)
    /// One websocket connection sending publish messages, as many in flight as the window allows.
    case websocket

    /// The `publisher` label of the results.
    public var label: String {
        switch self {
        case .pipelined: return "http-pipelined"
        case .http: return "http"
        case .websocket: return "websocket"
        }
    }

    /// The number of publishing connections (the `publishers` parameter of the results).
    public var connections: Int {
        switch self {
        case .pipelined, .websocket: return 1
        case .http(let count): return count
        }
    }
}

/// `fanout`: S subscribers on one channel, publishers (see ``FanoutPublisher``) posting M messages with at
/// most `window` messages not yet delivered to every subscriber (a publisher waits while the window is full).
/// Measures deliveries/s and publish→receive latency, and checks every delivery byte for byte (lost,
/// duplicate, corrupted).
public struct FanoutScenario: Sendable {
    public var target: BenchTarget
    public var subscribers: Int
    public var messages: Int
    public var window: Int
    public var payloadBytes: Int
    public var timeout: TimeAmount
    public var channel = "bench-fanout"
    public var publisher = FanoutPublisher.pipelined
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

    /// Why this configuration cannot run, if it cannot.
    public func validate() throws {
        switch self.publisher {
        case .pipelined, .http:
            guard self.target.dialect.publishesOverHTTP else {
                throw BenchError.unsupported("\(self.target.dialect.rawValue) has no HTTP publish: use --publisher websocket")
            }
            if case .http(let count) = self.publisher, count < 1 {
                throw BenchError.unsupported("--publishers must be at least 1 (0 is the pipelined publisher)")
            }
        case .websocket:
            break
        }
        guard self.window >= 1, self.messages >= 1 else { throw BenchError.unsupported("--window and --messages must be at least 1") }
    }

    public func run(on eventLoop: any EventLoop) async throws -> BenchResult {
        try self.validate()
        let scenario = self
        let (tracker, sink) = try await ScenarioConnections.bind(on: eventLoop) { FanoutTracker(scenario: scenario, eventLoop: eventLoop) }
        var connections = ScenarioConnections(eventLoop: eventLoop, target: self.target)
        defer { connections.closeAll() }
        try await connections.subscribers(self.subscribers, channel: { _ in scenario.channel }, ports: self.subscriberPorts, sink: sink)
        let publishers: FanoutTracker.Publishers
        switch self.publisher {
        case .pipelined:
            publishers = .http([try await connections.http()], pipelined: true)
        case .http(let count):
            var list: [NIOLoopBound<HTTPLoadConnection>] = []
            for _ in 0..<count { list.append(try await connections.http()) }
            publishers = .http(list, pipelined: false)
        case .websocket:
            // Its own inbound messages (Nchan answers each publish) are reported as connection S and ignored.
            let dialect = self.target.dialect
            let channel = try await connections.websocket(path: dialect.websocketPublishPath(channel: self.channel), index: self.subscribers, sink: sink)
            RawWebSocket.send(dialect.websocketPublisherHello(), opcode: dialect.websocketOpcode, on: channel)
            publishers = .websocket(channel)
        }
        // Warm-up until every subscriber is known to be subscribed, then the measured run.
        try await eventLoop.flatSubmit { tracker.value.warmUp(with: publishers) }.get()
        try await eventLoop.flatSubmit { tracker.value.measure() }.get()
        return try await eventLoop.submit { tracker.value.result() }.get()
    }
}

/// The fan-out bookkeeping; confined to the bench's event loop.
final class FanoutTracker: BenchSink {
    private let scenario: FanoutScenario
    private let eventLoop: any EventLoop
    private let prefix: [UInt8]

    /// The publishing connections, as handed over from the scenario.
    enum Publishers: Sendable {
        case http([NIOLoopBound<HTTPLoadConnection>], pipelined: Bool)
        case websocket(any Channel)
    }
    private var http: [HTTPLoadConnection] = []
    private var pipelined = false
    private var websocket: (any Channel)?
    /// Independent publishers: where the next free-publisher search starts (round robin).
    private var nextPublisher = 0

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
    private var startCPUNanos: UInt64 = 0
    private var endCPUNanos: UInt64 = 0
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

    func warmUp(with publishers: Publishers) -> EventLoopFuture<Void> {
        let dialect = self.scenario.target.dialect
        switch publishers {
        case .http(let connections, let pipelined):
            self.http = connections.map(\.value)
            self.pipelined = pipelined
            for publisher in self.http {
                publisher.onResponse = { [weak self] status in
                    guard let self else { return }
                    if !(200..<300).contains(status) { self.errors += 1 }
                    if self.startNanos > 0 { self.pump() }
                }
                publisher.onClose = { [weak self] in self?.publisherLost() }
            }
            return self.gate.open(
                publisher: self.http[0],
                target: dialect.publishTarget(channel: self.scenario.channel),
                payloadBytes: self.scenario.payloadBytes
            )
        case .websocket(let channel):
            self.websocket = channel
            let frame = BenchFrames.masked(
                opcode: dialect.websocketOpcode,
                payload: dialect.websocketPublishPayload(channel: self.scenario.channel, body: BenchPayload.warmup(size: self.scenario.payloadBytes))
            )
            return self.gate.open { channel.writeAndFlush(frame, promise: nil) }
        }
    }

    private func publisherLost() {
        self.errors += 1
        self.done?.fail(BenchError.connectionClosed("publisher"))
        self.done = nil
        self.gate.fail(BenchError.connectionClosed("publisher"))
    }

    func measure() -> EventLoopFuture<Void> {
        let promise = self.eventLoop.makePromise(of: Void.self)
        self.done = promise
        self.startCPUNanos = BenchClock.processCPUNanos()
        self.startNanos = BenchClock.nanos()
        self.eventLoop.assumeIsolated().scheduleTask(in: self.scenario.timeout) { [weak self] in
            guard let self else { return }
            guard let done = self.done else { return }
            self.timedOut = true
            self.endNanos = BenchClock.nanos()
            self.endCPUNanos = BenchClock.processCPUNanos()
            self.done = nil
            done.succeed(())
        }
        self.pump()
        return promise.futureResult
    }

    /// Publishes while fewer than `window` messages are undelivered (and, for independent HTTP publishers,
    /// while one of them has no request in flight).
    private func pump() {
        guard self.done != nil else { return }
        let dialect = self.scenario.target.dialect
        if let websocket = self.websocket {
            var buffer: ByteBuffer?
            while self.canPublish {
                let body = BenchPayload.make(seq: self.published, sentNanos: BenchClock.nanos(), size: self.scenario.payloadBytes)
                let payload = dialect.websocketPublishPayload(channel: self.scenario.channel, body: body)
                if buffer == nil { buffer = websocket.allocator.buffer(capacity: 256) }
                BenchFrames.masked(opcode: dialect.websocketOpcode, payload: payload, into: &buffer!)
                self.published += 1
            }
            if let buffer { websocket.writeAndFlush(buffer, promise: nil) }
            return
        }
        let target = dialect.publishTarget(channel: self.scenario.channel)
        if self.pipelined {
            let publisher = self.http[0]
            var wrote = false
            while self.canPublish {
                publisher.write(target: target, body: BenchPayload.make(seq: self.published, sentNanos: BenchClock.nanos(), size: self.scenario.payloadBytes))
                self.published += 1
                wrote = true
            }
            if wrote { publisher.flush() }
            return
        }
        let count = self.http.count
        let start = self.nextPublisher
        for step in 0..<count where self.canPublish {
            let publisher = self.http[(start + step) % count]
            guard publisher.inFlight == 0 else { continue }
            publisher.write(target: target, body: BenchPayload.make(seq: self.published, sentNanos: BenchClock.nanos(), size: self.scenario.payloadBytes))
            publisher.flush()
            self.published += 1
            self.nextPublisher = (start + step + 1) % count
        }
    }

    private var canPublish: Bool {
        self.published < self.scenario.messages && self.published - self.completed < self.scenario.window
    }

    func received(_ payload: UnsafeRawBufferPointer, from index: Int) {
        guard index < self.scenario.subscribers else { return }  // the websocket publisher's own inbound messages
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
                    self.endCPUNanos = BenchClock.processCPUNanos()
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
        if index >= self.scenario.subscribers {
            if self.done != nil || self.startNanos == 0 { self.publisherLost() }
        } else if self.startNanos > 0, self.done != nil {
            self.errors += 1
        }
    }

    func result() -> BenchResult {
        let elapsed = Double(max(self.endNanos - self.startNanos, 1)) / 1e9
        let expected = self.published * self.scenario.subscribers
        var parameters = [
            "subscribers": self.scenario.subscribers, "messages": self.scenario.messages,
            "window": self.scenario.window, "payload_bytes": self.scenario.payloadBytes,
            "publishers": self.scenario.publisher.connections,
        ]
        if !self.scenario.subscriberPorts.isEmpty { parameters["nodes"] = self.scenario.subscriberPorts.count }
        return BenchResult(
            scenario: self.scenario.subscriberPorts.isEmpty ? "fanout" : "fanout-cluster",
            dialect: self.scenario.target.dialect,
            parameters: parameters,
            labels: ["publisher": self.scenario.publisher.label],
            metrics: [
                "deliveries_per_s": Double(self.deliveries) / elapsed,
                "elapsed_s": elapsed,
                "deliveries": Double(self.deliveries),
                "p50_ms": Double(self.histogram.valueAtPercentile(50)) / 1000,
                "p99_ms": Double(self.histogram.valueAtPercentile(99)) / 1000,
                "max_ms": Double(self.histogram.max) / 1000,
                // The load generator's CPU over the measured run (100: its core was the limit, not the server).
                "load_cpu_pct": 100 * Double(self.endCPUNanos &- self.startCPUNanos) / 1e9 / elapsed,
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
