import LHTTPGateway
import LHTTPProtocol
import NIOCore

/// One connection driven the way the server's handler drives it — its session state machine's actions
/// executed through the gateway — with an in-memory frame sink instead of a socket (the socket path has
/// its own tests, end to end and on `EmbeddedChannel`). Use on one `EmbeddedEventLoop`.
final class TestConnection {
    let gateway: Gateway
    private(set) var machine: SessionStateMachine!
    private(set) var subscriber: Subscriber!
    /// Where the hub writes (its own object: the hub's subscriber holds it, and it holds the subscriber
    /// weakly, so a test that never closes a connection leaks no cycle).
    private let sink = RecordingSink()
    /// Every frame the hub handed to this connection, in order.
    var frames: [ByteBuffer] { self.sink.frames }
    /// What the session asked for that the test plays the part of.
    private(set) var closedWith: (code: CloseCode, reason: String)?
    private(set) var upstreamCalls: [UpstreamCall] = []
    private(set) var routed: [RouteRequest] = []
    private(set) var isReadingPaused = false
    private(set) var released: ConnectionSummary?

    init(_ gateway: Gateway, on loop: any EventLoop, connectActions: [AppAction] = []) {
        self.gateway = gateway
        self.machine = gateway.makeSession(id: .next(), remoteAddress: "127.0.0.1:1")
        self.subscriber = gateway.open(self.machine.info, sink: self.sink, eventLoop: loop)
        self.drive(self.machine.opened(actions: connectActions))
    }

    func receive(_ text: String) {
        self.drive(self.machine.messageReceived(ByteBuffer(string: text)))
    }

    func receive(_ bytes: ByteBuffer) {
        self.drive(self.machine.messageReceived(bytes))
    }

    func answer(_ answer: RouteAnswer) {
        self.drive(self.machine.routeAnswered(answer))
    }

    func completeUpstream(_ error: GatewayError? = nil) {
        self.drive(self.machine.upstreamCompleted(error))
    }

    func close(code: CloseCode = .normal) {
        self.drive(self.machine.finish(code: code))
    }

    private func drive(_ first: SessionAction) {
        var action = first
        while action != .none {
            action = self.machine.next(self.execute(action))
        }
    }

    private func execute(_ action: SessionAction) -> StepOutcome {
        if case .release(let summary) = action { self.released = summary }
        switch self.gateway.carryOut(action, subscriber: self.subscriber, connection: self.machine.info) {
        case .outcome(let outcome):
            return outcome
        case .send(let bytes):
            self.sink.enqueueFrame(WebSocketFrameBytes.message(bytes))
        case .connections(.callUpstream(let call)):
            self.upstreamCalls.append(call)
        case .connections(.route(let request)):
            self.routed.append(request)
        case .connections(.close(let code, let reason)):
            self.closedWith = (code, reason)
            self.drive(self.machine.finish(code: code))
        case .connections(.pauseReading):
            self.isReadingPaused = true
        case .connections(.resumeReading):
            self.isReadingPaused = false
        case .connections:
            break
        }
        return .done
    }

    /// The LHTTP messages of the frames (frames are short: 2- or 4-byte headers here).
    func messages() throws -> [LHTTPMessage] {
        try self.frames.map { frame in
            var frame = frame
            _ = frame.readInteger(as: UInt8.self)
            let length = frame.readInteger(as: UInt8.self)!
            if length == 126 { _ = frame.readInteger(as: UInt16.self) }
            return try LHTTPParser().parse(frame)
        }
    }
}

/// Records what the hub writes to one connection (when it goes out is the server's writer's business,
/// tested there).
final class RecordingSink: FrameSink {
    private(set) var frames: [ByteBuffer] = []

    func enqueueFrame(_ frame: ByteBuffer) {
        self.frames.append(frame)
    }
}
