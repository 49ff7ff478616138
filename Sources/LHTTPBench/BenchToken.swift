import Crypto
import Foundation

/// HS256 connection tokens (JWT) signed by the bench itself, as an app would sign them for its users
/// (docs/auth.md): lhttpd verifies them on every upgrade, so a run with tokens pays what a real deployment pays.
/// HMAC-SHA256 from swift-crypto.
public enum BenchToken {
    /// `base64url(header).base64url(claims).base64url(HMAC-SHA256(secret, the first two))`; `claims` is JSON text.
    public static func hs256(secret: String, claims: String) -> String {
        let signed = base64url(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "." + base64url(Array(claims.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signed.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return signed + "." + base64url(Array(mac))
    }

    /// A token for user `sub` (nil: an anonymous connection, which counts in presence but never joins)
    /// valid for `ttl` seconds from now, with the user's name as its public `info`.
    public static func hs256(secret: String, sub: String?, ttl: Int = 3600, now: Date = Date()) -> String {
        let exp = Int(now.timeIntervalSince1970) + ttl
        // Bench user names are ASCII letters and digits: no JSON escaping is needed.
        let claims = sub.map { #"{"sub":"\#($0)","exp":\#(exp),"info":{"name":"\#($0)"}}"# } ?? #"{"exp":\#(exp)}"#
        return hs256(secret: secret, claims: claims)
    }

    static func base64url(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        while text.hasSuffix("=") { text.removeLast() }
        return String(text.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
    }
}
