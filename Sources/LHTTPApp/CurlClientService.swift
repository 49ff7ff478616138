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
        if !Task.isCancelled, !(await self.client.waitUntilIdle(timeout: self.budget.remaining)) {
            self.logger.warning("calls still in flight after shutdown_timeout_s", metadata: ["lhttp.pending": "\(self.client.pendingCount)"])
        }
        let client = self.client
        await Task.detached { client.shutdown() }.value
    }
}
