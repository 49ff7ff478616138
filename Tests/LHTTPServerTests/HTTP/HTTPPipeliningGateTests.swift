import NIOCore
import NIOEmbedded
import NIOHTTP1
@testable import LHTTPServer
import Testing

/// The pipelining gate on an `EmbeddedChannel` behind NIO's own HTTP server handlers: a write promise there
/// completes when the test flushes, which stands for the socket taking the bytes.
@Suite("HTTP pipelining gate on EmbeddedChannel")
struct HTTPPipeliningGateTests {
    /// Records the request heads it is handed; the test answers them.
    final class Recorder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        var heads: [String] = []
        var ends = 0
        var readCompletes = 0
        var context: ChannelHandlerContext?

        func handlerAdded(context: ChannelHandlerContext) { self.context = context }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch Self.unwrapInboundIn(data) {
            case .head(let head): self.heads.append(head.uri)
            case .body: break
            case .end: self.ends += 1
            }
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            self.readCompletes += 1
        }

        /// Writes a whole response with a body of `bytes` (not flushed).
        func answer(bytes: Int) {
            guard let context else { return }
            let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["content-length": String(bytes)])
            context.write(Self.wrapOutboundOut(.head(head)), promise: nil)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(repeating: 0x61, count: bytes)))), promise: nil)
            context.write(Self.wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    /// Counts the `read()` calls that reach the socket.
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = Any
        var reads = 0
        func read(context: ChannelHandlerContext) {
            self.reads += 1
            context.read()
        }
    }

    final class Harness {
        let channel = EmbeddedChannel()
        let recorder = Recorder()
        let reads = ReadCounter()

        init(maxQueuedBytes: Int = 1000) throws {
            try self.channel.pipeline.syncOperations.addHandler(self.reads)
            try self.channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
            try self.channel.pipeline.syncOperations.addHandler(HTTPPipeliningGate(maxQueuedBytes: maxQueuedBytes))
            try self.channel.pipeline.syncOperations.addHandler(self.recorder)
            try self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }

        func send(_ paths: [String]) throws {
            try self.channel.writeInbound(ByteBuffer(string: paths.map { "GET \($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined()))
        }

        /// The socket takes everything queued; the gate's hop runs.
        func drain() {
            self.channel.flush()
            while (try? self.channel.readOutbound(as: IOData.self)) != nil {}
            self.channel.embeddedEventLoop.advanceTime(by: HTTPPipeliningGate.yieldDelay)
        }
    }

    @Test func underTheCapPipelinedRequestsAreAnsweredBackToBack() throws {
        let harness = try Harness()
        try harness.send(["/a", "/b", "/c"])
        #expect(harness.recorder.heads == ["/a"])
        harness.recorder.answer(bytes: 10)
        harness.recorder.answer(bytes: 10)
        // Nothing flushed yet: the small answers do not hold the next request back.
        #expect(harness.recorder.heads == ["/a", "/b", "/c"])
        harness.recorder.answer(bytes: 10)
        harness.drain()
        #expect(try harness.channel.finish().isClean)
    }

    @Test func overTheCapTheNextRequestWaitsUntilTheAnswerIsWrittenAndReadingStops() throws {
        let harness = try Harness(maxQueuedBytes: 1000)
        try harness.send(["/a", "/b", "/c"])
        harness.recorder.answer(bytes: 2000)
        // NIO lets /b through at once (the answer is queued); the gate holds it until it is written.
        #expect(harness.recorder.heads == ["/a"])
        let readsBefore = harness.reads.reads
        harness.channel.read()
        #expect(harness.reads.reads == readsBefore, "no read while the answer waits")

        harness.drain()
        #expect(harness.recorder.heads == ["/a", "/b"])
        #expect(harness.recorder.ends == 2)
        // The router flushes what it answers at a read's end: the gate gives it one with what it released.
        #expect(harness.recorder.readCompletes >= 1)
        harness.recorder.answer(bytes: 10)
        #expect(harness.recorder.heads == ["/a", "/b", "/c"])
        // The read asked for while waiting goes out once NIO's pipelining handler has nothing left to hand over.
        #expect(harness.reads.reads == readsBefore)
        harness.recorder.answer(bytes: 10)
        #expect(harness.reads.reads == readsBefore + 1)
        harness.drain()
        #expect(try harness.channel.finish().isClean)
    }

    @Test func aClosedConnectionDropsWhatWasHeld() throws {
        let harness = try Harness(maxQueuedBytes: 1000)
        try harness.send(["/a", "/b"])
        harness.recorder.answer(bytes: 2000)
        #expect(harness.recorder.heads == ["/a"])
        _ = try? harness.channel.finish()
        harness.channel.embeddedEventLoop.run()
        #expect(harness.recorder.heads == ["/a"])
    }
}
