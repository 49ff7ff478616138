import NIOCore
import NIOPosix

/// `seed`: the original README's claim, "publish 10000 messages using 0.04s": one websocket client
/// publishes M messages to a channel with one subscriber; time from the first send until the subscriber
/// has all of them, checked byte for byte.
public struct SeedScenario: Sendable {
    public var target: BenchTarget
    public var messages: Int
    public var payloadBytes: Int
    public var timeout: TimeAmount
    public var channel = "bench-seed"

    public init(target: BenchTarget, messages: Int, payloadBytes: Int = 64, timeout: TimeAmount = .seconds(60)) {
        self.target = target
        self.messages = messages
        self.payloadBytes = payloadBytes
        self.timeout = timeout
    }

    public func run(on eventLoop: any EventLoop) async throws -> BenchResult {
        try self.target.requireHTTPPublish("seed")
        let scenario = self
        let (tracker, sink) = try await ScenarioConnections.bind(on: eventLoop) { SeedTracker(scenario: scenario, eventLoop: eventLoop) }
        var connections = ScenarioConnections(eventLoop: eventLoop, target: self.target)
        defer { connections.closeAll() }
        try await connections.subscribers(1, channel: { _ in scenario.channel }, sink: sink)
        // The publisher's own inbound frames (Nchan answers each publish) go to index 1 and are ignored.
        let publisher = try await connections.websocket(
            path: self.target.dialect.websocketPublishPath(channel: self.channel), index: 1, sink: sink
        )
        let http = try await connections.http()
        try await eventLoop.flatSubmit { tracker.value.warmUp(http.value) }.get()
        try await eventLoop.flatSubmit { tracker.value.publish(on: publisher) }.get()
        return try await eventLoop.submit { tracker.value.result() }.get()
    }
}

/// Bookkeeping of `seed`; confined to the bench's event loop.
final class SeedTracker: BenchSink {
    private let scenario: SeedScenario
    private let eventLoop: any EventLoop
    private let prefix: [UInt8]
    private let gate: WarmUpGate
    private var received: [Bool]
    private var count = 0
    private var duplicates = 0
    private var corrupted = 0
    private var errors = 0
    private var startNanos: UInt64 = 0
    private var endNanos: UInt64 = 0
    private var done: EventLoopPromise<Void>?
    private var timedOut = false

    init(scenario: SeedScenario, eventLoop: any EventLoop) {
        self.scenario = scenario
        self.eventLoop = eventLoop
        self.prefix = scenario.target.dialect.deliveredPrefix(channel: scenario.channel)
        self.gate = WarmUpGate(eventLoop: eventLoop, subscribers: 1)
        self.received = Array(repeating: false, count: scenario.messages)
    }

    func warmUp(_ http: HTTPLoadConnection) -> EventLoopFuture<Void> {
        self.gate.open(publisher: http, target: self.scenario.target.dialect.publishTarget(channel: self.scenario.channel), payloadBytes: self.scenario.payloadBytes)
    }

    /// Writes all M frames as fast as the socket takes them, then waits for the subscriber.
    func publish(on channel: any Channel) -> EventLoopFuture<Void> {
        let promise = self.eventLoop.makePromise(of: Void.self)
        self.done = promise
        self.eventLoop.assumeIsolated().scheduleTask(in: self.scenario.timeout) { [weak self] in
            guard let self else { return }
            guard let done = self.done else { return }
            self.timedOut = true
            self.endNanos = BenchClock.nanos()
            self.done = nil
            done.succeed(())
        }
        self.startNanos = BenchClock.nanos()
        var buffer = channel.allocator.buffer(capacity: 64 * 1024)
        for seq in 0..<self.scenario.messages {
            let body = BenchPayload.make(seq: seq, sentNanos: 0, size: self.scenario.payloadBytes)
            let payload = self.scenario.target.dialect.websocketPublishPayload(channel: self.scenario.channel, body: body)
            BenchFrames.masked(opcode: 0x1, payload: payload, into: &buffer)
            if buffer.readableBytes >= 60 * 1024 || seq == self.scenario.messages - 1 {
                channel.writeAndFlush(buffer, promise: nil)
                buffer = channel.allocator.buffer(capacity: 64 * 1024)
            }
        }
        return promise.futureResult
    }

    func received(_ payload: UnsafeRawBufferPointer, from index: Int) {
        guard index == 0 else { return }  // the publisher's own inbound frames
        switch BenchPayload.check(payload, prefix: self.prefix) {
        case .warmup:
            self.gate.saw(0)
        case .corrupt:
            self.corrupted += 1
        case .message(let seq, _):
            guard seq < self.scenario.messages, self.startNanos > 0 else {
                self.corrupted += 1
                return
            }
            guard !self.received[seq] else {
                self.duplicates += 1
                return
            }
            self.received[seq] = true
            self.count += 1
            if self.count == self.scenario.messages {
                self.endNanos = BenchClock.nanos()
                self.done?.succeed(())
                self.done = nil
            }
        }
    }

    func closed(_ index: Int) {
        if self.done != nil { self.errors += 1 }
    }

    func result() -> BenchResult {
        let elapsed = Double(max(self.endNanos - self.startNanos, 1)) / 1e9
        return BenchResult(
            scenario: "seed",
            dialect: self.scenario.target.dialect,
            parameters: ["messages": self.scenario.messages, "payload_bytes": self.scenario.payloadBytes],
            metrics: ["elapsed_s": elapsed, "messages_per_s": Double(self.count) / elapsed],
            lost: self.scenario.messages - self.count,
            duplicates: self.duplicates,
            corrupted: self.corrupted,
            errors: self.errors,
            completed: !self.timedOut,
            note: self.timedOut ? "timed out after \(self.scenario.timeout)" : nil
        )
    }
}
