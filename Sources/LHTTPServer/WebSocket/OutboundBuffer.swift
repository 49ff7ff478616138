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
    /// Whether `pending` is this connection's own batch (appended to in place) rather than the tick's one
    /// shared frame. (A flag next to one optional, not an enum: the batch grows in place, without a copy,
    /// and an idle connection keeps 26 bytes here, not 50.)
    private var isBatch = false
    private var pending: ByteBuffer?

    /// Adds a complete frame.
    mutating func append(_ frame: ByteBuffer) -> Handoff {
        guard frame.readableBytes <= Self.coalescedFrameBytes else {
            guard let held = self.take() else { return .one(frame) }
            return .two(held, frame)
        }
        guard self.pending != nil else {
            self.pending = frame
            return .none
        }
        if !self.isBatch {
            // The second small frame of the tick: the shared first one is copied into a buffer of this
            // connection's own, with room for a few more (one allocation, from the frame's allocator).
            self.isBatch = true
            self.pending!.reserveCapacity(minimumWritableBytes: 3 * (self.pending!.readableBytes + frame.readableBytes))
        }
        self.pending!.writeImmutableBuffer(frame)
        if self.pending!.readableBytes >= Self.batchFlushBytes, let batch = self.take() { return .one(batch) }
        return .none
    }

    /// The frames held since the last flush, as one buffer (nil: none).
    mutating func take() -> ByteBuffer? {
        defer {
            self.pending = nil
            self.isBatch = false
        }
        return self.pending
    }
}
