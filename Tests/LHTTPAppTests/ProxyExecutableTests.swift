import Foundation
import LHTTPConfig
import LHTTPTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// The `lhttpd` executable as a reverse proxy with TLS: its memory during a 1 GiB download, and SIGHUP.
@Suite("Reverse proxy and TLS, the lhttpd executable")
struct ProxyExecutableTests {
    /// VmRSS of `pid`, in bytes.
    static func residentBytes(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        else { throw TestFailure("no VmRSS for \(pid)") }
        return kib * 1024
    }

    @Test("a 1 GiB download through the proxy keeps lhttpd's memory within a few MiB of idle, over TLS too")
    func largeDownload() async throws {
        let backend = try await StreamingBackend.start()
        defer { Task { await backend.stop() } }
        let certificate = try TestCertificate.make()
        defer { certificate.remove() }
        for tls in [false, true] {
            let file = try TemporaryFile("""
                listen: 127.0.0.1:0
                proxy: {backend: "http://127.0.0.1:\(backend.port)"}
                \(tls ? "tls: {cert_file: \"\(certificate.certFile)\", key_file: \"\(certificate.keyFile)\"}" : "")
                """)
            defer { file.remove() }
            let child = try ChildProcess(["--config", file.path])
            defer { child.process.terminate() }
            let port = try #require(Int(try await child.await(#"lhttp\.port=(\d+)"#)))
            let pid = child.process.processIdentifier
            let client = try await HTTPTestClient.connect(port: port, tls: tls ? try certificate.clientContext() : nil)
            // Warm: one small exchange, so libcurl, the TLS context and the loops are set up before "idle".
            #expect(try await client.request(.GET, "/warm").status == 200)
            let idle = try Self.residentBytes(pid)
            let size = tls ? 256 << 20 : 1 << 30
            try await client.sendHead(.GET, "/bytes?n=\(size)&length=1")
            try await client.sendEnd()
            var peak = idle
            var count = 0
            var head: HTTPResponseHead?
            loop: while let part = await client.next() {
                switch part {
                case .head(let received): head = received
                case .body(let chunk):
                    count += chunk.readableBytes
                    // Sampled every 16 MiB of the body.
                    if count >> 24 != (count - chunk.readableBytes) >> 24 { peak = max(peak, try Self.residentBytes(pid)) }
                case .end: break loop
                }
            }
            #expect(head?.status == .ok)
            #expect(count == size)
            let growth = peak - idle
            print("proxy download (tls: \(tls)): \(size >> 20) MiB, lhttpd RSS idle \(idle >> 20) MiB, peak growth \(growth >> 10) KiB")
            #expect(growth < 16 << 20, "RSS grew \(growth >> 10) KiB during the download")
            await client.close()
        }
    }

    @Test("SIGHUP makes lhttpd serve a renewed certificate to new connections, without a restart")
    func sighup() async throws {
        let certificate = try TestCertificate.make()
        defer { certificate.remove() }
        let file = try TemporaryFile("""
            listen: 127.0.0.1:0
            tls: {cert_file: "\(certificate.certFile)", key_file: "\(certificate.keyFile)"}
            """)
        defer { file.remove() }
        let child = try ChildProcess(["--config", file.path])
        defer { child.process.terminate() }
        let port = try #require(Int(try await child.await(#"lhttp\.port=(\d+)"#)))
        let old = try certificate.clientContext()
        let open = try await HTTPTestClient.connect(port: port, tls: old)
        #expect(try await open.request(.GET, "/healthz").status == 200)
        try certificate.regenerate()
        kill(child.process.processIdentifier, SIGHUP)
        _ = try await child.await("certificate reloaded")
        let renewed = try await HTTPTestClient.connect(port: port, tls: try certificate.clientContext())
        #expect(try await renewed.request(.GET, "/healthz").status == 200)
        #expect(try await open.request(.GET, "/healthz").status == 200)
        #expect(child.process.isRunning)
        await open.close()
        await renewed.close()
    }
}
