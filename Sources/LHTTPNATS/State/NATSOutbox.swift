import NIOCore

/// Publications waiting to be written to NATS, capped in bytes.
///
/// Shared by every thread that publishes (behind the client's lock); the client's event loop takes the
/// whole buffer at once and writes it. While the link is down or not writable nothing is taken, so the
/// buffer fills up to `limit`; beyond, publications are dropped and counted.
struct NATSOutbox {
    enum Append: Equatable {
        /// Queued; the caller must schedule a drain on the client's loop.
        case scheduleDrain
        /// Queued behind a drain already scheduled, or kept until the link is back.
        case queued
        /// Over the limit: dropped. `first` is true for the first drop since the link was last writable.
        case dropped(first: Bool)
    }

    let limit: Int
    private var buffer: ByteBuffer
    /// Whether a drain would write (connected, handshake done, socket writable).
    private(set) var isOpen = false
    private var drainScheduled = false
    private var droppingSinceOpen = false
    private(set) var droppedMessages = 0
    private(set) var publishedMessages = 0

    init(limit: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        self.limit = limit
        self.buffer = allocator.buffer(capacity: 0)
    }

    var pendingBytes: Int { self.buffer.readableBytes }

    /// Appends `PUB <subject> <n>\r\n<payload>\r\n` for each subject, all or none, one after the
    /// other (nothing another publisher appends can come between them).
    mutating func append(subjects: [String], payload: ByteBuffer) -> Append {
        var size = 0
        for subject in subjects { size += subject.utf8.count + payload.readableBytes + 24 }
        guard self.buffer.readableBytes + size <= self.limit else {
            self.droppedMessages += subjects.count
            defer { self.droppingSinceOpen = true }
            return .dropped(first: !self.droppingSinceOpen)
        }
        for subject in subjects {
            NATSClientOp.publish(subject: subject, payload: payload, into: &self.buffer)
        }
        self.publishedMessages += subjects.count
        guard self.isOpen, !self.drainScheduled else { return .queued }
        self.drainScheduled = true
        return .scheduleDrain
    }

    /// Appends one publication with a reply subject and/or headers (a request, a JetStream publication).
    mutating func append(subject: String, replyTo: String?, headers: NATSHeaders?, payload: ByteBuffer) -> Append {
        var frame = ByteBuffer()
        NATSClientOp.publish(subject: subject, replyTo: replyTo, headers: headers, payload: payload, into: &frame)
        guard self.buffer.readableBytes + frame.readableBytes <= self.limit else {
            self.droppedMessages += 1
            defer { self.droppingSinceOpen = true }
            return .dropped(first: !self.droppingSinceOpen)
        }
        self.buffer.writeBuffer(&frame)
        self.publishedMessages += 1
        guard self.isOpen, !self.drainScheduled else { return .queued }
        self.drainScheduled = true
        return .scheduleDrain
    }

    /// The link became usable (or not). - Returns: whether a drain must be scheduled.
    mutating func setOpen(_ open: Bool) -> Bool {
        self.isOpen = open
        guard open else { return false }
        self.droppingSinceOpen = false
        guard self.buffer.readableBytes > 0, !self.drainScheduled else { return false }
        self.drainScheduled = true
        return true
    }

    /// Everything queued, when the link is usable; nil otherwise.
    mutating func take() -> ByteBuffer? {
        self.drainScheduled = false
        guard self.isOpen, self.buffer.readableBytes > 0 else { return nil }
        let taken = self.buffer
        self.buffer = ByteBufferAllocator().buffer(capacity: 0)
        return taken
    }
}
