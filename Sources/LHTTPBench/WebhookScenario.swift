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
        try self.target.requireHTTPPublish("webhook")
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
        // Read the result before the client shuts down: calls it aborts must not count as errors.
        return try await CurlHTTPClient.with(configuration: .init(maxInFlight: max(self.inFlight, 1))) { client in
            try await eventLoop.flatSubmit { tracker.value.runDirect(client, url: "http://127.0.0.1:\(self.backendPort)/direct") }.get()
            return try await eventLoop.submit { tracker.value.result() }.get()
        }
    }
}

/// Bookkeeping of `webhook`; confined to the bench's event loop.
final class WebhookTracker: BenchSink {
    private let scenario: WebhookScenario
    private let eventLoop: any EventLoop
    private let replyPrefix = Array("LHTTP/1.0 \(WebhookScenario.command)\r\n\r\n".utf8)
    private let gateway: PhaseMeter
    private let direct: PhaseMeter
    private var gatewayFigures: PhaseMeter.Figures?
    private var directFigures: PhaseMeter.Figures?
    private var errors = 0

    init(scenario: WebhookScenario, eventLoop: any EventLoop) {
        self.scenario = scenario
        self.eventLoop = eventLoop
        self.gateway = PhaseMeter(eventLoop: eventLoop, messages: scenario.messages, inFlight: scenario.inFlight, timeout: scenario.timeout)
        self.direct = PhaseMeter(eventLoop: eventLoop, messages: scenario.messages, inFlight: scenario.inFlight, timeout: scenario.timeout)
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
        let header = self.replyPrefix
        let size = self.scenario.payloadBytes
        return self.gateway.run { seq in
            let body = BenchPayload.make(seq: seq, sentNanos: BenchClock.nanos(), size: size)
            // Round-robin: with `inFlight` connections, each has about one message awaiting its reply.
            websockets[seq % websockets.count].writeAndFlush(BenchFrames.masked(opcode: 0x1, payload: header + body), promise: nil)
        }.assumeIsolated().map { self.gatewayFigures = $0 }.nonisolated()
    }

    func runDirect(_ client: CurlHTTPClient, url: String) -> EventLoopFuture<Void> {
        let size = self.scenario.payloadBytes
        let eventLoop = self.eventLoop
        let tracker = NIOLoopBound(self, eventLoop: eventLoop)
        return self.direct.run { seq in
            let body = BenchPayload.make(seq: seq, sentNanos: BenchClock.nanos(), size: size)
            client.execute(UpstreamRequest(method: "POST", url: url, body: ByteBuffer(bytes: body)), on: eventLoop) { result in
                guard case .success(let response) = result, response.status == 200 else {
                    tracker.value.errors += 1
                    return
                }
                response.body.withUnsafeReadableBytes { tracker.value.direct.completed(BenchPayload.parse($0)) }
            }
        }.assumeIsolated().map { self.directFigures = $0 }.nonisolated()
    }

    /// A reply on a websocket (through lhttpd): `LHTTP/1.0 hook` and the echoed body, or an error reply.
    func received(_ payload: UnsafeRawBufferPointer, from index: Int) {
        guard payload.count >= self.replyPrefix.count,
            self.replyPrefix.withUnsafeBytes({ $0.elementsEqual(payload[0..<self.replyPrefix.count]) })
        else {
            self.errors += 1
            return
        }
        self.gateway.completed(BenchPayload.parse(UnsafeRawBufferPointer(rebasing: payload[self.replyPrefix.count...])))
    }

    func closed(_ index: Int) {
        if self.gateway.isRunning { self.errors += 1 }
    }

    func result() -> BenchResult {
        .viaGatewayAndDirect(
            scenario: "webhook", dialect: self.scenario.target.dialect,
            parameters: ["messages": self.scenario.messages, "in_flight": self.scenario.inFlight, "payload_bytes": self.scenario.payloadBytes],
            messages: self.scenario.messages,
            gateway: self.gateway, gatewayFigures: self.gatewayFigures ?? .init(rate: 0, p50: 0, p99: 0, count: 0),
            direct: self.direct, directFigures: self.directFigures ?? .init(rate: 0, p50: 0, p99: 0, count: 0),
            errors: self.errors
        )
    }
}
