import NIOConcurrencyHelpers
import NIOSSL

/// The listener's certificate chain and key (`tls.cert_file`, `tls.key_file`) as a TLS context, re-read
/// on demand (SIGHUP).
///
/// Each new connection takes the context current at its accept; a reload swaps it under the lock, so open
/// connections keep the one they started with and nothing is dropped. HTTP/1.1 only: ALPN offers `http/1.1`.
public final class TLSCertificates: Sendable {
    public let certFile: String
    public let keyFile: String
    private let context: NIOLockedValueBox<NIOSSLContext>

    /// Reads both files. - Throws: ``ServerError/tls(_:)`` naming the file that does not load.
    public init(certFile: String, keyFile: String) throws(ServerError) {
        self.certFile = certFile
        self.keyFile = keyFile
        self.context = NIOLockedValueBox(try Self.load(certFile: certFile, keyFile: keyFile))
    }

    /// The context new connections use.
    var current: NIOSSLContext { self.context.withLockedValue { $0 } }

    /// Reads both files again; on failure the current certificate stays.
    public func reload() throws(ServerError) {
        let fresh = try Self.load(certFile: self.certFile, keyFile: self.keyFile)
        self.context.withLockedValue { $0 = fresh }
    }

    private static func load(certFile: String, keyFile: String) throws(ServerError) -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certFile)
        } catch {
            throw .tls("tls.cert_file \(certFile): not a PEM certificate chain (\(error))")
        }
        guard !chain.isEmpty else { throw .tls("tls.cert_file \(certFile): no certificate in the file") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        } catch {
            throw .tls("tls.key_file \(keyFile): not a PEM private key (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw .tls("tls.key_file \(keyFile) does not match tls.cert_file \(certFile) (\(error))")
        }
    }
}
