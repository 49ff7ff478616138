import NIOCore

/// What a connection holds between a write and the tick's flush, and the slow-consumer signal.
///
/// **Coalescing, a measured departure from "zero copies per delivery"**: the first frame of a tick stays
/// the shared buffer (zero copy); when a second small frame (≤ ``coalescedFrameBytes``) arrives in the same
/// tick, both are copied into one per-connection buffer and later ones appended. A 100-byte copy costs
/// far less than NIO's per-write work (pipeline pass, pending-write entry, iovec, retains): +40%
/// deliveries/s under load, and a lone or large frame still goes out zero-copy. Nothing is held between
/// ticks, so an idle connection keeps no buffer.
struct OutboundBuffer {
    /// Frames up to this size are coalesced; larger ones are written as the shared buffer.
    static let coalescedFrameBytes = 1024
    /// A batch this large goes to the channel at once (so the write-buffer watermark sees it).
    static let batchFlushBytes = 64 * 1024

    /// What to hand to the channel now (written, not flushed), in order.
    enum Handoff: Equatable {
        case none
        case one(ByteBuffer)
        case two(ByteBuffer, ByteBuffer)
    }

    /// The channel's writability, from `channelWritabilityChanged` (asking the channel on every delivery
    /// cost 10% of fan-out CPU). Not writable means more than `limits.max_outbound_bytes` are queued.
    var isWritable = true
    // Two optionals rather than an enum: the batch is appended to in place, without a copy.
    private var pendingFrame: ByteBuffer?
    private var pendingBatch: ByteBuffer?

    /// Adds a complete frame.
    mutating func append(_ frame: ByteBuffer, allocator: ByteBufferAllocator) -> Handoff {
        guard frame.readableBytes <= Self.coalescedFrameBytes else {
            guard let held = self.take() else { return .one(frame) }
            return .two(held, frame)
        }
        if self.pendingBatch != nil {
            self.pendingBatch!.writeImmutableBuffer(frame)
            if self.pendingBatch!.readableBytes >= Self.batchFlushBytes, let batch = self.take() { return .one(batch) }
        } else if let first = self.pendingFrame {
            self.pendingFrame = nil
            var batch = allocator.buffer(capacity: 4 * (first.readableBytes + frame.readableBytes))
            batch.writeImmutableBuffer(first)
            batch.writeImmutableBuffer(frame)
            self.pendingBatch = batch
        } else {
            self.pendingFrame = frame
        }
        return .none
    }

    /// The frames held since the last flush, as one buffer (nil: none).
    mutating func take() -> ByteBuffer? {
        if let frame = self.pendingFrame {
            self.pendingFrame = nil
            return frame
        }
        if let batch = self.pendingBatch {
            self.pendingBatch = nil
            return batch
        }
        return nil
    }
}
