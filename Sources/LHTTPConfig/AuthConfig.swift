/// The `auth:` section: signed connection tokens (JWT) instead of, or before, the connect webhook.
///
/// ```yaml
/// auth:
///   required: false                  # true: an upgrade without a valid token is refused (401)
///   jwt:                             # on when hmac_secret or public_key_files is set
///     hmac_secret: ${LHTTP_JWT_SECRET}   # HS256/384/512
///     public_key_files: []           # PEM public keys: RS256 (RSA), ES256 (P-256)
///     issuer: ""                     # checked when set
///     audience: ""                   # checked when set
///     leeway_s: 30
///     refresh_grace_s: 25
///     require_exp: true
/// ```
public struct AuthConfig: Sendable, Equatable {
    /// Whether an upgrade without a token is refused (401). Needs `jwt`.
    public var required: Bool
    /// How tokens are verified; with neither a secret nor a key, tokens are off (the query reaches the
    /// connect hook as before).
    public var jwt: JWTConfig

    public init(required: Bool = false, jwt: JWTConfig = JWTConfig()) {
        self.required = required
        self.jwt = jwt
    }
}

/// `auth.jwt`: the keys and checks of connection tokens.
public struct JWTConfig: Sendable, Equatable {
    /// The shared secret of HS256, HS384 and HS512 tokens (empty: none accepted).
    public var hmacSecret: String
    /// PEM files of public keys: an RSA key verifies RS256 tokens, a P-256 key ES256 ones.
    public var publicKeyFiles: [String]
    /// The `iss` a token must carry (empty: not checked).
    public var issuer: String
    /// A value the token's `aud` must hold (empty: not checked).
    public var audience: String
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    public var leewayS: Double
    /// Seconds a connection whose token expired has to send a new one before it is closed (4001).
    public var refreshGraceS: Double
    /// Whether a token without `exp` is refused.
    public var requireExp: Bool

    /// Whether tokens are verified: a secret or a public key is configured.
    public var isEnabled: Bool { !self.hmacSecret.isEmpty || !self.publicKeyFiles.isEmpty }

    public init(
        hmacSecret: String = "", publicKeyFiles: [String] = [], issuer: String = "", audience: String = "", leewayS: Double = 30,
        refreshGraceS: Double = 25, requireExp: Bool = true
    ) {
        self.hmacSecret = hmacSecret
        self.publicKeyFiles = publicKeyFiles
        self.issuer = issuer
        self.audience = audience
        self.leewayS = leewayS
        self.refreshGraceS = refreshGraceS
        self.requireExp = requireExp
    }
}

extension AuthConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case required, jwt
    }

    static let schema = ConfigSchema.section(CodingKeys.self, nested: [.jwt: JWTConfig.schema])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            required: try c.decodeIfPresent(Bool.self, forKey: .required) ?? false,
            jwt: try c.decodeIfPresent(JWTConfig.self, forKey: .jwt) ?? JWTConfig()
        )
    }
}

extension JWTConfig: Decodable, ConfigSection {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case hmacSecret = "hmac_secret"
        case publicKeyFiles = "public_key_files"
        case issuer, audience
        case leewayS = "leeway_s"
        case refreshGraceS = "refresh_grace_s"
        case requireExp = "require_exp"
    }

    static let schema = ConfigSchema.section(CodingKeys.self)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = JWTConfig()
        self.init(
            hmacSecret: try c.decodeIfPresent(String.self, forKey: .hmacSecret) ?? d.hmacSecret,
            publicKeyFiles: try c.decodeIfPresent([String].self, forKey: .publicKeyFiles) ?? d.publicKeyFiles,
            issuer: try c.decodeIfPresent(String.self, forKey: .issuer) ?? d.issuer,
            audience: try c.decodeIfPresent(String.self, forKey: .audience) ?? d.audience,
            leewayS: try c.decodeIfPresent(Double.self, forKey: .leewayS) ?? d.leewayS,
            refreshGraceS: try c.decodeIfPresent(Double.self, forKey: .refreshGraceS) ?? d.refreshGraceS,
            requireExp: try c.decodeIfPresent(Bool.self, forKey: .requireExp) ?? d.requireExp
        )
    }
}
