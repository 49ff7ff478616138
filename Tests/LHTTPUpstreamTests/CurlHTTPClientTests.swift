import LHTTPConfig
import LHTTPProtocol
import LHTTPTestSupport
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import LHTTPUpstream

typealias Outcome = Result<UpstreamResponse, UpstreamError>

/// The libcurl client against a real backend on 127.0.0.1: shutdown, idle waiters, queue bounds.
/// Nothing sleeps: the tests await the backend's arrivals, the client's waiters and a manual clock.
@Suite("CurlHTTPClient", .timeLimit(.minutes(1)))
struct CurlHTTPClientTests {
    let loop = MultiThreadedEventLoopGroup.singleton.next()

    /// Enqueues `request` before returning (`execute` does), so the order of calls is the queue's order.
    func call(_ client: CurlHTTPClient, _ request: UpstreamRequest) -> EventLoopFuture<Outcome> {
        let promise = self.loop.makePromise(of: Outcome.self)
        client.execute(request, on: self.loop) { promise.succeed($0) }
        return promise.futureResult
    }

    func post(_ url: String, bytes: Int = 2) -> UpstreamRequest {
        UpstreamRequest(method: "POST", url: url, body: ByteBuffer(repeating: UInt8(ascii: "x"), count: bytes))
    }

    func expectStatus(_ outcome: Outcome, _ status: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        guard case .success(let response) = outcome else {
            Issue.record("expected \(status), got \(outcome)", sourceLocation: sourceLocation)
            return
        }
        #expect(response.status == status, sourceLocation: sourceLocation)
    }

    func expectFailure(_ outcome: Outcome, _ error: UpstreamError, sourceLocation: SourceLocation = #_sourceLocation) {
        guard case .failure(let got) = outcome, got == error else {
            Issue.record("expected \(error), got \(outcome)", sourceLocation: sourceLocation)
            return
        }
    }

    // MARK: Shutdown

    @Test func shutdownFailsRunningAndQueuedCallsExactlyOnceAndReturns() async throws {
        let backend = try await HoldingBackend.start()
        var arrivals = backend.arrivals.makeAsyncIterator()
        let client = CurlHTTPClient(configuration: .init(maxInFlight: 2, timeoutMilliseconds: 30_000))
        let outcomes = NIOLockedValueBox<[Int: [Outcome]]>([:])
        for index in 0..<5 {
            client.execute(self.post(backend.url("/hold/\(index)")), on: self.loop) { result in
                outcomes.withLockedValue { $0[index, default: []].append(result) }
            }
            // The first two run (the backend holds them), the other three wait for a slot.
            if index < 2 { _ = await arrivals.next() }
        }
        #expect(client.pendingCount == 5)

        async let first: Void = client.shutdown()
        async let second: Void = client.shutdown()
        _ = await (first, second)
        // Checked before anything else can run: both returned only after the thread's last act.
        #expect(client.withState { $0.lifecycle } == .stopped)
        #expect(client.pendingCount == 0)
        #expect(client.stats.failed == 2)
        await client.shutdown()  // the thread is gone: returns at once

        // Completions hop to `loop` before shutdown returns; a task submitted now runs after them.
        try await self.loop.submit {}.get()
        let seen = outcomes.withLockedValue { $0 }
        #expect(seen.keys.sorted() == Array(0..<5))
        for (index, results) in seen.sorted(by: { $0.key < $1.key }) {
            #expect(results.count == 1, "call \(index) completed \(results.count) times")
            if let result = results.first { self.expectFailure(result, .shutdown) }
        }
        #expect(client.pendingCount == 0)
        #expect(client.queuedBytes == 0)
        #expect(client.stats.started == 2)
        #expect(client.stats.failed == 2)
        #expect(backend.requests.count == 2, "a queued call reached the backend")

        await #expect(throws: UpstreamError.shutdown) { try await client.send(self.post(backend.url("/late"))) }
        self.expectFailure(try await self.call(client, self.post(backend.url("/late"))).get(), .shutdown)
        #expect(await client.waitUntilIdle(until: .now + .seconds(1)))
        await backend.stop()
    }

    // MARK: Waiting until idle

    @Test func waitUntilIdleReturnsWhenTheLastCallFinishes() async throws {
        let backend = try await HoldingBackend.start()
        var arrivals = backend.arrivals.makeAsyncIterator()
        let client = CurlHTTPClient(configuration: .init(maxInFlight: 4, timeoutMilliseconds: 30_000))
        let clock = ManualClock()
        let calls = (0..<3).map { self.call(client, self.post(backend.url("/hold/\($0)"))) }
        for _ in 0..<3 { _ = await arrivals.next() }

        // Busy until the deadline: false, once the clock passes it.
        let early = Task { await client.waitUntilIdle(until: clock.now.advanced(by: .milliseconds(50)), clock: clock) }
        await clock.waitForSleepers(1)
        clock.advance(by: .milliseconds(50))
        #expect(await early.value == false)
        #expect(client.idleWaiterCount == 0)
        // The same on the real clock, with a short deadline.
        #expect(await client.waitUntilIdle(until: .now + .milliseconds(20)) == false)

        // Deadlines the manual clock never reaches: only the last call finishing can resume these.
        let waiters = (0..<10).map { _ in
            Task { await client.waitUntilIdle(until: clock.now.advanced(by: .seconds(3600)), clock: clock) }
        }
        await clock.waitForSleepers(10)
        #expect(client.pendingCount == 3)
        let released = ContinuousClock.now
        backend.release()
        for waiter in waiters {
            #expect(await waiter.value == true)
        }
        #expect(ContinuousClock.now - released < .seconds(5), "idle reported late")
        for call in calls { self.expectStatus(try await call.get(), 200) }
        #expect(client.pendingCount == 0)
        // Neither half of a waiter stays behind: the idle continuations and the timers are gone.
        #expect(client.idleWaiterCount == 0)
        #expect(clock.parkedCount == 0)
        await client.shutdown()
        await backend.stop()
    }

    @Test func aDeadlineInThePastAnswersAtOnce() async throws {
        let backend = try await HoldingBackend.start()
        var arrivals = backend.arrivals.makeAsyncIterator()
        let client = CurlHTTPClient(configuration: .init(timeoutMilliseconds: 30_000))
        let clock = ManualClock()
        // Idle: true, whatever the deadline.
        #expect(await client.waitUntilIdle(until: clock.now, clock: clock))
        #expect(await client.waitUntilIdle(until: .now - .seconds(1)))

        let held = self.call(client, self.post(backend.url("/hold")))
        _ = await arrivals.next()
        // Busy: false without waiting (the manual clock never moves, so a wait would never end).
        #expect(await client.waitUntilIdle(until: clock.now, clock: clock) == false)
        #expect(await client.waitUntilIdle(until: .now - .seconds(1)) == false)
        #expect(clock.parkedCount == 0)
        #expect(client.idleWaiterCount == 0)

        backend.release()
        self.expectStatus(try await held.get(), 200)
        await client.shutdown()
        await backend.stop()
    }

    @Test func cancellingAWaiterReturnsFalseAndLeavesNothingBehind() async throws {
        let backend = try await HoldingBackend.start()
        var arrivals = backend.arrivals.makeAsyncIterator()
        let client = CurlHTTPClient(configuration: .init(timeoutMilliseconds: 30_000))
        let clock = ManualClock()
        let held = self.call(client, self.post(backend.url("/hold")))
        _ = await arrivals.next()

        let waiter = Task { await client.waitUntilIdle(until: clock.now.advanced(by: .seconds(3600)), clock: clock) }
        await clock.waitForSleepers(1)
        waiter.cancel()
        #expect(await waiter.value == false)
        #expect(client.idleWaiterCount == 0)
        #expect(clock.parkedCount == 0)
        // Already cancelled before it starts: false at once, too.
        let cancelled = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await client.waitUntilIdle(until: clock.now.advanced(by: .seconds(3600)), clock: clock)
        }
        #expect(await cancelled.value == false)
        #expect(client.pendingCount == 1, "cancelling a waiter touched the call")

        backend.release()
        self.expectStatus(try await held.get(), 200)
        #expect(client.idleWaiterCount == 0)
        await client.shutdown()
        await backend.stop()
    }

    // MARK: Queue bounds

    @Test func theQueueIsCappedInBytes() async throws {
        let backend = try await HoldingBackend.start()
        var arrivals = backend.arrivals.makeAsyncIterator()
        let client = CurlHTTPClient(configuration: .init(maxInFlight: 1, maxQueuedBytes: 4096, timeoutMilliseconds: 30_000))
        let held = self.call(client, self.post(backend.url("/hold"), bytes: 3000))
        _ = await arrivals.next()
        // Running: it no longer counts against the queue.
        #expect(client.queuedBytes == 0)

        let url = backend.url("/ok")
        let queuedBig = self.call(client, self.post(url, bytes: 3000))
        #expect(client.queuedBytes == 3000 + url.utf8.count)
        let refusedBig = self.call(client, self.post(url, bytes: 3000))  // 2 × 3000 > 4096
        let headers = [(name: "X-Small", value: "1")]
        let queuedSmall = self.call(client, UpstreamRequest(method: "POST", url: url, headers: headers, body: ByteBuffer(string: "small")))
        let refusedAlone = self.call(client, self.post(url, bytes: 5000))  // larger than the cap on its own
        #expect(client.queuedBytes == 3000 + url.utf8.count + url.utf8.count + "X-Small: 1\r\n".utf8.count + 5)
        #expect(client.pendingCount == 3)

        self.expectFailure(try await refusedBig.get(), .queueFull)
        self.expectFailure(try await refusedAlone.get(), .queueFull)
        #expect(UpstreamError.queueFull.status == 503)
        #expect(client.stats.rejectedQueueFull == 2)

        backend.release()
        for call in [held, queuedBig, queuedSmall] { self.expectStatus(try await call.get(), 200) }
        #expect(await client.waitUntilIdle(until: .now + .seconds(10)))
        #expect(client.pendingCount == 0)
        #expect(client.queuedBytes == 0)
        #expect(backend.requests.count == 3)
        await client.shutdown()
        await backend.stop()
    }

    @Test func theQueueIsStillCappedInCount() async throws {
        let backend = try await HoldingBackend.start()
        var arrivals = backend.arrivals.makeAsyncIterator()
        let client = CurlHTTPClient(configuration: .init(maxInFlight: 1, maxQueued: 2, timeoutMilliseconds: 30_000))
        let held = self.call(client, self.post(backend.url("/hold")))
        _ = await arrivals.next()
        let queued = [self.call(client, self.post(backend.url("/a"))), self.call(client, self.post(backend.url("/b")))]
        self.expectFailure(try await self.call(client, self.post(backend.url("/c"))).get(), .queueFull)
        backend.release()
        for call in [held] + queued { self.expectStatus(try await call.get(), 200) }
        #expect(client.stats.rejectedQueueFull == 1)
        await client.shutdown()
        await backend.stop()
    }

    // MARK: Configuration

    @Test func maxQueuedBytesComesFromTheConfig() async throws {
        #expect(CurlHTTPClient.Configuration(UpstreamConfig(maxQueuedBytes: 1234)).maxQueuedBytes == 1234)
        #expect(CurlHTTPClient.Configuration(UpstreamConfig()).maxQueuedBytes == 16_777_216)
        let config = GatewayConfig(
            webhook: WebhookConfig(maxQueuedBytes: 5678),
            routes: ["chat": RouteConfig(url: "http://127.0.0.1:1/chat")]
        )
        let webhooks = Webhooks.make(config, limits: .default, logger: Logger(label: "test"))
        let client = try #require(webhooks.client)
        #expect(client.configuration.maxQueuedBytes == 5678)
        await client.shutdown()
    }
}
