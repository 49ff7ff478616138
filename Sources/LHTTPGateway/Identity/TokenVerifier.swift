/// Verifies connection tokens (the JWT adapter implements it). The core knows no key and no algorithm.
public protocol TokenVerifier: Sendable {
    /// Verifies `token` (signature, algorithm tied to the key, `exp`, `nbf`, `iss`, `aud`) and calls
    /// `completion` exactly once, on any thread, with the identity or why the token is refused.
    func verify(_ token: String, completion: @escaping @Sendable (Result<ConnectionIdentity, TokenRefusal>) -> Void)
}

/// Why a token is refused (the upgrade is answered 401 with it; a refresh gets an error reply 401).
public struct TokenRefusal: Error, Sendable, Equatable {
    public var reason: String

    public init(_ reason: String) { self.reason = reason }
}

/// What the gateway does with tokens: the verifier and the rules around it (`auth:`).
public struct Authentication: Sendable {
    public var verifier: any TokenVerifier
    /// `auth.required`: an upgrade without a token is refused.
    public var required: Bool
    /// `auth.jwt.refresh_grace_s`: how long an expired connection may take to send a new token.
    public var refreshGraceS: Double
    /// Seconds since 1970 now (tests pass their own).
    public var wallClock: @Sendable () -> Double

    public init(verifier: any TokenVerifier, required: Bool = false, refreshGraceS: Double = 25, wallClock: @escaping @Sendable () -> Double) {
        self.verifier = verifier
        self.required = required
        self.refreshGraceS = refreshGraceS
        self.wallClock = wallClock
    }

    /// The command a client sends a new token with, and the one the server asks for it with.
    public static let refreshCommand = "refresh"
    /// The command of the answer to a good refresh.
    public static let refreshedCommand = "refreshed"
    /// The header carrying a token in a refresh.
    public static let tokenHeader = "token"
}
