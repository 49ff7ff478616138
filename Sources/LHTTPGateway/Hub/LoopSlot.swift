import NIOCore

/// Per-event-loop delivery state: one `execute` per publish per loop, one flush per connection per tick.
final class LoopSlot: Sendable {
    let index: Int
    let eventLoop: any EventLoop
    private let batch: NIOLoopBoundBox<FlushBatch>

    /// Subscribers written to since the last flush pass. Touched only on `eventLoop`.
    private final class FlushBatch {
        var pending: [Subscriber] = []
    }

    init(index: Int, eventLoop: any EventLoop) {
        self.index = index
        self.eventLoop = eventLoop
        self.batch = .makeBoxSendingValue(FlushBatch(), eventLoop: eventLoop)
    }

    /// Writes `frame` to every subscriber; called on `eventLoop`.
    func deliver(_ frame: ByteBuffer, to subscribers: ContiguousArray<Subscriber>) {
        for subscriber in subscribers {
            subscriber.sink.value.enqueueFrame(frame)
        }
    }

    /// Remembers `subscriber` for the next flush pass, scheduling the pass if none is pending.
    func scheduleFlush(_ subscriber: Subscriber) {
        let batch = self.batch.value
        batch.pending.append(subscriber)
        if batch.pending.count == 1 {
            self.eventLoop.execute { self.flushAll() }
        }
    }

    private func flushAll() {
        let batch = self.batch.value
        let subscribers = batch.pending
        batch.pending.removeAll(keepingCapacity: true)
        for subscriber in subscribers {
            subscriber.sink.value.flushFrames()
        }
    }
}
