import Dispatch
import Foundation
import LHTTPServer
import Logging
import ServiceLifecycle

/// SIGHUP re-reads `tls.cert_file` and `tls.key_file` (a renewed certificate takes effect without a restart:
/// new connections get it, open ones keep theirs). A file that does not load is logged and the current
/// certificate stays. Without `tls:` the signal is logged and ignored (it never stops lhttpd).
///
/// The executable runs it; in-process nodes (tests) call ``GatewayServer/reloadCertificates()`` directly.
public struct CertificateReloadService: Service {
    let server: GatewayServer
    let logger: Logger

    public init(server: GatewayServer, logger: Logger) {
        self.server = server
        self.logger = logger
    }

    public func run() async throws {
        let server = self.server
        let logger = self.logger
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler {
            guard let certificates = server.certificates else {
                logger.info("SIGHUP: no tls configured, nothing to reload")
                return
            }
            do {
                try server.reloadCertificates()
                logger.info("SIGHUP: certificate reloaded", metadata: ["lhttp.cert_file": "\(certificates.certFile)"])
            } catch {
                logger.error("SIGHUP: certificate not reloaded, the current one stays", metadata: ["lhttp.reason": "\(error)"])
            }
        }
        source.resume()
        try? await gracefulShutdown()
        source.cancel()
    }
}
