import LHTTPConfig
import NIOHTTP1
import Testing
@testable import LHTTPServer

@Suite("Proxy routes and header rules")
struct ProxyRulesTests {
    @Test("the longest prefix wins; strip_prefix keeps one leading slash; the default takes the rest")
    func routes() throws {
        let routes = ProxyRoutes(ProxyConfig(
            backend: "http://app:9000/base/",
            routes: [
                ProxyRouteConfig(prefix: "/api/", backend: "http://api:1", stripPrefix: true),
                ProxyRouteConfig(prefix: "/api/v2/", backend: "http://v2:2"),
                ProxyRouteConfig(prefix: "/raw", backend: "http://raw:3", stripPrefix: true),
            ]
        ))
        let api = try #require(routes.route(for: "/api/users"))
        #expect(routes.url(for: "/api/users?x=1", on: api) == "http://api:1/users?x=1")
        let v2 = try #require(routes.route(for: "/api/v2/users"))
        #expect(routes.url(for: "/api/v2/users", on: v2) == "http://v2:2/api/v2/users")
        let raw = try #require(routes.route(for: "/raw"))
        #expect(routes.url(for: "/raw", on: raw) == "http://raw:3/")
        #expect(routes.url(for: "/rawer", on: raw) == "http://raw:3/er")
        let other = try #require(routes.route(for: "/index.php"))
        #expect(other.label == "default")
        #expect(routes.url(for: "/index.php", on: other) == "http://app:9000/base/index.php")
        #expect(ProxyRoutes(ProxyConfig(routes: [ProxyRouteConfig(prefix: "/api/", backend: "http://a")])).route(for: "/x") == nil)
    }

    @Test("dot segments are found literally and percent-encoded")
    func dotSegments() {
        for path in ["/a/../b", "/..", "/a/./b", "/a/%2e%2E/b", "/a/%2e/b", "/a/.%2e"] { #expect(ProxyRoutes.hasDotSegment(Substring(path)), "\(path)") }
        for path in ["/a/...", "/a/.b", "/a/b.", "/.well-known/x", "/"] { #expect(!ProxyRoutes.hasDotSegment(Substring(path)), "\(path)") }
    }

    @Test("the backend's hop-by-hop headers and what Connection lists are dropped; a bad line too")
    func responseHeaders() {
        let headers = ProxyHeaders.response([
            ("Content-Type", "text/html"), ("Connection", "close, X-Hop"), ("X-Hop", "1"), ("Transfer-Encoding", "chunked"),
            ("Keep-Alive", "timeout=5"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Bad Name", "x"), ("X-Ok", "v\u{0}"),
        ])
        #expect(headers.map(\.name) == ["Content-Type", "Set-Cookie", "Set-Cookie"])
    }

    @Test("Forwarded quotes an IPv6 client and a host with a port")
    func forwarded() {
        var request = HTTPHeaders([("Host", "example.com")])
        let v6 = ProxyHeaders.request(request, client: .init(address: nil, addressText: "::1", scheme: "https", user: nil), trusted: [])
        #expect(v6.first { $0.name == "Forwarded" }?.value == #"for="[::1]";proto=https;host=example.com"#)
        request.replaceOrAdd(name: "Host", value: "example.com:8080")
        let port = ProxyHeaders.request(request, client: .init(address: nil, addressText: "1.2.3.4", scheme: "http", user: "ann"), trusted: [])
        #expect(port.first { $0.name == "Forwarded" }?.value == #"for=1.2.3.4;proto=http;host="example.com:8080""#)
        #expect(port.first { $0.name == "X-LHTTP-User" }?.value == "ann")
    }
}
