import LHTTPGateway
import LHTTPProtocol
@testable import LHTTPServer
import LHTTPTestSupport
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

/// Remembers every connection end (the disconnect hook's view).
final class EndRecorder: ConnectionObserver, @unchecked Sendable {
    // Only touched on the test's EmbeddedEventLoop.
    var ends: [CloseCode] = []
    func connectionClosed(_ connection: ConnectionInfo, code: CloseCode, on eventLoop: any EventLoop) { self.ends.append(code) }
}

/// The connection handler on an `EmbeddedChannel`: raw client frames in, the server's bytes out, the
/// event loop's clock advanced by hand.
final class HandlerHarness {
    let loop = EmbeddedEventLoop()
    let channel: EmbeddedChannel
    let gateway: Gateway
    let ends = EndRecorder()
    let connectionLoop: ConnectionLoop
    var sweeper: KeepAliveSweeper { self.connectionLoop.sweeper }

    init(
        pingIntervalS: Double = 30, idleTimeoutS: Double = 75, closeTimeout: TimeAmount = .seconds(3),
        maxMessageBytes: Int = 1 << 20, session: SessionStateMachine.Configuration = .init(),
        upstream: (any UpstreamCaller)? = nil, writeCoalescing: TimeAmount = .zero
    ) throws {
        self.gateway = Gateway(session: session, upstream: upstream, observers: [self.ends])
        self.channel = EmbeddedChannel(loop: self.loop)
        self.connectionLoop = ConnectionLoop(eventLoop: self.loop, pingIntervalS: pingIntervalS, idleTimeoutS: idleTimeoutS)
        try self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4000)).wait()
        try self.channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxMessageBytes)))
        try self.channel.pipeline.syncOperations.addHandler(WebSocketFrameEncoder())
        try self.channel.pipeline.syncOperations.addHandler(
            WebSocketConnectionHandler(
                gateway: self.gateway,
                settings: .init(maxMessageBytes: maxMessageBytes, closeTimeout: closeTimeout, writeCoalescing: writeCoalescing),
                loop: self.connectionLoop
            )
        )
    }

    deinit {
        // Closing releases the connection (and the handler's cycle through the hub's subscriber).
        self.sweeper.stop()
        _ = try? self.channel.finish()
        try? self.loop.syncShutdownGracefully()
    }

    func send(_ bytes: [UInt8]) throws {
        try self.channel.writeInbound(ByteBuffer(bytes: bytes))
        self.loop.run()
    }

    func sendText(_ text: String) throws {
        try self.send(RawFrames.client(opcode: 0x1, payload: Array(text.utf8)))
    }

    /// Everything the server wrote since the last call, as frames.
    func written() throws -> [RawFrames.ServerFrame] {
        var bytes: [UInt8] = []
        while let buffer = try self.channel.readOutbound(as: ByteBuffer.self) { bytes += buffer.readableBytesView }
        return RawFrames.serverFrames(bytes)
    }

    /// The status code of the server's close frame among what it wrote.
    func closeCode() throws -> UInt16? {
        try self.written().first { $0.opcode == 0x8 }?.closeCode
    }
}

@Suite("Connection handler on EmbeddedChannel")
struct ConnectionHandlerTests {
    @Test func aMessageGoesThroughTheGatewayAndTheReplyComesBack() throws {
        let harness = try HandlerHarness()
        try harness.sendText("LHTTP/1.0 chat\r\nsubscribe:me\r\npublish:me\r\n\r\nhello")
        let frames = try harness.written()
        #expect(frames.map(\.opcode) == [0x1])
        #expect(frames.first?.text.hasSuffix("\r\n\r\nhello") == true)
        #expect(harness.gateway.hub.subscriberCount(of: "me") == 1)
    }

    static let violations: [([UInt8], UInt16)] = [
        (RawFrames.client(opcode: 0x1, payload: Array("x".utf8), rsv: 0b100), 1002),  // RSV1, no extension
        (RawFrames.client(opcode: 0x1, payload: Array("x".utf8), rsv: 0b001), 1002),          // RSV3
        (RawFrames.client(opcode: 0x1, payload: Array("x".utf8), masked: false), 1002),       // unmasked
        (RawFrames.client(opcode: 0x3), 1002),                                                // reserved opcode
        (RawFrames.client(opcode: 0xB), 1002),                                                // reserved control opcode
        (RawFrames.client(opcode: 0x0, payload: [0x41]), 1002),                               // continuation without a message
        (RawFrames.client(opcode: 0x1, payload: [0xCE, 0xBA, 0xED, 0xA0, 0x80]), 1007),       // a surrogate: not UTF-8
        (RawFrames.client(opcode: 0x8, payload: [0x03]), 1002),                               // 1-byte close payload
        (RawFrames.close(code: 1005), 1002), (RawFrames.close(code: 1006), 1002), (RawFrames.close(code: 1015), 1002),
        (RawFrames.close(code: 999), 1002), (RawFrames.close(code: 1004), 1002), (RawFrames.close(code: 2999), 1002),
        (RawFrames.close(code: 5000), 1002),
        (RawFrames.close(code: 1000, reason: [0xCE, 0xBA, 0xED, 0xA0, 0x80]), 1002),          // reason not UTF-8
        (RawFrames.client(opcode: 0x9, payload: [], fin: false), 1002),                       // fragmented control frame
        (RawFrames.client(opcode: 0x9, payload: Array(repeating: 0x41, count: 126)), 1002),   // control frame over 125
    ]

    @Test(arguments: Self.violations)
    func protocolViolationsCloseWithTheirCode(frame: [UInt8], code: UInt16) throws {
        let harness = try HandlerHarness()
        try harness.send(frame)
        #expect(try harness.closeCode() == code)
        // The disconnect hook hears the code the server sent, never what a client put in a bad frame.
        #expect(harness.ends.ends == [CloseCode(rawValue: code)])
        // Nothing the client sends after the failure is processed.
        try harness.sendText("LHTTP/1.0 chat\r\nsubscribe:late\r\n\r\n")
        #expect(harness.gateway.hub.subscriberCount(of: "late") == 0)
    }

    @Test func invalidUTF8FailsAtTheFragmentThatBreaksIt() throws {
        let harness = try HandlerHarness()
        // Valid start, then a fragment that cannot continue it: closed before the message ends.
        try harness.send(RawFrames.client(opcode: 0x1, payload: Array("LHTTP/1.0 c\r\n\r\nκ".utf8), fin: false))
        #expect(try harness.written().isEmpty)
        try harness.send(RawFrames.client(opcode: 0x0, payload: [0xCE], fin: false))
        #expect(try harness.written().isEmpty, "a code point may span fragments")
        try harness.send(RawFrames.client(opcode: 0x0, payload: [0x41], fin: false))
        #expect(try harness.closeCode() == 1007)
    }

    @Test func aTextMessageSplitInsideACodePointIsFine() throws {
        let harness = try HandlerHarness()
        let text = Array("LHTTP/1.0 c\r\nsubscribe:κόσμε\r\n\r\n".utf8)
        let cut = text.firstIndex(of: 0xCE)! + 1
        try harness.send(RawFrames.client(opcode: 0x1, payload: Array(text[..<cut]), fin: false))
        try harness.send(RawFrames.client(opcode: 0x0, payload: Array(text[cut...])))
        #expect(harness.gateway.hub.subscriberCount(of: "κόσμε") == 1)
        #expect(try harness.closeCode() == nil)
    }

    @Test(arguments: [UInt16(1000), 1001, 1003, 1007, 1011, 1012, 1013, 1014, 3000, 4000, 4999])
    func validCloseCodesAreEchoedAndReported(code: UInt16) throws {
        let harness = try HandlerHarness()
        try harness.send(RawFrames.close(code: code, reason: Array("bye ✓".utf8)))
        #expect(try harness.closeCode() == code)
        #expect(harness.ends.ends == [CloseCode(rawValue: code)])
    }

    @Test func anEmptyCloseIsAnsweredWithANormalClose() throws {
        let harness = try HandlerHarness()
        try harness.send(RawFrames.client(opcode: 0x8))
        #expect(try harness.closeCode() == 1000)
        #expect(harness.ends.ends == [.normal])
    }

    @Test func pingsAreAnsweredWithTheirPayload() throws {
        let harness = try HandlerHarness()
        try harness.send(RawFrames.client(opcode: 0x9, payload: Array("are you there".utf8)))
        #expect(try harness.written() == [RawFrames.ServerFrame(fin: true, opcode: 0xA, payload: Array("are you there".utf8))])
    }

    @Test func keepAlivePingsAQuietConnectionAndClosesASilentOneOnTheLoopsClock() throws {
        let harness = try HandlerHarness(pingIntervalS: 1, idleTimeoutS: 3)
        harness.loop.advanceTime(by: .milliseconds(900))
        #expect(try harness.written().isEmpty)
        harness.loop.advanceTime(by: .milliseconds(400))
        #expect(try harness.written().map(\.opcode) == [0x9])
        // A pong counts as life: the idle clock starts again.
        try harness.send(RawFrames.client(opcode: 0xA))
        harness.loop.advanceTime(by: .milliseconds(2900))
        #expect(try harness.written().map(\.opcode).allSatisfy { $0 == 0x9 })
        harness.loop.advanceTime(by: .seconds(1))
        #expect(try harness.closeCode() == 4009)
        #expect(harness.ends.ends == [.idleTimeout])
    }

    /// A sweep that comes 10 s late (the loop was not run: the client's pongs are still unread in its socket)
    /// does not close the connection; the silence that follows still does, one idle timeout later.
    @Test func aLoopThatRanLateDoesNotCountItsOwnDelayAsTheClientsSilence() throws {
        let harness = try HandlerHarness(pingIntervalS: 1, idleTimeoutS: 3)
        harness.loop.advanceTime(by: .milliseconds(1300))
        #expect(try harness.written().map(\.opcode) == [0x9])
        harness.sweeper.sweep(now: harness.loop.now + .seconds(10))
        #expect(harness.channel.isActive)
        #expect(harness.ends.ends.isEmpty)
        harness.loop.advanceTime(by: .seconds(10))
        #expect(harness.ends.ends.isEmpty, "1.75 s of silence counted at the late sweep, not 11.3 s")
        harness.loop.advanceTime(by: .milliseconds(1500))
        #expect(try harness.closeCode() == 4009)
        #expect(harness.ends.ends == [.idleTimeout])
    }

    @Test func aCloseFrameThatCannotGoOutIsFollowedByACutAfterTheCloseTimeout() throws {
        /// A peer that stopped reading: writes never complete.
        final class StuckWrites: ChannelOutboundHandler, @unchecked Sendable {
            typealias OutboundIn = ByteBuffer
            var held: [EventLoopPromise<Void>?] = []
            func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) { self.held.append(promise) }
            func flush(context: ChannelHandlerContext) {}
        }
        let harness = try HandlerHarness(closeTimeout: .seconds(2))
        let stuck = StuckWrites()
        try harness.channel.pipeline.syncOperations.addHandler(stuck, position: .first)
        try harness.send(RawFrames.client(opcode: 0x1, payload: Array("x".utf8), rsv: 0b010))
        #expect(stuck.held.count == 1, "the close frame was written")
        #expect(harness.ends.ends == [.protocolError], "the session ended with the close frame, not with the socket")
        harness.loop.advanceTime(by: .milliseconds(1900))
        #expect(harness.channel.isActive)
        harness.loop.advanceTime(by: .milliseconds(200))
        #expect(!harness.channel.isActive)
        for promise in stuck.held { promise?.fail(ChannelError.ioOnClosedChannel) }
    }

    @Test func aSlowConsumerIsClosedWith4008AndItsSubscriptionsReleasedAtOnce() throws {
        let harness = try HandlerHarness()
        try harness.sendText("LHTTP/1.0 c\r\nsubscribe:feed\r\n\r\n")
        harness.channel.isWritable = false
        harness.channel.pipeline.fireChannelWritabilityChanged()
        try harness.gateway.publish(ByteBuffer(string: "LHTTP/1.0 n\r\npublish:feed\r\n\r\nx"), to: ["feed"], source: .http)
        harness.loop.run()
        #expect(try harness.closeCode() == 4008)
        #expect(harness.ends.ends == [.slowConsumer])
        #expect(harness.gateway.hub.subscriberCount(of: "feed") == 0)
    }

    @Test func readingPausesWhileUpstreamCallsAreAtTheCapAndResumesInOrder() throws {
        final class HeldCalls: UpstreamCaller, @unchecked Sendable {
            // Only touched on the test's loop.
            var calls: [(UpstreamCall, @Sendable (GatewayError?) -> Void)] = []
            func call(_ call: UpstreamCall, on eventLoop: any EventLoop, completion: @escaping @Sendable (GatewayError?) -> Void) {
                self.calls.append((call, completion))
            }
        }
        let held = HeldCalls()
        let harness = try HandlerHarness(session: .init(maxUpstreamInFlight: 1), upstream: held)
        final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {
            typealias OutboundIn = Any
            var reads = 0
            func read(context: ChannelHandlerContext) {
                self.reads += 1
                context.read()
            }
        }
        let counter = ReadCounter()
        try harness.channel.pipeline.syncOperations.addHandler(counter, position: .first)
        let upstream = { (n: Int) in "LHTTP/1.0 c\r\nupstream:POST http://x/\(n)\r\n\r\n" }
        try harness.sendText(upstream(1))
        harness.channel.read()
        #expect(counter.reads == 1)
        try harness.sendText(upstream(2))  // waits for the slot: reading pauses
        harness.channel.read()
        #expect(counter.reads == 1, "a read is held back while paused")
        #expect(held.calls.map(\.0.target) == ["POST http://x/1"])
        held.calls[0].1(nil)
        harness.loop.run()
        #expect(held.calls.map(\.0.target) == ["POST http://x/1", "POST http://x/2"])
        #expect(counter.reads == 2, "the held read goes out once nothing waits any more")
        // A completion with an error is an error reply, in the connection's order.
        held.calls[1].1(.upstreamFailed(status: 504, reason: "upstream timed out", url: "http://x/2"))
        harness.loop.run()
        let reply = try LHTTPParser().parse(ByteBuffer(bytes: try harness.written().last?.payload ?? []))
        #expect(reply.headers["status"] == "504" && reply.headers["upstream-url"] == "http://x/2")
        held.calls.removeAll()  // their completions refer to the handler
    }

    @Test func aCloseWhileReadingIsPausedReadsThePeersAnswerAndEndsWithoutAReset() throws {
        final class HeldCalls: UpstreamCaller, @unchecked Sendable {
            // Only touched on the test's loop.
            var completions: [@Sendable (GatewayError?) -> Void] = []
            func call(_ call: UpstreamCall, on eventLoop: any EventLoop, completion: @escaping @Sendable (GatewayError?) -> Void) {
                self.completions.append(completion)
            }
        }
        final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {
            typealias OutboundIn = Any
            var reads = 0
            func read(context: ChannelHandlerContext) {
                self.reads += 1
                context.read()
            }
        }
        let held = HeldCalls()
        let harness = try HandlerHarness(closeTimeout: .seconds(2), session: .init(maxUpstreamInFlight: 1), upstream: held)
        let counter = ReadCounter()
        try harness.channel.pipeline.syncOperations.addHandler(counter, position: .first)
        try harness.sendText("LHTTP/1.0 c\r\nupstream:POST http://x/1\r\n\r\n")
        try harness.sendText("LHTTP/1.0 c\r\nupstream:POST http://x/2\r\n\r\n")  // waits: reading pauses
        harness.channel.read()
        #expect(counter.reads == 0, "a read is held back while paused")
        // The graceful stop's 1001 while the calls are still out: the peer's close must still be read.
        let handler = try harness.channel.pipeline.syncOperations.handler(type: WebSocketConnectionHandler.self)
        handler.close(code: .goingAway, reason: "server stopping")
        #expect(try harness.closeCode() == 1001)
        #expect(counter.reads == 1, "the held read goes out with the close frame")
        harness.channel.read()
        #expect(counter.reads == 2, "and reading is no longer held back")
        try harness.send(RawFrames.client(opcode: 0x8, payload: [0x03, 0xE9]))
        #expect(!harness.channel.isActive, "the handshake completed: closed, not cut after the close timeout")
        #expect(harness.ends.ends == [.goingAway])
        for completion in held.completions { completion(nil) }
        harness.loop.run()
        held.completions.removeAll()
    }
}

@Suite("Connection state machine")
struct ConnectionStateMachineTests {
    func machine() -> ConnectionStateMachine {
        let gateway = Gateway()
        return ConnectionStateMachine(session: gateway.makeSession(id: .next(), remoteAddress: ""), maxMessageBytes: 1024, now: .uptimeNanoseconds(0))
    }

    @Test(arguments: [UInt16(1005), 1006, 1015, 1004, 2000, 999, 5000])
    func aCodeThatMayNotBeSentBecomes1011(code: UInt16) {
        var machine = self.machine()
        #expect(machine.closeRequested(CloseCode(rawValue: code), reason: "x") == .sendClose(.internalError, reason: "x"))
        guard case .session(.release(let summary)) = machine.next() else { Issue.record("no release"); return }
        #expect(summary.code == .internalError)
    }

    @Test func theAppsCloseGoesOutOnceAndEndsTheSessionWithItsCode() {
        var machine = self.machine()
        let bye = CloseCode(rawValue: 4000)
        #expect(machine.opened(actions: [.close(bye, reason: "bye")], now: .uptimeNanoseconds(0)) == .sendClose(bye, reason: "bye"))
        guard case .session(.release(let summary)) = machine.next() else { Issue.record("no release"); return }
        #expect(summary.code == bye)
        #expect(machine.closeRequested(.goingAway, reason: "drain") == .none, "one close frame only")
    }
}
