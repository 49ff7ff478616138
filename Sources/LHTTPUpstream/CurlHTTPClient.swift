import CCurl
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// An asynchronous HTTP client over libcurl's multi interface, on one dedicated thread.
///
/// Requests enter a bounded queue under a lock and wake the thread with `curl_multi_wakeup`; the thread
/// runs at most `maxInFlight` transfers at once on one multi handle (whose connection cache keeps
/// backend connections alive across requests), waits in `curl_multi_poll`, and hands each completion
/// to the event loop that asked. No event loop ever blocks on it.
public final class CurlHTTPClient: Sendable {
    /// Bounds and timeouts; `upstream:` in the config.
    public struct Configuration: Sendable {
        public var maxInFlight: Int
        public var maxQueued: Int
        public var maxResponseBytes: Int
        public var timeoutMilliseconds: Int
        public var connectTimeoutMilliseconds: Int

        public init(
            maxInFlight: Int = 256,
            maxQueued: Int = 10_000,
            maxResponseBytes: Int = 1 << 20,
            timeoutMilliseconds: Int = 5_000,
            connectTimeoutMilliseconds: Int = 1_000
        ) {
            self.maxInFlight = maxInFlight
            self.maxQueued = maxQueued
            self.maxResponseBytes = maxResponseBytes
            self.timeoutMilliseconds = timeoutMilliseconds
            self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        }
    }

    /// Counters since start, for logs, health and metrics.
    public struct Stats: Sendable, Equatable {
        public var started = 0
        public var succeeded = 0
        public var failed = 0
        public var rejectedQueueFull = 0
    }

    private struct Pending: Sendable {
        var request: UpstreamRequest
        var completion: @Sendable (Result<UpstreamResponse, UpstreamError>) -> Void
    }

    private struct State {
        var queue: [Pending] = []
        var shuttingDown = false
        var stats = Stats()
        /// Taken from the queue and not finished yet.
        var running = 0

        var queuedCount: Int { self.queue.count }

        /// Removes and returns up to `limit` waiting requests, oldest first. (Removing, not just advancing
        /// an index: a finished request's completion must not stay referenced by the queue.)
        mutating func take(_ limit: Int) -> [Pending] {
            let count = min(limit, self.queue.count)
            guard count > 0 else { return [] }
            let taken = Array(self.queue.prefix(count))
            self.queue.removeFirst(count)
            self.running += count
            return taken
        }
    }

    public let configuration: Configuration
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    /// The multi handle. Touched only by the curl thread, except `curl_multi_wakeup`, which libcurl
    /// documents as callable from any thread.
    private let multi: MultiHandle
    private let threadDone = DispatchSemaphore(value: 0)

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_ALL)) }()

    public init(configuration: Configuration = Configuration(), logger: Logger = Logger(label: "lhttpd.upstream")) {
        Self.globalInit
        self.configuration = configuration
        self.logger = logger
        self.multi = MultiHandle()
        let thread = Thread { [self] in self.runLoop() }
        thread.name = "lhttpd-curl"
        thread.start()
    }

    /// Sends `request`; `completion` runs on `eventLoop`.
    public func execute(
        _ request: UpstreamRequest,
        on eventLoop: any EventLoop,
        completion: @escaping @Sendable (Result<UpstreamResponse, UpstreamError>) -> Void
    ) {
        self.enqueue(request) { result in eventLoop.execute { completion(result) } }
    }

    /// Sends `request` and returns the complete response (any status) or throws ``UpstreamError``.
    public func send(_ request: UpstreamRequest) async throws(UpstreamError) -> UpstreamResponse {
        let result: Result<UpstreamResponse, UpstreamError> = await withCheckedContinuation { continuation in
            self.enqueue(request) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Counters since start.
    public var stats: Stats { self.state.withLockedValue { $0.stats } }

    /// Requests queued or running.
    public var pendingCount: Int {
        self.state.withLockedValue { $0.queue.count + $0.running }
    }

    /// Waits until no request is queued or running (a graceful stop lets calls in flight finish).
    /// - Returns: whether the client became idle before `timeout`.
    public func waitUntilIdle(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while self.pendingCount > 0 {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    private func enqueue(_ request: UpstreamRequest, completion: @escaping @Sendable (Result<UpstreamResponse, UpstreamError>) -> Void) {
        let refusal: UpstreamError? = self.state.withLockedValue { state in
            if state.shuttingDown { return .shutdown }
            guard state.queuedCount < self.configuration.maxQueued else {
                state.stats.rejectedQueueFull += 1
                return .queueFull
            }
            state.queue.append(Pending(request: request, completion: completion))
            // Under the lock, so it cannot race with `cleanup()` in `shutdown()`.
            self.multi.wakeup()
            return nil
        }
        if let refusal { completion(.failure(refusal)) }
    }

    /// Stops the thread: queued requests fail with ``UpstreamError/shutdown``, running ones are aborted.
    /// Blocks until the thread is gone; call it off the event loops. Idempotent. Must be called: the
    /// thread keeps the client alive until then.
    public func shutdown() {
        let first = self.state.withLockedValue { state in
            guard !state.shuttingDown else { return false }
            state.shuttingDown = true
            self.multi.wakeup()
            return true
        }
        guard first else { return }
        self.threadDone.wait()
        self.state.withLockedValue { _ in self.multi.cleanup() }
    }

    // MARK: The curl thread

    private func runLoop() {
        var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]
        while true {
            let (admitted, stopping) = self.state.withLockedValue { state in
                (state.take(self.configuration.maxInFlight - active.count), state.shuttingDown)
            }
            if stopping {
                // Taken in the same breath as the stop: they fail like the rest of the queue below.
                self.state.withLockedValue { $0.running -= admitted.count }
                for pending in admitted { pending.completion(.failure(.shutdown)) }
                break
            }
            for pending in admitted {
                self.start(pending, into: &active)
            }
            self.multi.perform()
            var finished = 0
            while let (easy, code) = self.multi.nextDone() {
                guard let transfer = active.removeValue(forKey: easy) else { continue }
                self.multi.remove(easy)
                self.finish(transfer, transfer.outcome(code))
                finished += 1
            }
            // Finished transfers freed slots: admit what waits before sleeping (its wake-up may already
            // have been consumed while the slots were full).
            if finished > 0 { continue }
            self.multi.poll(timeoutMilliseconds: 1000)
        }
        // Shutting down: abort what runs, fail what waits.
        for (easy, transfer) in active {
            self.multi.remove(easy)
            self.finish(transfer, .failure(.shutdown))
        }
        let queued = self.state.withLockedValue { state in
            defer { state.running = 0 }
            return state.take(Int.max)
        }
        for pending in queued { pending.completion(.failure(.shutdown)) }
        self.threadDone.signal()
    }

    private func start(_ pending: Pending, into active: inout [UnsafeMutableRawPointer: CurlTransfer]) {
        do {
            let transfer = try CurlTransfer(request: pending.request, configuration: self.configuration, completion: pending.completion)
            try self.multi.add(transfer.easy)
            active[transfer.easy] = transfer
            self.state.withLockedValue { $0.stats.started += 1 }
        } catch {
            self.state.withLockedValue {
                $0.stats.failed += 1
                $0.running -= 1
            }
            pending.completion(.failure(error))
        }
    }

    private func finish(_ transfer: CurlTransfer, _ result: Result<UpstreamResponse, UpstreamError>) {
        self.state.withLockedValue { state in
            if case .success = result { state.stats.succeeded += 1 } else { state.stats.failed += 1 }
            state.running -= 1
        }
        if case .failure(let error) = result {
            self.logger.debug("upstream call failed", metadata: ["lhttp.error": "\(error)"])
        }
        transfer.completion(result)
    }
}

/// The libcurl multi handle, used by the curl thread only, and `wakeup`/`cleanup` under the client's lock.
private final class MultiHandle: Sendable {
    // An opaque C handle: libcurl synchronizes `curl_multi_wakeup`; all other calls come from one thread.
    nonisolated(unsafe) private let handle: UnsafeMutableRawPointer
    private let cleaned = Atomic<Bool>(false)

    init() {
        self.handle = curl_multi_init()
        // Keep idle backend connections for reuse across requests.
        _ = lhttp_curl_multi_setopt_long(self.handle, CURLMOPT_MAXCONNECTS, 64)
    }

    func wakeup() {
        guard !self.cleaned.load(ordering: .acquiring) else { return }
        _ = curl_multi_wakeup(self.handle)
    }

    func add(_ easy: UnsafeMutableRawPointer) throws(UpstreamError) {
        let code = curl_multi_add_handle(self.handle, easy)
        guard code == CURLM_OK else {
            throw .transport(code: Int(code.rawValue), message: String(cString: curl_multi_strerror(code)))
        }
    }

    func remove(_ easy: UnsafeMutableRawPointer) {
        _ = curl_multi_remove_handle(self.handle, easy)
    }

    func perform() {
        var running: Int32 = 0
        _ = curl_multi_perform(self.handle, &running)
    }

    /// The next finished transfer, if any.
    func nextDone() -> (UnsafeMutableRawPointer, CURLcode)? {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(self.handle, &remaining) {
            if lhttp_curl_msg_is_done(message) != 0, let easy = lhttp_curl_msg_easy_handle(message) {
                return (easy, lhttp_curl_msg_result(message))
            }
        }
        return nil
    }

    func poll(timeoutMilliseconds: Int32) {
        var ready: Int32 = 0
        _ = curl_multi_poll(self.handle, nil, 0, timeoutMilliseconds, &ready)
    }

    func cleanup() {
        guard !self.cleaned.exchange(true, ordering: .acquiringAndReleasing) else { return }
        curl_multi_cleanup(self.handle)
    }
}
