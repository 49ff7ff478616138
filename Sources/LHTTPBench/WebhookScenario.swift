import Histogram
import LHTTPUpstream
import NIOCore
import NIOPosix

/// `webhook`: round trips of a routed command — websocket message → lhttpd → webhook (a local backend
/// started here, on `backendPort`, which lhttpd's `routes.hook` must point at) → its plain-text answer →
/// reply to the sender — over `inFlight` websocket connections with one message awaiting its reply each
/// (a connection's webhook calls are serial by contract); then the same round trips to the backend directly
/// with libcurl. Reports round trips/s and latency of both, and the latency lhttpd adds.
public struct WebhookScenario: Sendable {
    public static let command = "hook"

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

    public func run(on eventLoop: any EventLoop) async throws -> BenchResult {
        let scenario = self
        let (tracker, sink) = try await ScenarioConnections.bind(on: eventLoop) { WebhookTracker(scenario: scenario, eventLoop: eventLoop) }
        // The backend echoes the bench body: from the JSON envelope (gateway) or the raw request (direct).
        let onBody = try await eventLoop.submit {
            NIOLoopBound<(ByteBuffer) -> ByteBuffer?>({ body in WebhookTracker.echo(body) }, eventLoop: eventLoop)
        }.get()
        let backend = try await BenchBackend.start(on: eventLoop, port: self.backendPort, onBody: onBody)
        var connections = ScenarioConnections(eventLoop: eventLoop, target: self.target)
        defer {
            connections.closeAll()
            eventLoop.execute { backend.value.channel.close(promise: nil) }
        }
        var websockets: [any Channel] = []
        for index in 0..<max(self.inFlight, 1) {
            websockets.append(try await connections.websocket(path: "/ws", index: index, sink: sink))
        }
        let all = websockets
        try await eventLoop.flatSubmit { tracker.value.runThroughGateway(all) }.get()
        let client = CurlHTTPClient(configuration: .init(maxInFlight: max(self.inFlight, 1)))
        defer { client.shutdown() }
        try await eventLoop.flatSubmit { tracker.value.runDirect(client, url: "http://127.0.0.1:\(self.backendPort)/direct") }.get()
        return try await eventLoop.submit { tracker.value.result() }.get()
    }
}

/// Bookkeeping of `webhook`; confined to the bench's event loop.
final class WebhookTracker: BenchSink {
    private let scenario: WebhookScenario
    private let eventLoop: any EventLoop
    private let replyPrefix = Array("LHTTP/1.0 \(WebhookScenario.command)\r\n\r\n".utf8)
    private var phaseIsGateway = true
    private var sent = 0
    private var done = 0
    private var seen: DeliveryBitmap
    private var corrupted = 0
    private var duplicates = 0
    private var errors = 0
    private var histogram = Histogram<UInt64>(highestTrackableValue: 120_000_000)
    private var startNanos: UInt64 = 0
    private var promise: EventLoopPromise<Void>?
    private var send: (() -> Void)?
    private var timedOut = false
    private var gateway: (rate: Double, p50: Double, p99: Double, count: Int)?
    private var direct: (rate: Double, p50: Double, p99: Double, count: Int)?

    init(scenario: WebhookScenario, eventLoop: any EventLoop) {
        self.scenario = scenario
        self.eventLoop = eventLoop
        self.seen = DeliveryBitmap(rows: 1, bits: scenario.messages)
    }

    /// The backend's answer: the bench body, found in the JSON envelope (`{"body":"…"`) or taken as is.
    static func echo(_ request: ByteBuffer) -> ByteBuffer? {
        let bytes = Array(request.readableBytesView)
        let marker = Array(#"{"body":""#.utf8)
        guard bytes.starts(with: marker) else { return request }
        let start = marker.count
        guard let end = bytes[start...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
        return ByteBuffer(bytes: bytes[start..<end])
    }

    func runThroughGateway(_ websockets: [any Channel]) -> EventLoopFuture<Void> {
        let header = Array("LHTTP/1.0 \(WebhookScenario.command)\r\n\r\n".utf8)
        let size = self.scenario.payloadBytes
        return self.run(gateway: true) { [weak self] in
            guard let self else { return }
            let body = BenchPayload.make(seq: self.sent, sentNanos: BenchClock.nanos(), size: size)
            // Round-robin: with `inFlight` connections, each has about one message awaiting its reply.
            websockets[self.sent % websockets.count].writeAndFlush(BenchFrames.masked(opcode: 0x1, payload: header + body), promise: nil)
        }
    }

    func runDirect(_ client: CurlHTTPClient, url: String) -> EventLoopFuture<Void> {
        let size = self.scenario.payloadBytes
        let eventLoop = self.eventLoop
        return self.run(gateway: false) { [weak self] in
            guard let self else { return }
            let body = BenchPayload.make(seq: self.sent, sentNanos: BenchClock.nanos(), size: size)
            let tracker = NIOLoopBound(self, eventLoop: eventLoop)
            client.execute(UpstreamRequest(method: "POST", url: url, body: ByteBuffer(bytes: body)), on: eventLoop) { result in
                guard case .success(let response) = result, response.status == 200 else {
                    tracker.value.errors += 1
                    return
                }
                response.body.withUnsafeReadableBytes { tracker.value.completed(BenchPayload.parse($0)) }
            }
        }
    }

    private func run(gateway: Bool, send: @escaping () -> Void) -> EventLoopFuture<Void> {
        let promise = self.eventLoop.makePromise(of: Void.self)
        self.phaseIsGateway = gateway
        self.sent = 0
        self.done = 0
        self.seen = DeliveryBitmap(rows: 1, bits: self.scenario.messages)
        self.histogram.reset()
        self.promise = promise
        self.send = send
        self.startNanos = BenchClock.nanos()
        self.eventLoop.assumeIsolated().scheduleTask(in: self.scenario.timeout) { [weak self] in
            guard let self, let pending = self.promise, self.phaseIsGateway == gateway else { return }
            self.timedOut = true
            self.finish(pending)
        }
        while self.sent < min(self.scenario.inFlight, self.scenario.messages) {
            send()
            self.sent += 1
        }
        return promise.futureResult
    }

    /// A reply to the websocket (gateway phase).
    func received(_ payload: UnsafeRawBufferPointer, from index: Int) {
        guard payload.count >= self.replyPrefix.count,
            self.replyPrefix.withUnsafeBytes({ $0.elementsEqual(payload[0..<self.replyPrefix.count]) })
        else {
            self.errors += 1  // an error reply
            return
        }
        self.completed(BenchPayload.parse(UnsafeRawBufferPointer(rebasing: payload[self.replyPrefix.count...])))
    }

    private func completed(_ parsed: BenchPayload.Parsed) {
        guard self.promise != nil else { return }
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
        self.done += 1
        if self.done == self.scenario.messages, let pending = self.promise {
            self.finish(pending)
        } else if self.sent < self.scenario.messages {
            self.send?()
            self.sent += 1
        }
    }

    private func finish(_ pending: EventLoopPromise<Void>) {
        let elapsed = Double(max(BenchClock.nanos() - self.startNanos, 1)) / 1e9
        let figures = (
            rate: Double(self.done) / elapsed,
            p50: Double(self.histogram.valueAtPercentile(50)) / 1000,
            p99: Double(self.histogram.valueAtPercentile(99)) / 1000,
            count: self.done
        )
        if self.phaseIsGateway { self.gateway = figures } else { self.direct = figures }
        self.promise = nil
        self.send = nil
        pending.succeed(())
    }

    func closed(_ index: Int) {
        if self.promise != nil, self.phaseIsGateway { self.errors += 1 }
    }

    func result() -> BenchResult {
        let gateway = self.gateway ?? (0, 0, 0, 0)
        let direct = self.direct ?? (0, 0, 0, 0)
        return BenchResult(
            scenario: "webhook",
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
            lost: 2 * self.scenario.messages - gateway.count - direct.count,
            duplicates: self.duplicates,
            corrupted: self.corrupted,
            errors: self.errors,
            completed: !self.timedOut,
            note: self.timedOut ? "timed out after \(self.scenario.timeout)" : nil
        )
    }
}
