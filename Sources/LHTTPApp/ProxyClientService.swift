import LHTTPUpstream
import ServiceLifecycle

/// The reverse proxy's client as a service: it stops after the server (services stop in reverse order),
/// so the exchanges of connections still open are cut only once the listener is closed.
struct ProxyClientService: Service {
    let client: CurlProxyClient

    func run() async throws {
        try? await gracefulShutdown()
        await self.client.shutdown()
    }
}
