import Crypto
import Foundation

/// JWTs signed in the test, by hand (HMAC-SHA2 and P-256 from swift-crypto), so a test can sign any header
/// and payload, bad ones included, and check lhttpd against an independent signer.
public enum TestToken {
    /// The secret the token tests configure (64 bytes: HS256, HS384 and HS512 are all accepted with it).
    public static let secret = "test-secret-of-64-bytes-0123456789abcdef0123456789abcdef012345678"

    public static func base64URL(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// The claims as JSON: `sub`, `exp` (seconds from now; nil: none) and whatever `extra` adds.
    public static func claims(sub: String?, expiresIn: Double? = 600, extra: [String: Any] = [:]) -> [String: Any] {
        var claims = extra
        if let sub { claims["sub"] = sub }
        if let expiresIn { claims["exp"] = Int(Date().timeIntervalSince1970 + expiresIn) }
        return claims
    }

    static func parts(alg: String, _ claims: [String: Any]) -> String {
        let header = try! JSONSerialization.data(withJSONObject: ["alg": alg, "typ": "JWT"], options: [.sortedKeys])
        let payload = try! JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys, .withoutEscapingSlashes])
        return base64URL(header) + "." + base64URL(payload)
    }

    /// HS256 (or `bits` 384, 512) with `secret`.
    public static func hmac(_ claims: [String: Any], secret: String = TestToken.secret, bits: Int = 256) -> String {
        let input = parts(alg: "HS\(bits)", claims)
        let key = SymmetricKey(data: Data(secret.utf8))
        let mac: Data
        switch bits {
        case 384: mac = Data(HMAC<SHA384>.authenticationCode(for: Data(input.utf8), using: key))
        case 512: mac = Data(HMAC<SHA512>.authenticationCode(for: Data(input.utf8), using: key))
        default: mac = Data(HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: key))
        }
        return input + "." + base64URL(mac)
    }

    /// ES256 with `key` (the signature as JWS wants it: r and s, 32 bytes each).
    public static func es256(_ claims: [String: Any], key: P256.Signing.PrivateKey) -> String {
        let input = parts(alg: "ES256", claims)
        let signature = try! key.signature(for: Data(input.utf8))
        return input + "." + base64URL(signature.rawRepresentation)
    }

    /// `alg: none`, no signature (what a forger sends).
    public static func unsigned(_ claims: [String: Any]) -> String {
        parts(alg: "none", claims) + "."
    }

    /// `key`'s public half in a PEM file (removed by the caller).
    public static func publicKeyFile(_ key: P256.Signing.PrivateKey) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lhttpd-test-\(UUID().uuidString).pem").path
        try key.publicKey.pemRepresentation.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `token` for a query string.
    public static func query(_ token: String) -> String {
        "/?token=" + (token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? token)
    }
}
