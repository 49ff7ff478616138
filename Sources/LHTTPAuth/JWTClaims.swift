import JWTKit
import LHTTPGateway

/// The claims lhttpd reads from a connection token. Any other claim is ignored (and kept in
/// ``ConnectionIdentity/claims`` for the connect hook).
struct JWTClaims: JWTPayload {
    /// String or array of strings.
    struct Audience: Codable, Sendable {
        var values: [String]

        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let one = try? c.decode(String.self) { self.values = [one] } else { self.values = try c.decode([String].self) }
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            try c.encode(self.values)
        }
    }

    var sub: String?
    var exp: Double?
    var nbf: Double?
    var iss: String?
    var aud: Audience?
    var info: JSONValue?
    var meta: JSONValue?
    var channels: [String]?

    /// Checked by ``JWTVerifier`` against its clock and configuration, not here.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
