import LHTTPTestSupport
import LHTTPUpstream
import Testing

@Suite("Upstream URL policy")
struct UpstreamURLPolicyTests {
    @Test func prefixesMatchOnSegmentBoundaries() throws {
        let policy = try UpstreamURLPolicy(allow: ["http://127.0.0.1:9000/api", "https://Example.test/hooks/"])
        #expect(try policy.check("http://127.0.0.1:9000/api") == "http://127.0.0.1:9000/api")
        #expect(try policy.check("http://127.0.0.1:9000/api/x?y=1") == "http://127.0.0.1:9000/api/x?y=1")
        #expect(throws: UpstreamError.self) { try policy.check("http://127.0.0.1:9000/apix") }
        #expect(throws: UpstreamError.self) { try policy.check("http://127.0.0.1:9000/") }
        #expect(try policy.check("HTTPS://EXAMPLE.test:443/hooks/a").hasPrefix("https://"))
        #expect(throws: UpstreamError.self) { try policy.check("https://example.test/hook") }
    }

    @Test func dotSegmentsCannotEscapeThePrefix() throws {
        let policy = try UpstreamURLPolicy(allow: ["http://127.0.0.1:9000/api/"])
        #expect(throws: UpstreamError.self) { try policy.check("http://127.0.0.1:9000/api/../admin") }
        #expect(throws: UpstreamError.self) { try policy.check("http://127.0.0.1:9000/api/%2e%2e/admin") }
        #expect(throws: UpstreamError.self) { try policy.check("http://127.0.0.1:9000/api/%2E%2e%2Fadmin") }
        #expect(throws: UpstreamError.self) { try policy.check("http://127.0.0.1:9000/api\\..\\admin") }
        #expect(try policy.check("http://127.0.0.1:9000/api/a/../b") == "http://127.0.0.1:9000/api/b")
    }

    @Test func defaultPortsAndSchemes() throws {
        let policy = try UpstreamURLPolicy(allow: ["http://backend.test/"])
        // The explicit default port is the same place as the implicit one.
        #expect(throws: Never.self) { try policy.check("http://backend.test:80/x") }
        #expect(throws: UpstreamError.self) { try policy.check("http://backend.test:8080/x") }
        #expect(throws: UpstreamError.self) { try policy.check("ftp://backend.test/x") }
        #expect(throws: UpstreamError.self) { try policy.check("http://backend.test@evil.test/x") }
        #expect(throws: UpstreamError.self) { try policy.check("http://evil.test#@backend.test/x") }
        #expect(throws: UpstreamError.self) { try policy.check("http://back end.test/") }
        #expect(throws: UpstreamError.self) { try UpstreamURLPolicy(allow: ["ftp://x/"]) }
    }

    @Test func emptyAllowListRefusesEverything() throws {
        let policy = try UpstreamURLPolicy(allow: [])
        #expect(policy.isEmpty)
        #expect(throws: UpstreamError.self) { try policy.check("http://127.0.0.1/") }
    }
}
