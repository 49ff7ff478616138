import NIOCore

/// The hub's delivery point on one event loop: a publication reaches each loop with subscribers once
/// (one `execute` from another loop), and its frame is handed to every subscriber there.
final class LoopSlot: Sendable {
    let index: Int
    let eventLoop: any EventLoop

    init(index: Int, eventLoop: any EventLoop) {
        self.index = index
        self.eventLoop = eventLoop
    }

    /// Hands `frame` to every subscriber; called on `eventLoop`.
    func deliver(_ frame: ByteBuffer, to subscribers: ContiguousArray<Subscriber>) {
        self.eventLoop.preconditionInEventLoop()
        for subscriber in subscribers {
            subscriber.sink.enqueueFrame(frame)
        }
    }
}
