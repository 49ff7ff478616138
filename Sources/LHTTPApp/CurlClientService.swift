import LHTTPGateway
import LHTTPUpstream
import Logging
import ServiceLifecycle

/// A libcurl client as a service: on graceful shutdown it lets the calls in flight (disconnect hooks
/// included, queued by the server's drain just before) finish within what is left of the stop budget,
/// then stops its thread.
struct CurlClientService: Service {
    let client: CurlHTTPClient
    let budget: StopBudget
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        // Cancelled (the group failed): stop at once. Shut down gracefully: wait for the calls in flight.
        if !Task.isCancelled, !(await Self.waitUntilIdle(self.client, on: self.budget.clock, within: self.budget.remaining)) {
            self.logger.warning("calls still in flight after shutdown_timeout_s", metadata: ["lhttp.pending": "\(self.client.pendingCount)"])
        }
        await self.client.shutdown()
    }

    /// Opens the budget's clock to compute a deadline on it.
    private static func waitUntilIdle<C: Clock>(_ client: CurlHTTPClient, on clock: C, within remaining: Duration) async -> Bool
    where C.Duration == Duration {
        await client.waitUntilIdle(until: clock.now.advanced(by: remaining), clock: clock)
    }
}
