import Crypto
import Foundation
import LHTTPClient
import LHTTPConfig
import LHTTPTestSupport
import NIOCore
import Testing

/// `examples/php-app` run for real (`php -S`) behind lhttpd's reverse proxy: pages, forms, uploads,
/// cookies, redirects, 304 and HEAD, and the app's view of the client.
@Suite("Reverse proxy in front of PHP")
struct ProxyPHPTests {
    @Test("a PHP app's pages, forms, uploads, cookies, redirects, 304 and HEAD through lhttpd")
    func phpApp() async throws {
        let port = try FreePort.next()
        let app = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("examples/php-app/index.php").path
        let php = try await ExampleBackendTests.startBackend(
            "/usr/bin/php", ["-d", "upload_max_filesize=64M", "-d", "post_max_size=64M", "-S", "127.0.0.1:\(port)", app], port: port
        )
        defer { php.process.terminate() }
        try await TestServer.with({ config in
            config.proxy.backend = "http://127.0.0.1:\(port)"
            config.auth.jwt = JWTConfig(hmacSecret: TestToken.secret)
        }) { server in
            let client = try await HTTPTestClient.connect(port: server.port)
            let page = try await client.request(.GET, "/")
            #expect(page.status == 200)
            #expect(page.text.contains("<h1>Hello from PHP</h1>"))
            #expect(page.header("content-type") == "text/html; charset=utf-8")
            let cookies = page.head.headers["set-cookie"]
            #expect(cookies.count == 2, "both Set-Cookie lines pass: \(cookies)")
            #expect(cookies.contains { $0.hasPrefix("session=abc123") && $0.contains("HttpOnly") })

            let token = TestToken.hmac(TestToken.claims(sub: "ann"))
            let whoami = try await client.request(.GET, "/whoami", headers: [
                ("cookie", "session=abc123; theme=dark"), ("authorization", "Bearer \(token)"), ("x-lhttp-user", "mallory"),
            ])
            let seen = try #require(try JSONSerialization.jsonObject(with: Data(whoami.body)) as? [String: Any])
            #expect((seen["cookies"] as? [String: String]) == ["session": "abc123", "theme": "dark"])
            #expect(seen["user"] as? String == "ann")
            #expect(seen["forwarded_for"] as? String == "127.0.0.1")
            #expect(seen["proto"] as? String == "http")

            let form = try await client.request(.POST, "/form", headers: [("content-type", "application/x-www-form-urlencoded")], body: "name=J%C3%BCrgen&x=1")
            #expect(form.text == "hello Jürgen, 2 fields\n")

            // A 3 MiB file in a multipart form: the app hashes what it received.
            var file = [UInt8](repeating: 0, count: 3 << 20)
            for index in file.indices { file[index] = UInt8(truncatingIfNeeded: index &* 2654435761 >> 13) }
            let boundary = "lhttpd-test-boundary"
            var body = ByteBuffer()
            body.writeString("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"data.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n")
            body.writeBytes(file)
            body.writeString("\r\n--\(boundary)--\r\n")
            try await client.sendHead(.POST, "/upload", headers: [
                ("content-type", "multipart/form-data; boundary=\(boundary)"), ("content-length", String(body.readableBytes)),
            ])
            try await client.sendBody(body)
            try await client.sendEnd()
            let uploaded = try await client.response()
            let digest = SHA256.hash(data: file).map { String(format: "%02x", $0) }.joined()
            #expect(uploaded.text == "\(digest) \(file.count) data.bin\n")

            let redirect = try await client.request(.GET, "/redirect")
            #expect(redirect.status == 302, "the redirect reaches the client, not followed")
            #expect(redirect.header("location") == "/landing")

            let fresh = try await client.request(.GET, "/etag")
            #expect(fresh.status == 200)
            #expect(fresh.header("etag") == "\"v1\"")
            let cached = try await client.request(.GET, "/etag", headers: [("if-none-match", "\"v1\"")])
            #expect(cached.status == 304)
            #expect(cached.count == 0)

            let head = try await client.request(.HEAD, "/")
            #expect(head.status == 200)
            #expect(head.count == 0)
            #expect(try await client.request(.GET, "/nowhere").status == 404)
            await client.close()
        }
    }
}
