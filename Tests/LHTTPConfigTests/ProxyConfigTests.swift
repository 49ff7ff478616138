import Foundation
import Testing
@testable import LHTTPConfig

@Suite("proxy: and tls: configuration")
struct ProxyConfigTests {
    @Test("the sections decode from YAML, with every default")
    func decoding() throws {
        // Validation checks the files exist (their PEM is read at start-up, ApplicationPlan).
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("lhttpd-tls-\(UUID().uuidString).pem").path
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let config = try ConfigLoader.load(yaml: """
            proxy:
              backend: http://127.0.0.1:9000/app
              routes:
                - {prefix: /api/, backend: "http://127.0.0.1:9100", strip_prefix: true}
              trusted_proxies: [10.0.0.0/8, "::1"]
              websocket: true
            tls: {cert_file: "\(file)", key_file: "\(file)", redirect_from: "0.0.0.0:80"}
            """)
        #expect(config.proxy.backend == "http://127.0.0.1:9000/app")
        #expect(config.proxy.routes == [ProxyRouteConfig(prefix: "/api/", backend: "http://127.0.0.1:9100", stripPrefix: true)])
        #expect(config.proxy.connectTimeoutMs == 1000 && config.proxy.firstByteTimeoutMs == 30_000 && config.proxy.idleTimeoutMs == 60_000)
        #expect(config.proxy.maxRequestBodyBytes == 104_857_600)
        #expect(config.proxy.websocket)
        #expect(config.tls.redirectFrom == ListenAddress(host: "0.0.0.0", port: 80))
        #expect(GatewayConfig().proxy.isEnabled == false && GatewayConfig().tls.isEnabled == false)
        #expect(throws: ConfigError.self) { _ = try ConfigLoader.load(yaml: "proxy: {bakend: http://x}") }
        #expect(throws: ConfigError.self) { _ = try ConfigLoader.load(yaml: "tls: {redirect_from: nonsense}") }
    }

    @Test("bad proxy and tls settings are each reported by key")
    func validation() throws {
        var config = GatewayConfig()
        config.proxy = ProxyConfig(
            backend: "ftp://x", routes: [
                ProxyRouteConfig(prefix: "api", backend: "http://u:p@h"), ProxyRouteConfig(prefix: "api", backend: "http://h?x=1"),
            ],
            connectTimeoutMs: 0, trustedProxies: ["10.0.0.0/33", "1.2.3.4"]
        )
        config.tls = TLSConfig(certFile: "/nonexistent/cert.pem", keyFile: "", redirectFrom: ListenAddress(host: "127.0.0.1", port: 8081))
        let problems = config.validate()
        let keys = problems.map(\.keyPath)
        for key in [
            "proxy.backend", "proxy.routes[0].prefix", "proxy.routes[0].backend", "proxy.routes[1].prefix", "proxy.routes[1].backend",
            "proxy.connect_timeout_ms", "proxy.trusted_proxies[0]", "tls.key_file", "tls.cert_file", "tls.redirect_from",
        ] {
            #expect(keys.contains(key), "\(key) in \(keys)")
        }
        #expect(!keys.contains("proxy.trusted_proxies[1]"))
        #expect(problems.contains { $0.keyPath == "tls.cert_file" && $0.message.contains("/nonexistent/cert.pem") })
        #expect(GatewayConfig(proxy: ProxyConfig(websocket: true)).validate().map(\.keyPath) == ["proxy.websocket"])
    }

    @Test("IP networks: v4, v6, single addresses, a v4-mapped v6 peer")
    func networks() throws {
        let ten = try #require(IPNetwork(parsing: "10.0.0.0/8"))
        #expect(ten.contains(IPNetwork.addressBytes("10.200.3.4")!))
        #expect(!ten.contains(IPNetwork.addressBytes("11.0.0.1")!))
        #expect(ten.contains([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 10, 1, 2, 3]))
        let loopback = try #require(IPNetwork(parsing: "::1"))
        #expect(loopback.contains(IPNetwork.addressBytes("::1")!))
        #expect(!loopback.contains(IPNetwork.addressBytes("127.0.0.1")!))
        #expect(IPNetwork(parsing: "192.168.1.77/24")?.description == "192.168.1.0/24")
        for bad in ["10.0.0.0/33", "10.0.0", "::1/129", "10.0.0.0/", "10.0.0.0/+8", "host"] {
            #expect(IPNetwork(parsing: bad) == nil, "\(bad)")
        }
    }
}
