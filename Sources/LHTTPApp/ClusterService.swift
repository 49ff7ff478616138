import LHTTPNATS
import ServiceLifecycle

/// The cluster link as a service: connects at start (in the background: local delivery works
/// meanwhile) and, last of all on a graceful shutdown, writes what it holds and closes.
struct ClusterService: Service {
    let broker: NATSBroker

    func run() async throws {
        self.broker.start()
        try? await gracefulShutdown()
        await self.broker.shutdown()
    }
}
