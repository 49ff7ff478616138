import NIOCore

/// A request waiting for a transfer slot, with what it costs against `maxQueuedBytes`.
struct CurlPending: Sendable {
    var request: UpstreamRequest
    var completion: @Sendable (Result<UpstreamResponse, UpstreamError>) -> Void
    var bytes: Int

    init(request: UpstreamRequest, completion: @escaping @Sendable (Result<UpstreamResponse, UpstreamError>) -> Void) {
        self.request = request
        self.completion = completion
        self.bytes = Self.queuedBytes(of: request)
    }

    /// What a waiting request holds, roughly: its URL, each header as `name: value\r\n`, and its body.
    /// (Swift string and array overhead is not counted: the bound is on what callers control.)
    static func queuedBytes(of request: UpstreamRequest) -> Int {
        request.url.utf8.count
            + request.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
            + (request.body?.readableBytes ?? 0)
    }
}

/// Everything ``CurlHTTPClient`` shares between callers and its curl thread, under its one lock.
///
/// Mutations that can bring queued + running to zero return the idle waiters to resume; the caller
/// resumes them after releasing the lock.
struct CurlClientState {
    enum Lifecycle {
        case running
        /// `shutdown()` was called; the thread is failing what it holds.
        case stopping
        /// The thread is gone.
        case stopped
    }

    /// Oldest first; a ring, so taking from the front costs the same however long the queue is.
    private(set) var queue = CircularBuffer<CurlPending>()
    private(set) var queuedBytes = 0
    /// Taken from the queue and not finished yet.
    private(set) var running = 0
    var lifecycle = Lifecycle.running
    var stats = CurlHTTPClient.Stats()
    /// `shutdown()` callers waiting for the thread to exit.
    var shutdownWaiters: [CheckedContinuation<Void, Never>] = []

    var pendingCount: Int { self.queue.count + self.running }

    /// Queues `pending` unless it passes a bound; returns the refusal otherwise.
    mutating func enqueue(_ pending: CurlPending, maxQueued: Int, maxQueuedBytes: Int) -> UpstreamError? {
        guard case .running = self.lifecycle else { return .shutdown }
        // Subtraction, not addition: a huge body cannot overflow the sum.
        guard self.queue.count < maxQueued, pending.bytes <= maxQueuedBytes - self.queuedBytes else {
            self.stats.rejectedQueueFull += 1
            return .queueFull
        }
        self.queue.append(pending)
        self.queuedBytes += pending.bytes
        return nil
    }

    /// Removes and returns up to `limit` waiting requests, oldest first, counting them as running.
    /// (Removing, not just advancing an index: a finished request's completion must not stay
    /// referenced by the queue.)
    mutating func take(_ limit: Int) -> [CurlPending] {
        let count = min(limit, self.queue.count)
        guard count > 0 else { return [] }
        var taken: [CurlPending] = []
        taken.reserveCapacity(count)
        for _ in 0..<count {
            let pending = self.queue.removeFirst()
            self.queuedBytes -= pending.bytes
            taken.append(pending)
        }
        self.running += count
        return taken
    }

    /// `count` running requests finished (or failed to start). - Returns: whether the client is idle now.
    mutating func finished(_ count: Int = 1) -> Bool {
        self.running -= count
        return self.pendingCount == 0
    }
}
