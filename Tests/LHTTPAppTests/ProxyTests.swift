import Foundation
import LHTTPClient
import LHTTPConfig
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// The reverse proxy over real sockets: a lhttpd node in front of a real streaming backend.
@Suite("Reverse proxy")
struct ProxyTests {
    static func withProxy(
        _ configure: @escaping (inout GatewayConfig, StreamingBackend) -> Void = { _, _ in },
        _ body: (TestServer, StreamingBackend) async throws -> Void
    ) async throws {
        let backend = try await StreamingBackend.start()
        do {
            try await TestServer.with({ config in
                config.proxy.backend = "http://127.0.0.1:\(backend.port)"
                configure(&config, backend)
            }) { server in try await body(server, backend) }
        } catch {
            await backend.stop()
            throw error
        }
        await backend.stop()
    }

    @Test("requests go through on one keep-alive connection each side; any method; the query as sent")
    func passThrough() async throws {
        try await Self.withProxy { server, backend in
            let client = try await HTTPTestClient.connect(port: server.port)
            for index in 0..<5 {
                let response = try await client.request(.GET, "/page/\(index)?a=%20b&c")
                #expect(response.status == 200)
                #expect(response.text == "ok GET /page/\(index)?a=%20b&c")
            }
            let deleted = try await client.request(.DELETE, "/thing/1")
            #expect(deleted.text == "ok DELETE /thing/1")
            let options = try await client.request(.OPTIONS, "/thing/1")
            #expect(options.text == "ok OPTIONS /thing/1")
            let patched = try await client.request(.PATCH, "/upload", body: "abc")
            #expect(patched.text.hasSuffix(" 3"))
            #expect(backend.connections == 1, "the backend connection is reused")
            await client.close()
        }
    }

    @Test("an upload reaches the backend byte for byte, with a length or chunked, read as it arrives")
    func uploads() async throws {
        try await Self.withProxy { server, backend in
            let client = try await HTTPTestClient.connect(port: server.port)
            let size = 5 << 20
            for chunked in [false, true] {
                try await client.sendHead(.POST, "/upload", headers: [chunked ? ("transfer-encoding", "chunked") : ("content-length", String(size))])
                var offset = 0
                while offset < size {
                    let chunk = ByteBuffer(bytes: StreamingBackend.pattern(offset: offset, count: 1 << 16))
                    offset += 1 << 16
                    try await client.sendBody(chunk)
                }
                try await client.sendEnd()
                let response = try await client.response()
                #expect(response.status == 200)
                #expect(response.text == "\(StreamingBackend.patternDigest(size)) \(size)")
            }
            await client.close()
        }
    }

    @Test("Server-Sent Events reach the client event by event")
    func serverSentEvents() async throws {
        try await Self.withProxy { server, backend in
            let client = try await HTTPTestClient.connect(port: server.port)
            try await client.sendHead(.GET, "/sse?n=3", headers: [("accept", "text/event-stream")])
            try await client.sendEnd()
            guard case .head(let head)? = await client.next() else { throw TestFailure("no head") }
            #expect(head.status == .ok)
            #expect(head.headers.first(name: "content-type") == "text/event-stream")
            #expect(head.headers.first(name: "transfer-encoding") == "chunked")
            for number in 1...3 {
                // The backend sends the next event only when told: this one came through on its own.
                guard case .body(let chunk)? = await client.next() else { throw TestFailure("no event \(number)") }
                #expect(String(buffer: chunk) == "id: \(number)\ndata: event \(number)\n\n")
                backend.releaseEvent()
            }
            guard case .end? = await client.next() else { throw TestFailure("no end") }
            await client.close()
        }
    }

    @Test("a chunked response is framed chunked again; HEAD has no body; HTTP/1.0 gets a close-delimited body")
    func framing() async throws {
        try await Self.withProxy { server, _ in
            let client = try await HTTPTestClient.connect(port: server.port)
            let chunks = try await client.request(.GET, "/chunks")
            #expect(chunks.text == "onetwothree")
            #expect(chunks.header("transfer-encoding") == "chunked")
            let head = try await client.request(.HEAD, "/page")
            #expect(head.status == 200)
            #expect(head.count == 0)
            #expect(head.header("content-length") == "\("ok HEAD /page".utf8.count)")
            let sized = try await client.request(.GET, "/bytes?n=1000&length=1")
            #expect(sized.header("content-length") == "1000")
            #expect(sized.header("transfer-encoding") == nil)
            #expect(sized.sha256 == StreamingBackend.patternDigest(1000))
            await client.close()

            let old = try await RawConnection.connect(port: server.port)
            try await old.send("GET /chunks HTTP/1.0\r\nHost: localhost\r\n\r\n")
            try await server.eventually { old.isClosed }
            #expect(old.text.hasPrefix("HTTP/1.0 200"))
            #expect(old.text.lowercased().contains("connection: close"))
            #expect(!old.text.lowercased().contains("transfer-encoding"))
            #expect(old.text.hasSuffix("\r\n\r\nonetwothree"))
        }
    }

    @Test("a reader that stops pauses the backend's transfer; it resumes and arrives whole")
    func slowReader() async throws {
        try await Self.withProxy { server, backend in
            let size = 64 << 20
            let client = try await HTTPTestClient.connect(port: server.port, reading: false, receiveBuffer: 64 << 10)
            try await client.sendHead(.GET, "/bytes?n=\(size)")
            try await client.sendEnd()
            // lhttpd stops reading from the backend: the backend's socket fills and it waits.
            try await server.eventually(timeout: .seconds(60)) { backend.isStalled }
            let sentWhilePaused = backend.sent
            // What the kernel buffers of three sockets and lhttpd's 256 KiB window hold, not the body.
            #expect(sentWhilePaused < 24 << 20, "a paused transfer holds a window, not the body (\(sentWhilePaused) bytes sent)")
            print("slow reader: \(sentWhilePaused) bytes sent while paused")
            try await client.startReading()
            let response = try await client.response(keep: 0)
            #expect(response.count == size)
            #expect(response.sha256 == StreamingBackend.patternDigest(size))
            await client.close()
        }
    }

    @Test("hop-by-hop headers are removed, X-Forwarded-* and Forwarded set, a client's X-LHTTP-* dropped, Host kept")
    func requestHeaders() async throws {
        try await Self.withProxy { server, _ in
            let client = try await HTTPTestClient.connect(port: server.port)
            let response = try await client.request(.GET, "/headers", headers: [
                ("host", "app.example:8443"), ("connection", "keep-alive, x-private"), ("x-private", "secret"), ("keep-alive", "timeout=5"),
                ("te", "trailers"), ("proxy-authorization", "Basic x"), ("x-lhttp-user", "admin"), ("X-LHTTP-Anything", "1"),
                ("x-forwarded-for", "6.6.6.6"), ("forwarded", "for=6.6.6.6"), ("x-forwarded-proto", "https"), ("cookie", "a=1; b=2"),
            ])
            let lines = response.text.split(separator: "\n").map { $0.lowercased() }
            #expect(lines.first == "get /headers")
            for gone in ["x-private", "keep-alive", "te", "proxy-authorization", "x-lhttp-user", "x-lhttp-anything", "connection"] {
                #expect(!lines.contains { $0.hasPrefix(gone + ":") }, "\(gone) must not reach the backend")
            }
            #expect(lines.contains("host: app.example:8443"))
            #expect(lines.contains("cookie: a=1; b=2"))
            #expect(lines.contains("x-forwarded-for: 127.0.0.1"), "an untrusted peer's X-Forwarded-For is replaced")
            #expect(lines.contains("x-forwarded-proto: http"))
            #expect(lines.contains("x-forwarded-host: app.example:8443"))
            #expect(lines.contains("forwarded: for=127.0.0.1;proto=http;host=\"app.example:8443\""))
            await client.close()
        }
        try await Self.withProxy({ config, _ in config.proxy.trustedProxies = ["127.0.0.0/8"] }) { server, _ in
            let client = try await HTTPTestClient.connect(port: server.port)
            let response = try await client.request(.GET, "/headers", headers: [("x-forwarded-for", "6.6.6.6"), ("x-forwarded-proto", "https")])
            let lines = response.text.split(separator: "\n").map { $0.lowercased() }
            #expect(lines.contains("x-forwarded-for: 6.6.6.6, 127.0.0.1"), "a trusted proxy's chain is appended to")
            #expect(lines.contains("x-forwarded-proto: https"))
            await client.close()
        }
    }

    @Test("X-LHTTP-User carries a verified token's user, never a client's claim")
    func verifiedUser() async throws {
        try await Self.withProxy({ config, _ in config.auth.jwt = JWTConfig(hmacSecret: TestToken.secret) }) { server, _ in
            let client = try await HTTPTestClient.connect(port: server.port)
            let good = TestToken.hmac(TestToken.claims(sub: "ann"))
            let verified = try await client.request(.GET, "/headers", headers: [("authorization", "Bearer \(good)"), ("x-lhttp-user", "root")])
            let lines = verified.text.split(separator: "\n").map { $0.lowercased() }
            #expect(lines.contains("x-lhttp-user: ann"))
            #expect(!lines.contains("x-lhttp-user: root"))
            #expect(lines.contains("authorization: bearer \(good.lowercased())"), "the app still gets its Authorization")
            let forged = TestToken.hmac(TestToken.claims(sub: "ann"), secret: String(repeating: "x", count: 32))
            let refused = try await client.request(.GET, "/headers", headers: [("authorization", "Bearer \(forged)")])
            #expect(!refused.text.lowercased().contains("x-lhttp-user"))
            await client.close()
        }
    }

    @Test("backend down is 502, no answer in time 504, a body too large 413; each counted by route and status")
    func failures() async throws {
        let closed = try FreePort.next()
        try await TestServer.with({ config in
            config.proxy.backend = "http://127.0.0.1:\(closed)"
        }) { server in
            let client = try await HTTPTestClient.connect(port: server.port)
            let response = try await client.request(.GET, "/anything")
            #expect(response.status == 502)
            #expect(response.header("content-type")?.hasPrefix("text/plain") == true)
            #expect(response.text.hasPrefix("502 Bad Gateway"))
            // The connection stays usable after lhttpd's own answer.
            #expect(try await client.request(.GET, "/anything").status == 502)
            await client.close()
        }
        try await Self.withProxy({ config, _ in
            config.proxy.firstByteTimeoutMs = 300
            config.proxy.idleTimeoutMs = 600
            config.proxy.maxRequestBodyBytes = 1000
        }) { server, _ in
            let client = try await HTTPTestClient.connect(port: server.port)
            let hung = try await client.request(.GET, "/hang")
            #expect(hung.status == 504)
            #expect(hung.text.contains("first_byte_timeout_ms"))
            await client.close()

            let big = try await HTTPTestClient.connect(port: server.port)
            // Refused on its Content-Length, before any body byte is read.
            try await big.sendHead(.POST, "/upload", headers: [("content-length", "5000")])
            let tooLarge = try await big.response()
            #expect(tooLarge.status == 413)
            #expect(tooLarge.header("connection") == "close")
            await big.close()

            let chunked = try await HTTPTestClient.connect(port: server.port)
            try await chunked.sendHead(.POST, "/upload", headers: [("transfer-encoding", "chunked")])
            // The third piece may meet a closed connection: lhttpd answers and closes at the second.
            for _ in 0..<3 { try? await chunked.sendBody(ByteBuffer(string: String(repeating: "y", count: 600))) }
            let cut = try await chunked.response()
            #expect(cut.status == 413)
            await chunked.close()

            // A backend that goes quiet after its head: the response is cut (the connection closes).
            let stalled = try await HTTPTestClient.connect(port: server.port)
            try await stalled.sendHead(.GET, "/stall")
            try await stalled.sendEnd()
            guard case .head(let head)? = await stalled.next() else { throw TestFailure("no head") }
            #expect(head.status == .ok)
            while let part = await stalled.next() {
                if case .end = part { Issue.record("a cut response must not end normally") }
            }
            #expect(!stalled.isActive)

            let text = try await MetricsTests.scrape(server).text
            #expect(text.contains(#"lhttp_proxy_responses_total{route="default",status="504"} 1"#))
            #expect(text.contains(#"lhttp_proxy_responses_total{route="default",status="413"} 2"#))
            #expect(text.contains(#"lhttp_proxy_aborted_total{route="default"} 1"#))
        }
    }

    @Test("websockets, /publish and /healthz stay lhttpd's on the proxied port; another path's upgrade is 404")
    func lhttpdPathsStay() async throws {
        try await Self.withProxy { server, backend in
            let subscriber = try await server.client(path: "/ws")
            try await server.subscribe(subscriber, "room")
            let publisher = try await server.publisher()
            let published = try await publisher.request(path: "/publish?channel=room", body: ByteBuffer(string: "hi"))
            #expect(published.status == 200)
            #expect(try await subscriber.nextMessage().bodyString == "hi")
            let client = try await HTTPTestClient.connect(port: server.port)
            #expect(try await client.request(.GET, "/healthz").status == 200)
            // A websocket path's plain GET is the app's (the default paths include `/`: the app's home page).
            #expect(try await client.request(.GET, "/ws").text == "ok GET /ws")
            #expect(try await client.request(.GET, "/").text == "ok GET /")
            // Another kind of upgrade (h2c) is not refused: Upgrade is hop-by-hop, the request goes through.

            let climber = try await HTTPTestClient.connect(port: server.port)
            try await climber.sendHead(.GET, "/public/../admin")
            #expect(try await climber.response().status == 400)
            await climber.close()
            #expect(try await client.request(.GET, "/app/ws", headers: [("upgrade", "websocket"), ("connection", "upgrade")]).status == 404)
            let h2c = try await HTTPTestClient.connect(port: server.port)
            let upgraded = try await h2c.request(.GET, "/h2", headers: [("upgrade", "h2c"), ("connection", "upgrade")])
            #expect(upgraded.text == "ok GET /h2")
            #expect(upgraded.header("connection") == "close")
            await h2c.close()
            #expect(!backend.requests.contains { $0.contains("/healthz") || $0.contains("/publish") || $0.contains("admin") })
            await client.close()
            try await subscriber.close()
            try await publisher.close()
        }
    }

    @Test("a static file that exists is lhttpd's; a missing one, and routes by longest prefix, go to their backend")
    func staticAndRoutes() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("lhttpd-proxy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try "static page".write(to: root.appendingPathComponent("here.html"), atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: root) }
        let api = try await StreamingBackend.start()
        defer { Task { await api.stop() } }
        try await Self.withProxy({ config, _ in
            config.staticDir = root.path
            config.proxy.routes = [
                ProxyRouteConfig(prefix: "/api/", backend: "http://127.0.0.1:\(api.port)/v2", stripPrefix: true),
                ProxyRouteConfig(prefix: "/api/raw/", backend: "http://127.0.0.1:\(api.port)"),
            ]
        }) { server, backend in
            let client = try await HTTPTestClient.connect(port: server.port)
            #expect(try await client.request(.GET, "/here.html").text == "static page")
            #expect(try await client.request(.GET, "/gone.html").text == "ok GET /gone.html")
            #expect(try await client.request(.GET, "/api/users?x=1").text == "ok GET /v2/users?x=1")
            #expect(try await client.request(.GET, "/api/raw/users").text == "ok GET /api/raw/users")
            #expect(backend.requests == ["GET /gone.html"])
            let text = try await MetricsTests.scrape(server).text
            #expect(text.contains(#"lhttp_proxy_responses_total{route="/api/",status="200"} 1"#))
            await client.close()
        }
    }

    @Test("proxy.websocket: the app's own websocket is tunnelled byte for byte, over TLS too")
    func websocketTunnel() async throws {
        // The app is another lhttpd: its /ws is "the app's websocket", reached through the front's /app/ws.
        try await TestServer.with { app in
            let certificate = try TestCertificate.make()
            defer { certificate.remove() }
            for tls in [false, true] {
                try await TestServer.with({ config in
                    config.websocket.paths = ["/ws"]
                    config.proxy.routes = [ProxyRouteConfig(prefix: "/app/", backend: "http://127.0.0.1:\(app.port)", stripPrefix: true)]
                    config.proxy.websocket = true
                    if tls { config.tls = TLSConfig(certFile: certificate.certFile, keyFile: certificate.keyFile) }
                }) { front in
                    let client = try await LHTTPWebSocketClient.connect(
                        host: "localhost", port: front.port, path: "/app/ws", tls: tls ? try certificate.clientContext() : nil
                    )
                    // The subscription is the app's: the front's hub never sees it.
                    try await client.send(LHTTPMessage(command: "sub", headers: ["subscribe": "tunnelled"]))
                    try await app.roundTrip(client)
                    #expect(app.gateway.hub.subscriberCount(of: "tunnelled") == 1)
                    #expect(front.gateway.hub.subscriberCount(of: "tunnelled") == 0)
                    let publisher = try await app.publisher()
                    let big = String(repeating: "x", count: 200_000)
                    for body in ["one", big, "three"] {
                        #expect(try await publisher.request(path: "/publish?channel=tunnelled", body: ByteBuffer(string: body)).status == 200)
                        #expect(try await client.nextMessage().bodyString == body)
                    }
                    try await publisher.close()
                    try await client.close()
                    try await app.eventually { app.gateway.hub.subscriberCount(of: "tunnelled") == 0 }
                    if !tls {  // (the scrape helper speaks plain HTTP)
                        let text = try await MetricsTests.scrape(front).text
                        #expect(text.contains(#"lhttp_proxy_tunnels_total{route="/app/"} 1"#))
                    }
                }
            }
        }
    }

    @Test("a client that leaves mid-response cancels the backend transfer; past proxy.max_in_flight, 503")
    func cancelAndOverload() async throws {
        try await Self.withProxy({ config, _ in config.proxy.maxInFlight = 1 }) { server, backend in
            let proxy = try #require(server.application.proxyClient)
            let leaver = try await HTTPTestClient.connect(port: server.port, reading: false)
            try await leaver.sendHead(.GET, "/bytes?n=\(1 << 30)")
            try await leaver.sendEnd()
            try await server.eventually { backend.sent > 0 && proxy.inFlight == 1 }
            // The one slot is taken: the next request is refused at once.
            let second = try await HTTPTestClient.connect(port: server.port)
            let refused = try await second.request(.GET, "/page")
            #expect(refused.status == 503)
            await leaver.close()
            try await server.eventually { proxy.inFlight == 0 }
            #expect(backend.sent < 1 << 30, "the transfer stopped when the client left")
            #expect(try await second.request(.GET, "/page").status == 200)
            await second.close()
        }
    }

    @Test("a target that is not a path and conflicting Content-Length values are 400, and nothing reaches the backend")
    func malformedRequests() async throws {
        try await Self.withProxy { server, backend in
            for request in [
                "GET http://evil.example/steal HTTP/1.1\r\nHost: evil.example\r\n\r\n",
                "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
            ] {
                let raw = try await RawConnection.connect(port: server.port)
                try await raw.send(request)
                try await server.eventually { raw.isClosed }
                #expect(raw.text.hasPrefix("HTTP/1.1 400"), "\(raw.text.prefix(80))")
            }
            #expect(backend.requests.isEmpty)
        }
    }
}
