import LHTTPGateway
import ServiceLifecycle

/// Drops expired history (and idle empty channel records) every `interval` on `clock`, until a graceful
/// shutdown; reads and publications expire their own channel as they go, this covers channels nobody
/// touches any more.
struct HistorySweepService: Service {
    let history: ChannelHistory
    let interval: Duration
    let clock: any Clock<Duration>

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.clock.sleep(for: self.interval)
                } catch {
                    return
                }
                self.history.sweep()
            }
        }
    }
}
