import Foundation
import Testing

@testable import LHTTPBench

/// The shape of the bench's tokens, and their signature against one computed independently (Python's hmac);
/// that lhttpd accepts them is the churn smoke test's business.
@Suite struct BenchTokenTests {
    @Test func aTokenIsThreeBase64URLPartsWithTheUserAndExpiry() throws {
        let token = BenchToken.hs256(secret: "s", sub: "u7", ttl: 60, now: Date(timeIntervalSince1970: 1000))
        let parts = token.split(separator: ".").map(String.init)
        #expect(parts.count == 3)
        #expect(!token.contains("=") && !token.contains("+") && !token.contains("/"))
        func decoded(_ part: String) -> String {
            var text = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            while text.count % 4 != 0 { text += "=" }
            return String(decoding: Data(base64Encoded: text) ?? Data(), as: UTF8.self)
        }
        #expect(decoded(parts[0]) == #"{"alg":"HS256","typ":"JWT"}"#)
        #expect(decoded(parts[1]) == #"{"sub":"u7","exp":1060,"info":{"name":"u7"}}"#)
        #expect(parts[2] == "TDVw1-ET7WOks7k95KssUFz5gzA9QO181N_UYuaasCA")
        // An anonymous watcher's token: no sub.
        #expect(decoded(String(BenchToken.hs256(secret: "s", sub: nil, ttl: 60, now: Date(timeIntervalSince1970: 1000)).split(separator: ".")[1])) == #"{"exp":1060}"#)
    }
}
