import NIOCore

/// Everything of a ``NATSClient`` that threads other than its event loop touch, kept behind the client's
/// one lock: the outbox publishers append to, the server's `max_payload` they check against, the sid
/// counter `subscribe` draws from, and the status counters `currentStatus` reads.
///
/// The event loop owns the link and copies what the status shows of it here after every event
/// (``NATSLinkStateMachine/Snapshot``), so a reader gets one consistent snapshot in one acquisition.
struct NATSClientShared {
    /// What a publication became.
    enum Admission: Equatable {
        case appended(NATSOutbox.Append)
        /// Over the server's `max_payload`: nothing queued.
        case tooLarge(maxPayload: Int)
    }

    var outbox: NATSOutbox
    /// The largest payload the server accepts (from its INFO; 1 MiB until connected).
    var maxPayload = 1 << 20
    private var lastSID: UInt64 = 0
    /// The link's part of the status, written by the event loop.
    var link = NATSLinkStateMachine.Snapshot()
    var receivedMessages = 0

    init(maxPendingBytes: Int) {
        self.outbox = NATSOutbox(limit: maxPendingBytes)
    }

    /// Checks the size against `max_payload` and queues, in one acquisition of the lock.
    mutating func admit(_ payload: ByteBuffer, to subjects: [String]) -> Admission {
        guard payload.readableBytes <= self.maxPayload else { return .tooLarge(maxPayload: self.maxPayload) }
        return .appended(self.outbox.append(subjects: subjects, payload: payload))
    }

    mutating func nextSID() -> UInt64 {
        self.lastSID += 1
        return self.lastSID
    }

    var status: NATSClient.Status {
        NATSClient.Status(
            state: self.link.state, server: self.link.server, connections: self.link.connections,
            subscriptions: self.link.subscriptions, pendingBytes: self.outbox.pendingBytes,
            publishedMessages: self.outbox.publishedMessages, droppedMessages: self.outbox.droppedMessages,
            receivedMessages: self.receivedMessages, lastError: self.link.lastError
        )
    }
}
