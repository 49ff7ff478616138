import LHTTPGateway
@testable import LHTTPServer
import LHTTPTestSupport
import NIOCore
import NIOEmbedded
import Testing

@Suite("Outbound writer")
struct OutboundWriterTests {
    private static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    @Test func aLoneFrameGoesOutSharedAndSmallOnesAreBatchedWithoutTouchingTheSharedBuffer() throws {
        var writer = OutboundWriter(maxDelay: .zero)
        let shared = ByteBuffer(string: "first")
        #expect(writer.enqueue(shared, now: Self.t0) == .write(.none, flush: .endOfTick))
        guard case .writeAndFlush(let lone) = writer.flush(now: Self.t0) else { Issue.record("nothing flushed"); return }
        #expect(lone.withUnsafeReadableBytes { $0.baseAddress } == shared.withUnsafeReadableBytes { $0.baseAddress }, "zero copy")
        let steps = [writer.enqueue(shared, now: Self.t0), writer.enqueue(ByteBuffer(string: "second"), now: Self.t0), writer.enqueue(ByteBuffer(string: "third"), now: Self.t0)]
        #expect(steps == [.write(.none, flush: .endOfTick), .write(.none, flush: nil), .write(.none, flush: nil)], "one flush asked for")
        #expect(writer.flush(now: Self.t0) == .writeAndFlush(ByteBuffer(string: "firstsecondthird")))
        #expect(shared == ByteBuffer(string: "first"), "the shared frame is never written to")
        #expect(writer.flush(now: Self.t0) == .nothing)
    }

    @Test func aLargeFrameIsHandedOverAfterWhatIsHeldAndFlushedAtTheFlush() {
        var writer = OutboundWriter(maxDelay: .zero)
        let large = ByteBuffer(repeating: 0x41, count: OutboundWriter.coalescedFrameBytes + 1)
        #expect(writer.enqueue(ByteBuffer(string: "a"), now: Self.t0) == .write(.none, flush: .endOfTick))
        #expect(writer.enqueue(large, now: Self.t0) == .write(.two(ByteBuffer(string: "a"), large), flush: nil))
        #expect(writer.flush(now: Self.t0) == .flush, "handed over, not yet flushed")
        #expect(writer.enqueue(large, now: Self.t0) == .write(.one(large), flush: .endOfTick))
        #expect(writer.flush(now: Self.t0) == .flush)
        #expect(writer.flush(now: Self.t0) == .nothing)
    }

    @Test func aQuietConnectionFlushesAtTheEndOfTheTickABusyOneAfterTheDelay() {
        let delay = TimeAmount.microseconds(1000)
        var writer = OutboundWriter(maxDelay: delay)
        // Quiet: never flushed (or long ago): at once.
        #expect(writer.enqueue(ByteBuffer(string: "1"), now: Self.t0) == .write(.none, flush: .endOfTick))
        #expect(writer.flush(now: Self.t0) == .writeAndFlush(ByteBuffer(string: "1")))
        // Busy: flushed 100 µs ago: due one delay after that flush; what comes meanwhile shares the write.
        let busy = Self.t0 + .microseconds(100)
        #expect(writer.enqueue(ByteBuffer(string: "2"), now: busy) == .write(.none, flush: .at(Self.t0 + delay)))
        #expect(writer.enqueue(ByteBuffer(string: "3"), now: busy + .microseconds(500)) == .write(.none, flush: nil))
        #expect(writer.flush(now: Self.t0 + delay) == .writeAndFlush(ByteBuffer(string: "23")), "order kept, one write")
        // Quiet again once a whole delay passed since the last flush.
        let later = Self.t0 + delay + delay
        #expect(writer.enqueue(ByteBuffer(string: "4"), now: later) == .write(.none, flush: .endOfTick))
    }

    @Test func aRareMessageIsQuietEvenRightAfterAFlushThatRanLate() {
        // A publication to many connections: this one's flush ran 900 µs after it was asked for (late in a
        // long pass); the next message comes 1.2 ms after the first one: not faster than the interval.
        let delay = TimeAmount.microseconds(1000)
        var writer = OutboundWriter(maxDelay: delay)
        #expect(writer.enqueue(ByteBuffer(string: "1"), now: Self.t0) == .write(.none, flush: .endOfTick))
        #expect(writer.flush(now: Self.t0 + .microseconds(900)) == .writeAndFlush(ByteBuffer(string: "1")))
        #expect(writer.enqueue(ByteBuffer(string: "2"), now: Self.t0 + .microseconds(1200)) == .write(.none, flush: .endOfTick))
    }

    @Test func aSteadyStreamGetsOneWritePerInterval() {
        // A message every 250 µs for 8 ms, the flusher running each flush at the time asked for.
        let delay = TimeAmount.microseconds(1000)
        var writer = OutboundWriter(maxDelay: delay)
        var due: NIODeadline?
        var writes = 0
        var delivered = 0
        for step in 0..<32 {
            let now = Self.t0 + .microseconds(Int64(step) * 250)
            if let time = due, time <= now {
                if case .writeAndFlush(let batch) = writer.flush(now: time) { writes += 1; delivered += batch.readableBytes }
                due = nil
            }
            switch writer.enqueue(ByteBuffer(string: "m"), now: now) {
            case .write(_, flush: .endOfTick?):
                if case .writeAndFlush(let batch) = writer.flush(now: now) { writes += 1; delivered += batch.readableBytes }
            case .write(_, flush: .at(let time)?):
                due = time
            default:
                break
            }
        }
        if let time = due, case .writeAndFlush(let batch) = writer.flush(now: time) { writes += 1; delivered += batch.readableBytes }
        #expect(delivered == 32)
        #expect(writes <= 10, "about one write per millisecond, not one per message or per two: \(writes)")
    }

    @Test func aBatchReachingItsCapIsHandedOverAtOnceSoTheWatermarkSeesIt() {
        var writer = OutboundWriter(maxDelay: .microseconds(1000))
        let frame = ByteBuffer(repeating: 0x42, count: 1000)
        var handedOver = 0
        for _ in 0..<(OutboundWriter.batchFlushBytes / 1000 + 1) {
            guard case .write(let handoff, _) = writer.enqueue(frame, now: Self.t0) else { Issue.record("refused"); return }
            if case .one(let batch) = handoff { handedOver += batch.readableBytes }
        }
        #expect(handedOver >= OutboundWriter.batchFlushBytes)
    }

    @Test func notWritableIsASlowConsumer() {
        var writer = OutboundWriter(maxDelay: .microseconds(1000))
        writer.isWritable = false
        #expect(writer.enqueue(ByteBuffer(string: "x"), now: Self.t0) == .slowConsumer)
    }

    @Test func aControlFrameTakesWhatIsHeldAndTheFlushAskedForFindsNothing() {
        var writer = OutboundWriter(maxDelay: .zero)
        _ = writer.enqueue(ByteBuffer(string: "held"), now: Self.t0)
        #expect(writer.takeForImmediateFlush() == ByteBuffer(string: "held"))
        #expect(writer.flush(now: Self.t0) == .nothing)
    }
}

@Suite("Write coalescing on EmbeddedChannel")
struct WriteCoalescingTests {
    /// Frames the server wrote, one entry per flushed write.
    private static func writes(_ harness: HandlerHarness) throws -> [[UInt8]] {
        var writes: [[UInt8]] = []
        while let buffer = try harness.channel.readOutbound(as: ByteBuffer.self) { writes.append(Array(buffer.readableBytesView)) }
        return writes
    }

    private static func publish(_ harness: HandlerHarness, _ body: String) throws {
        try harness.gateway.publish(ByteBuffer(string: "LHTTP/1.0 c\r\npublish:room\r\n\r\n\(body)"), to: ["room"], source: .http)
    }

    @Test func aLoneMessageGoesOutAtOnceAndABusyConnectionsNextOnesShareOneWriteWithinTheDelay() throws {
        let harness = try HandlerHarness(writeCoalescing: .microseconds(1000))
        try harness.sendText("LHTTP/1.0 c\r\nsubscribe:room\r\n\r\n")
        _ = try Self.writes(harness)
        try Self.publish(harness, "1")
        harness.loop.run()
        #expect(try Self.writes(harness).count == 1, "quiet: out at the end of the tick, the clock never moved")
        for body in ["2", "3", "4"] {
            harness.loop.advanceTime(by: .microseconds(100))
            try Self.publish(harness, body)
        }
        #expect(try Self.writes(harness).isEmpty, "busy: held")
        harness.loop.advanceTime(by: .microseconds(700))
        let batch = try Self.writes(harness)
        #expect(batch.count == 1, "one write for three deliveries, at the delay")
        let bodies = RawFrames.serverFrames(batch.first ?? []).map { String(decoding: $0.payload, as: UTF8.self).suffix(1) }
        #expect(bodies == ["2", "3", "4"], "in order")
        harness.loop.advanceTime(by: .milliseconds(5))
        try Self.publish(harness, "5")
        harness.loop.run()
        #expect(try Self.writes(harness).count == 1, "quiet again")
    }

    @Test func aPingAfterHeldDeliveriesGoesOutBehindThemAndTheHeldFlushWritesNothingMore() throws {
        let harness = try HandlerHarness(pingIntervalS: 0.01, idleTimeoutS: 60, writeCoalescing: .microseconds(1000))
        try harness.sendText("LHTTP/1.0 c\r\nsubscribe:room\r\n\r\n")
        try Self.publish(harness, "1")
        harness.loop.run()
        try Self.publish(harness, "2")
        try harness.send(RawFrames.client(opcode: 0x9, payload: Array("p".utf8)))
        let written = try Self.writes(harness).flatMap { $0 }
        #expect(RawFrames.serverFrames(written).map(\.opcode) == [0x1, 0x1, 0xA], "both deliveries, then the pong")
        harness.loop.advanceTime(by: .milliseconds(1))
        #expect(try Self.writes(harness).isEmpty)
    }
}
