import CCurl
import LHTTPGateway
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// An asynchronous HTTP client over libcurl's multi interface, on one dedicated thread.
///
/// Requests enter a queue bounded in count and in bytes under a lock and wake the thread with
/// `curl_multi_wakeup`; the thread runs at most `maxInFlight` transfers at once on one multi handle
/// (whose connection cache keeps backend connections alive across requests), waits in
/// `curl_multi_poll`, and hands each completion to the event loop that asked. No event loop ever
/// blocks on it, and nothing polls: idle and shutdown waiters are continuations the thread resumes.
///
/// Call ``shutdown()`` when done: the thread holds the client until then, so a client dropped
/// without it keeps its thread (and its backend connections) for the life of the process.
public final class CurlHTTPClient: Sendable {
    /// Bounds and timeouts; `upstream:` in the config (`webhook:` for the webhook client).
    public struct Configuration: Sendable {
        /// Transfers running at once; more wait in the queue.
        public var maxInFlight: Int
        /// Requests waiting for a transfer slot; past it, ``UpstreamError/queueFull``.
        public var maxQueued: Int
        /// Bytes of the requests waiting for a slot: each one's URL, headers (as `name: value\r\n`) and
        /// body. A request that would pass it fails with ``UpstreamError/queueFull``, also when it alone
        /// is larger. Running transfers are not counted (libcurl holds a copy of each body, at most
        /// `maxInFlight` of them).
        public var maxQueuedBytes: Int
        /// Largest response body read; past it, ``UpstreamError/responseTooLarge(limit:)``.
        public var maxResponseBytes: Int
        /// Whole-request timeout, unless the request sets its own.
        public var timeoutMilliseconds: Int
        public var connectTimeoutMilliseconds: Int
        /// The longest the thread sleeps in `curl_multi_poll` when nothing wakes it (libcurl's own timers
        /// and `curl_multi_wakeup` cut it short): work must never wait for this to pass.
        public var idlePollMilliseconds: Int32 = 1000

        public init(
            maxInFlight: Int = 256,
            maxQueued: Int = 10_000,
            maxQueuedBytes: Int = 16 << 20,
            maxResponseBytes: Int = 1 << 20,
            timeoutMilliseconds: Int = 5_000,
            connectTimeoutMilliseconds: Int = 1_000
        ) {
            self.maxInFlight = maxInFlight
            self.maxQueued = maxQueued
            self.maxQueuedBytes = maxQueuedBytes
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
        /// Requests refused by `maxQueued` or `maxQueuedBytes`.
        public var rejectedQueueFull = 0
    }

    public let configuration: Configuration
    private let logger: Logger
    private let state = NIOLockedValueBox(CurlClientState())
    /// Tasks in ``waitUntilIdle(until:clock:)``; signalled (outside the state's lock) whenever the last
    /// queued or running call finishes.
    let idle = ConditionWaiters()
    private let multi = CurlMultiHandle()

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_ALL)) }()

    public init(configuration: Configuration = Configuration(), logger: Logger = Logger(label: "lhttpd.upstream")) {
        Self.globalInit
        self.configuration = configuration
        self.logger = logger
        let thread = Thread { [self] in self.runLoop() }
        thread.name = "lhttpd-curl"
        thread.start()
    }

    /// Runs `body` with a new client and shuts the client down when `body` returns or throws (read what
    /// you need inside `body`: calls the shutdown aborts fail with ``UpstreamError/shutdown``).
    public static func with<T>(
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "lhttpd.upstream"),
        _ body: (CurlHTTPClient) async throws -> T
    ) async throws -> T {
        let client = CurlHTTPClient(configuration: configuration, logger: logger)
        do {
            let result = try await body(client)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }

    /// Sends `request`; `completion` runs on `eventLoop`, exactly once.
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
    public var pendingCount: Int { self.state.withLockedValue { $0.pendingCount } }

    /// Bytes of the requests queued (counted as for `Configuration.maxQueuedBytes`).
    public var queuedBytes: Int { self.state.withLockedValue { $0.queuedBytes } }

    /// Tasks inside ``waitUntilIdle(until:clock:)`` (for tests: none may stay behind).
    var idleWaiterCount: Int { self.idle.count }

    /// The state under the lock, for this type's extensions.
    func withState<T>(_ body: (inout CurlClientState) -> T) -> T {
        self.state.withLockedValue(body)
    }

    private func enqueue(_ request: UpstreamRequest, completion: @escaping @Sendable (Result<UpstreamResponse, UpstreamError>) -> Void) {
        let pending = CurlPending(request: request, completion: completion)
        let refusal = self.state.withLockedValue { state in
            let refusal = state.enqueue(pending, maxQueued: self.configuration.maxQueued, maxQueuedBytes: self.configuration.maxQueuedBytes)
            // Under the lock and only while running, so it cannot race with the thread's `cleanup()`.
            if refusal == nil { self.multi.wakeup() }
            return refusal
        }
        if let refusal { completion(.failure(refusal)) }
    }

    /// Stops the thread: queued requests fail with ``UpstreamError/shutdown``, running ones are aborted
    /// (their completions get `.shutdown` too). Returns once the thread has failed them all and freed
    /// the multi handle: the thread itself resumes every caller, the first and any concurrent or later
    /// one. Idempotent; not cancellable (it is prompt: nothing waits for a backend). The thread keeps
    /// the client alive until then.
    public func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let gone = self.state.withLockedValue { state in
                switch state.lifecycle {
                case .stopped:
                    return true
                case .running:
                    state.lifecycle = .stopping
                    self.multi.wakeup()
                case .stopping:
                    break
                }
                state.shutdownWaiters.append(continuation)
                return false
            }
            if gone { continuation.resume() }
        }
    }

    // MARK: The curl thread

    private func runLoop() {
        var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]
        while true {
            let (admitted, stopping) = self.state.withLockedValue { state in
                (state.take(self.configuration.maxInFlight - active.count), state.lifecycle != .running)
            }
            if stopping {
                // Taken in the same breath as the stop: they fail like the rest of the queue below.
                for pending in admitted { pending.completion(.failure(.shutdown)) }
                if self.state.withLockedValue({ $0.finished(admitted.count) }) { self.idle.signal() }
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
            self.multi.poll(timeoutMilliseconds: self.configuration.idlePollMilliseconds)
        }
        // Shutting down: abort what runs, fail what waits.
        for (easy, transfer) in active {
            self.multi.remove(easy)
            self.finish(transfer, .failure(.shutdown))
        }
        active.removeAll()
        let queued = self.state.withLockedValue { $0.take(Int.max) }
        for pending in queued { pending.completion(.failure(.shutdown)) }
        if self.state.withLockedValue({ $0.finished(queued.count) }) { self.idle.signal() }
        // No wake-up can come any more (the client is not running): free the handle, then, as the
        // thread's last act, let every `shutdown()` caller return.
        self.multi.cleanup()
        let waiters = self.state.withLockedValue { state in
            state.lifecycle = .stopped
            defer { state.shutdownWaiters.removeAll() }
            return state.shutdownWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    private func start(_ pending: CurlPending, into active: inout [UnsafeMutableRawPointer: CurlTransfer]) {
        do {
            let transfer = try CurlTransfer(request: pending.request, configuration: self.configuration, completion: pending.completion)
            try self.multi.add(transfer.easy)
            active[transfer.easy] = transfer
            self.state.withLockedValue { $0.stats.started += 1 }
        } catch {
            let idle = self.state.withLockedValue { state in
                state.stats.failed += 1
                return state.finished()
            }
            pending.completion(.failure(error))
            if idle { self.idle.signal() }
        }
    }

    private func finish(_ transfer: CurlTransfer, _ result: Result<UpstreamResponse, UpstreamError>) {
        let idle = self.state.withLockedValue { state in
            if case .success = result { state.stats.succeeded += 1 } else { state.stats.failed += 1 }
            return state.finished()
        }
        if case .failure(let error) = result {
            self.logger.debug("upstream call failed", metadata: ["lhttp.error": "\(error)"])
        }
        transfer.completion(result)
        if idle { self.idle.signal() }
    }
}
