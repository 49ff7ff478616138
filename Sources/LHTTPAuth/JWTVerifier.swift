import Foundation
import JWTKit
import LHTTPConfig
import LHTTPGateway
import LHTTPProtocol

/// Verifies connection tokens with vapor/jwt-kit: HS256/384/512 with `auth.jwt.hmac_secret`, RS256 and
/// ES256 with the PEM public keys of `auth.jwt.public_key_files`.
///
/// The algorithm is tied to the key: the token header's `alg` picks the keys made for that algorithm and no
/// others (an HMAC secret never checks an RS256 token, a public key never an HS256 one, so a public key can't
/// be used as an HMAC secret); `none` and any algorithm without a key are refused before a signature is
/// looked at. jwt-kit checks the signature; `exp`, `nbf` (with `leeway_s`), `iss`, `aud` are checked here
/// against the clock passed in.
public struct JWTVerifier: TokenVerifier {
    /// Algorithm → the keys for it (jwt-kit's collection is an actor; made once at start).
    private let keys: Task<[String: JWTKeyCollection], Never>
    private let algorithms: Set<String>
    private let configuration: JWTConfig
    private let wallClock: @Sendable () -> Double

    /// Longest `sub` accepted (it names user-limited channels and goes into headers).
    public static let maxUserBytes = 256
    /// Most entries of the `channels` claim.
    public static let maxGrants = 1024

    /// Reads the PEM files now (an unreadable or unsupported key fails the start).
    /// - Parameter wallClock: seconds since 1970 now.
    public init(configuration: JWTConfig, wallClock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) throws(AuthError) {
        self.configuration = configuration
        self.wallClock = wallClock
        var rsa: [Insecure.RSA.PublicKey] = []
        var ecdsa: [ES256PublicKey] = []
        for path in configuration.publicKeyFiles {
            let pem: String
            do {
                pem = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw .unreadableKey(path: path, reason: "\(error.localizedDescription)")
            }
            if let key = try? ES256PublicKey(pem: pem) {
                ecdsa.append(key)
            } else if let key = try? Insecure.RSA.PublicKey(pem: pem) {
                rsa.append(key)
            } else {
                throw .unreadableKey(path: path, reason: "not a PEM public key of P-256 (ES256) or RSA of 2048 bits or more (RS256)")
            }
        }
        var algorithms = Set<String>()
        // RFC 7518 3.2: a key as large as the hash output at least (jwt-kit insists): HS384 needs 48 bytes, HS512 64.
        let secretBytes = configuration.hmacSecret.utf8.count
        for (name, bytes) in [("HS256", 32), ("HS384", 48), ("HS512", 64)] where secretBytes >= bytes { algorithms.insert(name) }
        if !rsa.isEmpty { algorithms.insert("RS256") }
        if !ecdsa.isEmpty { algorithms.insert("ES256") }
        self.algorithms = algorithms
        let secret = configuration.hmacSecret
        let hmacAlgorithms = algorithms
        self.keys = Task {
            var keys: [String: JWTKeyCollection] = [:]
            if !secret.isEmpty {
                for (name, digest) in [("HS256", DigestAlgorithm.sha256), ("HS384", .sha384), ("HS512", .sha512)] where hmacAlgorithms.contains(name) {
                    keys[name] = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: digest)
                }
            }
            if !rsa.isEmpty {
                let collection = JWTKeyCollection()
                for (index, key) in rsa.enumerated() { await collection.add(rsa: key, digestAlgorithm: .sha256, kid: JWKIdentifier(string: "rsa\(index)")) }
                keys["RS256"] = collection
            }
            if !ecdsa.isEmpty {
                let collection = JWTKeyCollection()
                for (index, key) in ecdsa.enumerated() { await collection.add(ecdsa: key, kid: JWKIdentifier(string: "ec\(index)")) }
                keys["ES256"] = collection
            }
            return keys
        }
    }

    public func verify(_ token: String, completion: @escaping @Sendable (Result<ConnectionIdentity, TokenRefusal>) -> Void) {
        Task {
            do {
                completion(.success(try await self.verify(token)))
            } catch let refusal as TokenRefusal {
                completion(.failure(refusal))
            } catch {
                completion(.failure(TokenRefusal("invalid token")))
            }
        }
    }

    /// Verifies `token`. - Throws: ``TokenRefusal`` saying why it is refused.
    public func verify(_ token: String) async throws -> ConnectionIdentity {
        guard token.utf8.count <= Self.maxTokenBytes else { throw TokenRefusal("token too large") }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerData = Self.base64URLDecode(parts[0]), let payloadData = Self.base64URLDecode(parts[1]),
            let header = try? JSONDecoder().decode(Header.self, from: headerData)
        else { throw TokenRefusal("malformed token") }
        guard self.algorithms.contains(header.alg), let collection = await self.keys.value[header.alg] else {
            throw TokenRefusal("algorithm \(header.alg.prefix(16)) not accepted")
        }
        let claims: JWTClaims
        do {
            claims = try await collection.verify(token, as: JWTClaims.self, iteratingKeys: header.alg == "RS256" || header.alg == "ES256")
        } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
            throw TokenRefusal("bad signature")
        } catch {
            throw TokenRefusal("bad signature or claims")
        }
        let now = self.wallClock()
        let leeway = self.configuration.leewayS
        if let exp = claims.exp {
            guard exp + leeway >= now else { throw TokenRefusal("token expired") }
        } else if self.configuration.requireExp {
            throw TokenRefusal("token has no exp")
        }
        if let nbf = claims.nbf, nbf - leeway > now { throw TokenRefusal("token not valid yet (nbf)") }
        if !self.configuration.issuer.isEmpty, claims.iss != self.configuration.issuer { throw TokenRefusal("wrong iss") }
        if !self.configuration.audience.isEmpty, !(claims.aud?.values.contains(self.configuration.audience) ?? false) {
            throw TokenRefusal("wrong aud")
        }
        let user = claims.sub ?? ""
        // The user names its user-limited channel and goes into headers: a channel name's bytes.
        guard user.utf8.count <= Self.maxUserBytes, user.isEmpty || LHTTPFieldRules.isValidChannelName(user) else {
            throw TokenRefusal("sub must be at most \(Self.maxUserBytes) bytes without spaces or control characters")
        }
        let patterns = claims.channels ?? []
        guard patterns.count <= Self.maxGrants, patterns.allSatisfy(LHTTPFieldRules.isValidChannelName) else {
            throw TokenRefusal("channels must be at most \(Self.maxGrants) channel names or prefixes ending in *")
        }
        return ConnectionIdentity(
            user: user, info: Self.compact(claims.info), meta: Self.compact(claims.meta), grants: ChannelGrants(patterns: patterns),
            expiresAt: claims.exp, claims: String(decoding: payloadData, as: UTF8.self)
        )
    }

    /// Longest token accepted.
    public static let maxTokenBytes = 8192

    private struct Header: Decodable {
        var alg: String
    }

    private static func compact(_ value: JSONValue?) -> String? {
        guard let value, value != .null else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// base64url without padding (RFC 7515 2) to bytes, in one pass over the text.
    static func base64URLDecode(_ part: Substring) -> Data? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(part.utf8.count + 3)
        for byte in part.utf8 {
            switch byte {
            case UInt8(ascii: "-"): bytes.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"): bytes.append(UInt8(ascii: "/"))
            default: bytes.append(byte)
            }
        }
        while bytes.count % 4 != 0 { bytes.append(UInt8(ascii: "=")) }
        return Data(base64Encoded: Data(bytes))
    }
}

/// Why the token configuration cannot be used. The one error type of `LHTTPAuth`.
public enum AuthError: Error, Sendable, Equatable, CustomStringConvertible {
    case unreadableKey(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadableKey(let path, let reason): return "auth.jwt.public_key_files: \(path): \(reason)"
        }
    }
}
