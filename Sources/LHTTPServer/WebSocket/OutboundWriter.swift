import NIOCore

/// The one owner of a connection's outbound path: what it holds, when that goes out, and the
/// slow-consumer signal. A plain struct that returns what to write and when; the connection handler
/// writes, and the loop's ``LoopFlusher`` calls ``flush(now:)`` at the time asked for.
///
/// **When a flush happens (coalescing that adapts to load).** The first frame after a flush asks for one:
/// - at the end of the loop tick when the connection is quiet — the flush asked for before this one was at
///   least `maxDelay` ago (messages come more rarely than that), or its last flush was: a lone message goes
///   out at once, every frame of the same tick with it;
/// - at `last flush + maxDelay` when it is busy (messages come faster than `maxDelay`): deliveries arriving
///   meanwhile accumulate and go out in one `write`. No frame waits longer than `maxDelay`
///   (`websocket.write_coalescing_us`, ≤ 1 ms), and under load a socket gets at most one write per
///   `maxDelay` instead of one per delivery.
/// Busy is judged by how often messages come, not by how recently the socket was written: a publication to
/// 1000 connections takes milliseconds to write out, and a rare next message must not wait behind a flush
/// that happened late in that pass.
/// A frame never waits for the flush to be accepted: publishers do not wait for coalescing.
///
/// **Copies.** The first small frame stays the publication's shared buffer (zero copy); when a second
/// small frame (≤ ``coalescedFrameBytes``) comes before the flush, both are copied into one
/// per-connection buffer and later ones appended (a 100-byte copy costs far less than a write). A frame
/// larger than that is handed to the channel as the shared buffer, after what is held (order is kept).
/// A batch of ``batchFlushBytes`` is handed to the channel at once, so the write-buffer watermark (the
/// 4008 cap, `limits.max_outbound_bytes`) sees it: at most that much is held here, outside the cap, and a loop's batches stay in the CPU's cache.
struct OutboundWriter {
    /// Frames up to this size are coalesced; larger ones are written as the shared buffer.
    static let coalescedFrameBytes = 1024
    /// A batch this large goes to the channel at once (written, flushed at the flush time), and the next
    /// frames start a new one. Small enough that a loop's batches stay in the CPU's cache (1000 busy
    /// connections × 8 KiB), large enough that handing one over is rare (one pipeline pass per ~80 messages).
    static let batchFlushBytes = 8 * 1024

    /// Frames to hand to the channel now (written, not flushed), in order.
    enum Handoff: Equatable {
        case none
        case one(ByteBuffer)
        case two(ByteBuffer, ByteBuffer)
    }

    /// When the connection's flush should run.
    enum FlushTime: Equatable {
        /// After the frames of this loop tick (a quiet connection, or coalescing off).
        case endOfTick
        /// At this time (a busy connection): deliveries until then share one write.
        case at(NIODeadline)
    }

    /// What to do with a frame.
    enum Step: Equatable {
        /// Over `limits.max_outbound_bytes` (the channel is not writable): close with 4008.
        case slowConsumer
        /// Hand `handoff` to the channel, and ask the loop's flusher for a flush at `flush` (nil: one is
        /// already asked for).
        case write(Handoff, flush: FlushTime?)
    }

    /// What a flush does.
    enum Flush: Equatable {
        /// Nothing was written since the last flush (a control frame flushed it already).
        case nothing
        /// Flush what was handed to the channel.
        case flush
        /// Write the held frames and flush.
        case writeAndFlush(ByteBuffer)
    }

    /// The longest a delivery to a busy connection waits (`websocket.write_coalescing_us`).
    let maxDelay: TimeAmount
    /// The channel's writability, from `channelWritabilityChanged` (asking the channel on every delivery
    /// cost 10% of fan-out CPU). Not writable means more than `limits.max_outbound_bytes` are queued.
    var isWritable = true
    /// Whether `pending` is this connection's own batch (appended to in place) rather than the one shared
    /// frame. (A flag next to one optional, not an enum: the batch grows in place, without a copy.)
    private var isBatch = false
    /// A flush is asked for and has not run yet.
    private(set) var isFlushScheduled = false
    /// Frames were handed to the channel since the last flush.
    private var hasUnflushed = false
    private var pending: ByteBuffer?
    /// When the last flush ran (nil: never).
    private var lastFlush: NIODeadline?
    /// When the last message before the last flush arrived, as far as the writer knows: the flush time
    /// when it carried several (they kept coming), else the one message's arrival (nil: never).
    private var lastArrival: NIODeadline?
    /// When the flush pending was asked for: the arrival of the first frame it carries.
    private var requestedAt = NIODeadline.uptimeNanoseconds(0)
    /// A second frame arrived before the pending flush.
    private var holdsSeveral = false

    init(maxDelay: TimeAmount) {
        self.maxDelay = maxDelay
    }

    /// A complete frame for this client; `now` is read only when the frame asks for a flush.
    mutating func enqueue(_ frame: ByteBuffer, now: @autoclosure () -> NIODeadline) -> Step {
        guard self.isWritable else { return .slowConsumer }
        let handoff = self.append(frame)
        if handoff != .none { self.hasUnflushed = true }
        guard !self.isFlushScheduled else {
            self.holdsSeveral = true
            return .write(handoff, flush: nil)
        }
        self.isFlushScheduled = true
        guard self.maxDelay > .zero else { return .write(handoff, flush: .endOfTick) }
        let now = now()
        self.requestedAt = now
        guard let lastArrival = self.lastArrival, let lastFlush = self.lastFlush,
              now < lastArrival + self.maxDelay, now < lastFlush + self.maxDelay
        else { return .write(handoff, flush: .endOfTick) }
        return .write(handoff, flush: .at(lastFlush + self.maxDelay))
    }

    /// The flush asked for is due.
    mutating func flush(now: NIODeadline) -> Flush {
        self.isFlushScheduled = false
        self.lastArrival = self.holdsSeveral ? now : self.requestedAt
        self.holdsSeveral = false
        defer { self.hasUnflushed = false }
        if let held = self.take() {
            self.lastFlush = now
            return .writeAndFlush(held)
        }
        guard self.hasUnflushed else { return .nothing }
        self.lastFlush = now
        return .flush
    }

    /// What is held, for a write the caller flushes at once (a control frame or the close frame goes out
    /// after it). The flush already asked for then finds nothing to do.
    mutating func takeForImmediateFlush() -> ByteBuffer? {
        self.hasUnflushed = false
        return self.take()
    }

    private mutating func append(_ frame: ByteBuffer) -> Handoff {
        guard frame.readableBytes <= Self.coalescedFrameBytes else {
            guard let held = self.take() else { return .one(frame) }
            return .two(held, frame)
        }
        guard self.pending != nil else {
            self.pending = frame
            return .none
        }
        if !self.isBatch {
            // The second small frame: the shared first one is copied into a buffer of this connection's
            // own, with room for a few more (one allocation, from the frame's allocator).
            self.isBatch = true
            self.pending!.reserveCapacity(minimumWritableBytes: 3 * (self.pending!.readableBytes + frame.readableBytes))
        }
        self.pending!.writeImmutableBuffer(frame)
        if self.pending!.readableBytes >= Self.batchFlushBytes, let batch = self.take() { return .one(batch) }
        return .none
    }

    private mutating func take() -> ByteBuffer? {
        defer {
            self.pending = nil
            self.isBatch = false
        }
        return self.pending
    }
}
