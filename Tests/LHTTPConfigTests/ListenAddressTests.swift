import Testing
import LHTTPConfig

@Suite("ListenAddress")
struct ListenAddressTests {
    @Test("Valid forms parse", arguments: [
        ("127.0.0.1:8081", "127.0.0.1", 8081),
        ("localhost:0", "localhost", 0),
        ("0.0.0.0:65535", "0.0.0.0", 65535),
        ("[::1]:8081", "::1", 8081),
        ("[::]:80", "::", 80),
        ("example.com:443", "example.com", 443),
    ])
    func parses(text: String, host: String, port: Int) throws {
        let address = try ListenAddress(parsing: text)
        #expect(address == ListenAddress(host: host, port: port))
        #expect(address.description == text)
    }

    @Test("Bad forms are rejected with a reason", arguments: [
        ("nohost", "expected host:port"),
        (":8081", "missing host"),
        ("[]:8081", "missing host"),
        ("host:99999", "out of range"),
        ("host:abc", "is not a number"),
        ("host:", "is not a number"),
        ("host:+80", "is not a number"),
        ("host:-1", "is not a number"),
        ("::1:8081", "in brackets"),
        ("[::1]8081", "expected \":port\""),
        ("[::1:8081", "missing \"]\""),
    ])
    func rejects(text: String, reason: String) {
        do throws(ConfigError) {
            let address = try ListenAddress(parsing: text)
            Issue.record("\"\(text)\" parsed as \(address)")
        } catch {
            #expect(error.problems.count == 1)
            #expect(error.problems.first?.message.contains(reason) == true, "\(error)")
            #expect(error.problems.first?.message.contains(text) == true, "\(error)")
        }
    }

    @Test("IPv6 hosts print in brackets")
    func description() {
        #expect(ListenAddress(host: "::1", port: 1).description == "[::1]:1")
        #expect(ListenAddress(host: "a", port: 2).description == "a:2")
    }
}
