import Foundation
import Testing

@testable import LHTTPBench

/// The bench's own SHA-256 and HMAC (FIPS 180-4 and RFC 4231 vectors) and the shape of its tokens; that
/// lhttpd accepts them is the churn smoke test's business.
@Suite struct BenchTokenTests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func sha256MatchesTheStandardVectors() {
        #expect(Self.hex(SHA256.hash([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Self.hex(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // Two blocks: the padding does not fit after 56 bytes.
        #expect(
            Self.hex(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        )
    }

    @Test func hmacMatchesRFC4231() {
        #expect(
            Self.hex(SHA256.hmac(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        )
        // A key longer than the block is hashed first.
        let key = [UInt8](repeating: 0xaa, count: 131)
        #expect(
            Self.hex(SHA256.hmac(key: key, message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        )
    }

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
        #expect(parts[2] == BenchToken.base64url(SHA256.hmac(key: Array("s".utf8), message: Array((parts[0] + "." + parts[1]).utf8))))
        // An anonymous watcher's token: no sub.
        #expect(decoded(String(BenchToken.hs256(secret: "s", sub: nil, ttl: 60, now: Date(timeIntervalSince1970: 1000)).split(separator: ".")[1])) == #"{"exp":1060}"#)
    }
}
