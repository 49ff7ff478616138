import Foundation
import NIOSSL

/// A self-signed certificate for `localhost` and 127.0.0.1, made by the `openssl` command line tool for
/// one test, in its own folder.
public struct TestCertificate: Sendable {
    public let directory: URL
    public let certFile: String
    public let keyFile: String

    /// Makes a new key and certificate (a new one each call: two are never the same).
    public static func make(name: String = "server") throws -> TestCertificate {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lhttpd-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificate = TestCertificate(
            directory: directory, certFile: directory.appendingPathComponent("\(name).crt").path, keyFile: directory.appendingPathComponent("\(name).key").path
        )
        try certificate.regenerate()
        return certificate
    }

    /// Writes a new key and certificate over the files (as a renewal does).
    public func regenerate() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", self.keyFile, "-out", self.certFile,
        ]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let output = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestFailure("openssl failed: \(String(decoding: output, as: UTF8.self))")
        }
    }

    /// A client context that trusts exactly this certificate (as it is on disk now).
    public func clientContext(alpn: [String] = ["http/1.1"]) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(self.certFile))
        configuration.applicationProtocols = alpn
        return try NIOSSLContext(configuration: configuration)
    }

    public func remove() {
        try? FileManager.default.removeItem(at: self.directory)
    }
}
