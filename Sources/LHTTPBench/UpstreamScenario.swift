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
        try self.target.requireHTTPPublish("upstream")
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
        // Read the result before the client shuts down: calls it aborts must not count as errors.
        return try await CurlHTTPClient.with(configuration: .init(maxInFlight: max(self.inFlight, 1))) { client in
            try await eventLoop.flatSubmit { tracker.value.runDirect(client) }.get()
            return try await eventLoop.submit { tracker.value.result() }.get()
        }
    }
}

/// Bookkeeping of `upstream`; confined to the bench's event loop.
final class UpstreamTracker: BenchSink {
    private let scenario: UpstreamScenario
    private let eventLoop: any EventLoop
    private let gateway: PhaseMeter
    private let direct: PhaseMeter
    private var gatewayFigures: PhaseMeter.Figures?
    private var directFigures: PhaseMeter.Figures?
    private var errors = 0

    init(scenario: UpstreamScenario, eventLoop: any EventLoop) {
        self.scenario = scenario
        self.eventLoop = eventLoop
        self.gateway = PhaseMeter(eventLoop: eventLoop, messages: scenario.messages, inFlight: scenario.inFlight, timeout: scenario.timeout)
        self.direct = PhaseMeter(eventLoop: eventLoop, messages: scenario.messages, inFlight: scenario.inFlight, timeout: scenario.timeout)
    }

    func runThroughGateway(_ websocket: any Channel) -> EventLoopFuture<Void> {
        let header = Array("LHTTP/1.0 bench\r\nupstream:POST \(self.scenario.backendURL)\r\n\r\n".utf8)
        let size = self.scenario.payloadBytes
        return self.gateway.run { seq in
            let body = BenchPayload.make(seq: seq, sentNanos: BenchClock.nanos(), size: size)
            websocket.writeAndFlush(BenchFrames.masked(opcode: 0x1, payload: header + body), promise: nil)
        }.assumeIsolated().map { self.gatewayFigures = $0 }.nonisolated()
    }

    func runDirect(_ client: CurlHTTPClient) -> EventLoopFuture<Void> {
        let url = self.scenario.backendURL
        let size = self.scenario.payloadBytes
        let eventLoop = self.eventLoop
        let tracker = NIOLoopBound(self, eventLoop: eventLoop)
        return self.direct.run { seq in
            let body = BenchPayload.make(seq: seq, sentNanos: BenchClock.nanos(), size: size)
            let request = UpstreamRequest(method: "POST", url: url, headers: [("Content-Type", "text/plain")], body: ByteBuffer(bytes: body))
            client.execute(request, on: eventLoop) { result in
                if case .success(let response) = result, response.status == 200 { return }
                tracker.value.errors += 1
            }
        }.assumeIsolated().map { self.directFigures = $0 }.nonisolated()
    }

    /// A request body reached the backend: the LHTTP envelope (through lhttpd) or the bare body (direct).
    func arrived(_ body: ByteBuffer) {
        let meter = self.gateway.isRunning ? self.gateway : self.direct
        let parsed: BenchPayload.Parsed = body.withUnsafeReadableBytes { raw in
            guard meter === self.gateway else { return BenchPayload.parse(raw) }
            guard let range = raw.firstRange(of: Array("\r\n\r\n".utf8)) else { return .corrupt }
            return BenchPayload.parse(UnsafeRawBufferPointer(rebasing: raw[range.upperBound...]))
        }
        meter.completed(parsed)
    }

    func received(_ payload: UnsafeRawBufferPointer, from index: Int) {
        // lhttpd answers the websocket only on failure (an error reply).
        self.errors += 1
    }

    func closed(_ index: Int) {
        if self.gateway.isRunning { self.errors += 1 }
    }

    func result() -> BenchResult {
        .viaGatewayAndDirect(
            scenario: "upstream", dialect: self.scenario.target.dialect,
            parameters: ["messages": self.scenario.messages, "in_flight": self.scenario.inFlight, "payload_bytes": self.scenario.payloadBytes],
            messages: self.scenario.messages,
            gateway: self.gateway, gatewayFigures: self.gatewayFigures ?? .init(rate: 0, p50: 0, p99: 0, count: 0),
            direct: self.direct, directFigures: self.directFigures ?? .init(rate: 0, p50: 0, p99: 0, count: 0),
            errors: self.errors
        )
    }
}
