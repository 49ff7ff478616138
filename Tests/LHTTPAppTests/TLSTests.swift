import Foundation
import LHTTPApp
import LHTTPClient
import LHTTPConfig
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import NIOHTTP1
import NIOSSL
import Testing

/// TLS on the one listener, over real sockets, with a certificate the test makes (openssl).
@Suite("TLS")
struct TLSTests {
    @Test("https, wss, /publish and the proxy on one TLS port; the backend is told https")
    func everythingOverTLS() async throws {
        let certificate = try TestCertificate.make()
        defer { certificate.remove() }
        let backend = try await StreamingBackend.start()
        defer { Task { await backend.stop() } }
        // A static file bigger than one piece: over TLS it cannot be sent from the file (sendfile).
        let asset = certificate.directory.appendingPathComponent("asset.bin")
        let bytes = (0..<(300 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try Data(bytes).write(to: asset)
        try await TestServer.with({ config in
            config.tls = TLSConfig(certFile: certificate.certFile, keyFile: certificate.keyFile)
            config.proxy.backend = "http://127.0.0.1:\(backend.port)"
            config.staticDir = certificate.directory.path
        }) { server in
            let tls = try certificate.clientContext()
            let client = try await HTTPTestClient.connect(port: server.port, tls: tls)
            let file = try await client.request(.GET, "/asset.bin")
            #expect(file.status == 200)
            #expect(file.body == bytes)
            #expect(try await client.request(.HEAD, "/asset.bin").header("content-length") == String(bytes.count))
            let page = try await client.request(.GET, "/headers", headers: [("host", "localhost:\(server.port)")])
            #expect(page.status == 200)
            let lines = page.text.lowercased().split(separator: "\n")
            #expect(lines.contains("x-forwarded-proto: https"))
            #expect(lines.contains { $0.hasPrefix("forwarded: for=127.0.0.1;proto=https") })
            let published = try await client.request(.POST, "/publish?channel=room", body: "over tls")
            #expect(published.status == 200)

            let subscriber = try await LHTTPWebSocketClient.connect(host: "localhost", port: server.port, path: "/ws", tls: tls)
            try await server.subscribe(subscriber, "room")
            #expect(try await client.request(.POST, "/publish?channel=room", body: "to wss").status == 200)
            #expect(try await subscriber.nextMessage().bodyString == "to wss")
            try await subscriber.close()

            // Plain HTTP on the TLS port gets no answer in the clear.
            let plain = try await RawConnection.connect(port: server.port)
            try await plain.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            try await server.eventually { plain.isClosed }
            #expect(!plain.text.contains("HTTP/1.1 200"))
            await client.close()
        }
    }

    @Test("ALPN picks http/1.1 for a client that offers h2 too")
    func alpn() async throws {
        let certificate = try TestCertificate.make()
        defer { certificate.remove() }
        try await TestServer.with({ config in
            config.tls = TLSConfig(certFile: certificate.certFile, keyFile: certificate.keyFile)
        }) { server in
            let both = try await HTTPTestClient.connect(port: server.port, tls: try certificate.clientContext(alpn: ["h2", "http/1.1"]))
            #expect(try await both.request(.GET, "/healthz").status == 200)
            #expect(both.negotiatedProtocol == "http/1.1")
            await both.close()
        }
    }

    @Test("a reload swaps the certificate for new connections; open ones keep theirs")
    func reload() async throws {
        let certificate = try TestCertificate.make()
        defer { certificate.remove() }
        try await TestServer.with({ config in
            config.tls = TLSConfig(certFile: certificate.certFile, keyFile: certificate.keyFile)
        }) { server in
            let oldTrust = try certificate.clientContext()
            let open = try await HTTPTestClient.connect(port: server.port, tls: oldTrust)
            #expect(try await open.request(.GET, "/healthz").status == 200)

            try certificate.regenerate()
            try server.server.reloadCertificates()
            let newTrust = try certificate.clientContext()
            let fresh = try await HTTPTestClient.connect(port: server.port, tls: newTrust)
            #expect(try await fresh.request(.GET, "/healthz").status == 200)
            #expect(try await open.request(.GET, "/healthz").status == 200, "the open connection was not dropped")
            // The old certificate is gone for new connections.
            let stale = try await HTTPTestClient.connect(port: server.port, tls: oldTrust)
            await #expect(throws: (any Error).self) { _ = try await stale.request(.GET, "/healthz") }

            // A broken file leaves the current certificate in place.
            try "not a certificate".write(toFile: certificate.certFile, atomically: true, encoding: .utf8)
            #expect(throws: (any Error).self) { try server.server.reloadCertificates() }
            let still = try await HTTPTestClient.connect(port: server.port, tls: newTrust)
            #expect(try await still.request(.GET, "/healthz").status == 200)
            for client in [open, fresh, stale, still] { await client.close() }
        }
    }

    @Test("tls.redirect_from answers 308 to the https URL of the same host and target")
    func redirect() async throws {
        let certificate = try TestCertificate.make()
        defer { certificate.remove() }
        try await TestServer.with({ config in
            config.tls = TLSConfig(certFile: certificate.certFile, keyFile: certificate.keyFile, redirectFrom: ListenAddress(host: "127.0.0.1", port: 0))
        }) { server in
            let port = try #require(server.server.redirectAddress?.port)
            let client = try await HTTPTestClient.connect(port: port)
            let moved: HTTPTestClient.Response
            do {
                moved = try await client.request(.POST, "/form?x=1", headers: [("host", "shop.example:8080")], body: "a=1")
            } catch {
                Issue.record("redirect request: \(error)")
                throw error
            }
            #expect(moved.status == 308)
            #expect(moved.header("location") == "https://shop.example:\(server.port)/form?x=1")
            let noHost = try await RawConnection.connect(port: port)
            try await noHost.send("GET / HTTP/1.0\r\n\r\n")
            try await server.eventually { noHost.isClosed }
            #expect(noHost.text.hasPrefix("HTTP/1.0 400"))
            await client.close()
        }
    }

    @Test("--check-config's checks name the certificate or key that does not load")
    func badFiles() throws {
        let certificate = try TestCertificate.make()
        defer { certificate.remove() }
        var config = GatewayConfig()
        config.tls = TLSConfig(certFile: certificate.directory.appendingPathComponent("missing.crt").path, keyFile: certificate.keyFile)
        #expect(throws: ConfigError.self) { _ = try ApplicationPlan(config) }
        #expect(config.validate().contains { $0.keyPath == "tls.cert_file" && $0.message.contains("missing.crt") })

        let garbage = certificate.directory.appendingPathComponent("garbage.key").path
        try "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".write(toFile: garbage, atomically: true, encoding: .utf8)
        config.tls = TLSConfig(certFile: certificate.certFile, keyFile: garbage)
        do {
            _ = try ApplicationPlan(config)
            Issue.record("a bad key must be refused")
        } catch {
            #expect("\(error)".contains("garbage.key"))
        }
        // A key that is not the certificate's.
        let other = try TestCertificate.make(name: "other")
        defer { other.remove() }
        config.tls = TLSConfig(certFile: certificate.certFile, keyFile: other.keyFile)
        do {
            _ = try ApplicationPlan(config)
            Issue.record("a key of another certificate must be refused")
        } catch {
            #expect("\(error)".contains("does not match"))
        }
    }
}
