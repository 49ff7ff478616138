import Histogram
import LHTTPUpstream
import NIOCore
import NIOPosix

/// `upstream`: messages forwarded by lhttpd's `upstream:` header to a local backend (started here, on
/// `backendPort`, which lhttpd's `upstream.allow` must cover), with `inFlight` messages sent but not yet
/// at the backend; then the same messages sent to the backend directly with libcurl (the same client
/// lhttpd uses). Reports messages/s and send→backend latency of both, and the latency lhttpd adds.
public struct UpstreamScenario: Sendable {
    public var target: BenchTarget
    public var backendPort: Int
    public var messages: Int
    public var inFlight: Int
    public var payloadBytes: Int
    public var timeout: TimeAmount

    public init(target: BenchTarget, backendPort: Int, messages: Int, inFlight: Int, payloadBytes: Int = 64, timeout: TimeAmount = .seconds(120)) {
        self.target = target
        self.backendPort = backendPort
        self.messages = messages
        self.inFlight = inFlight
        self.payloadBytes = payloadBytes
        self.timeout = timeout
    }

    var backendURL: String { "http://127.0.0.1:\(self.backendPort)/ingest" }

    public func run(on eventLoop: any EventLoop) async throws -> BenchResult {
        let scenario = self
        let (tracker, sink) = try await ScenarioConnections.bind(on: eventLoop) { UpstreamTracker(scenario: scenario, eventLoop: eventLoop) }
        let onBody = try await eventLoop.submit {
            NIOLoopBound<(ByteBuffer) -> ByteBuffer?>({ body in
                tracker.value.arrived(body)
                return nil
            }, eventLoop: eventLoop)
        }.get()
        let backend = try await BenchBackend.start(on: eventLoop, port: self.backendPort, onBody: onBody)
        var connections = ScenarioConnections(eventLoop: eventLoop, target: self.target)
        defer {
            connections.closeAll()
            eventLoop.execute { backend.value.channel.close(promise: nil) }
        }
        let websocket = try await connections.websocket(path: "/ws", index: 0, sink: sink)

        // Through lhttpd, then directly with libcurl.
        try await eventLoop.flatSubmit { tracker.value.runThroughGateway(websocket) }.get()
        let client = CurlHTTPClient(configuration: .init(maxInFlight: max(self.inFlight, 1)))
        defer { client.shutdown() }
        try await eventLoop.flatSubmit { tracker.value.runDirect(client) }.get()
        return try await eventLoop.submit { tracker.value.result() }.get()
    }
}

/// Bookkeeping of `upstream`; confined to the bench's event loop.
final class UpstreamTracker: BenchSink {
    private enum Phase { case idle, gateway, direct }

    private let scenario: UpstreamScenario
    private let eventLoop: any EventLoop
    private var phase = Phase.idle
    private var sent = 0
    private var arrivedCount = 0
    private var seen: DeliveryBitmap
    private var duplicates = 0
    private var corrupted = 0
    private var errors = 0
    private var histogram = Histogram<UInt64>(highestTrackableValue: 120_000_000)
    private var startNanos: UInt64 = 0
    private var done: EventLoopPromise<Void>?
    private var send: (() -> Void)?
    private var timedOut = false
    private var gateway: (rate: Double, p50: Double, p99: Double, arrived: Int)?
    private var direct: (rate: Double, p50: Double, p99: Double, arrived: Int)?

    init(scenario: UpstreamScenario, eventLoop: any EventLoop) {
        self.scenario = scenario
        self.eventLoop = eventLoop
        self.seen = DeliveryBitmap(rows: 1, bits: scenario.messages)
    }

    func runThroughGateway(_ websocket: any Channel) -> EventLoopFuture<Void> {
        let header = "LHTTP/1.0 bench\r\nupstream:POST \(self.scenario.backendURL)\r\n\r\n"
        let size = self.scenario.payloadBytes
        return self.run(.gateway) { [weak self] in
            guard let self else { return }
            let body = BenchPayload.make(seq: self.sent, sentNanos: BenchClock.nanos(), size: size)
            websocket.writeAndFlush(BenchFrames.masked(opcode: 0x1, payload: Array(header.utf8) + body), promise: nil)
        }
    }

    func runDirect(_ client: CurlHTTPClient) -> EventLoopFuture<Void> {
        let url = self.scenario.backendURL
        let size = self.scenario.payloadBytes
        let eventLoop = self.eventLoop
        return self.run(.direct) { [weak self] in
            guard let self else { return }
            let body = BenchPayload.make(seq: self.sent, sentNanos: BenchClock.nanos(), size: size)
            let request = UpstreamRequest(method: "POST", url: url, headers: [("Content-Type", "text/plain")], body: ByteBuffer(bytes: body))
            let tracker = NIOLoopBound(self, eventLoop: eventLoop)
            client.execute(request, on: eventLoop) { result in
                if case .success(let response) = result, response.status == 200 { return }
                tracker.value.errors += 1
            }
        }
    }

    private func run(_ phase: Phase, send: @escaping () -> Void) -> EventLoopFuture<Void> {
        let promise = self.eventLoop.makePromise(of: Void.self)
        self.phase = phase
        self.sent = 0
        self.arrivedCount = 0
        self.seen = DeliveryBitmap(rows: 1, bits: self.scenario.messages)
        self.histogram.reset()
        self.done = promise
        self.send = send
        self.startNanos = BenchClock.nanos()
        self.eventLoop.assumeIsolated().scheduleTask(in: self.scenario.timeout) { [weak self] in
            guard let self, let done = self.done, self.phase == phase else { return }
            self.timedOut = true
            self.finish(done)
        }
        while self.sent < min(self.scenario.inFlight, self.scenario.messages) {
            send()
            self.sent += 1
        }
        return promise.futureResult
    }

    /// A request body reached the backend (the LHTTP envelope, or the bare body when direct).
    func arrived(_ body: ByteBuffer) {
        guard self.done != nil else { return }
        let parsed: BenchPayload.Parsed = body.withUnsafeReadableBytes { raw in
            var start = 0
            if self.phase == .gateway {
                guard let base = raw.baseAddress, let range = UnsafeRawBufferPointer(start: base, count: raw.count).firstRange(of: Array("\r\n\r\n".utf8)) else {
                    return .corrupt
                }
                start = range.upperBound
            }
            return BenchPayload.parse(UnsafeRawBufferPointer(rebasing: raw[start...]))
        }
        guard case .message(let seq, let sentNanos) = parsed, seq < self.scenario.messages else {
            self.corrupted += 1
            return
        }
        guard self.seen.insert(row: 0, bit: seq) else {
            self.duplicates += 1
            return
        }
        let now = BenchClock.nanos()
        _ = self.histogram.record(now > sentNanos ? (now - sentNanos) / 1000 : 0)
        self.arrivedCount += 1
        if self.arrivedCount == self.scenario.messages, let done = self.done {
            self.finish(done)
        } else if self.sent < self.scenario.messages {
            self.send?()
            self.sent += 1
        }
    }

    private func finish(_ done: EventLoopPromise<Void>) {
        let elapsed = Double(max(BenchClock.nanos() - self.startNanos, 1)) / 1e9
        let figures = (
            rate: Double(self.arrivedCount) / elapsed,
            p50: Double(self.histogram.valueAtPercentile(50)) / 1000,
            p99: Double(self.histogram.valueAtPercentile(99)) / 1000,
            arrived: self.arrivedCount
        )
        if self.phase == .gateway { self.gateway = figures } else { self.direct = figures }
        self.done = nil
        self.send = nil
        done.succeed(())
    }

    func received(_ payload: UnsafeRawBufferPointer, from index: Int) {
        // lhttpd answers the websocket only on failure (an error reply).
        self.errors += 1
    }

    func closed(_ index: Int) {
        if self.done != nil { self.errors += 1 }
    }

    func result() -> BenchResult {
        let gateway = self.gateway ?? (0, 0, 0, 0)
        let direct = self.direct ?? (0, 0, 0, 0)
        return BenchResult(
            scenario: "upstream",
            dialect: self.scenario.target.dialect,
            parameters: ["messages": self.scenario.messages, "in_flight": self.scenario.inFlight, "payload_bytes": self.scenario.payloadBytes],
            metrics: [
                "messages_per_s": gateway.rate,
                "p50_ms": gateway.p50,
                "p99_ms": gateway.p99,
                "direct_messages_per_s": direct.rate,
                "direct_p50_ms": direct.p50,
                "direct_p99_ms": direct.p99,
                "added_p50_ms": gateway.p50 - direct.p50,
                "added_p99_ms": gateway.p99 - direct.p99,
            ],
            lost: 2 * self.scenario.messages - gateway.arrived - direct.arrived,
            duplicates: self.duplicates,
            corrupted: self.corrupted,
            errors: self.errors,
            completed: !self.timedOut,
            note: self.timedOut ? "timed out after \(self.scenario.timeout)" : nil
        )
    }
}
