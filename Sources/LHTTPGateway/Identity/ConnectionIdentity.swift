/// Who a connection is: the verified claims of its token (JWT), kept for the connection's life (a refresh
/// replaces it). Immutable and shared: a connection holds one reference (nil without a token).
public final class ConnectionIdentity: Sendable, Equatable {
    /// The token's `sub`; empty: anonymous (counted as a client in presence, not as a user).
    public let user: String
    /// The token's `info` claim as compact JSON (public: shown in presence and join/leave); nil: none.
    public let info: String?
    /// The token's `meta` claim as compact JSON (private: webhooks only); nil: none.
    public let meta: String?
    /// The channels the `channels` claim grants.
    public let grants: ChannelGrants
    /// The token's `exp` (seconds since 1970); nil: the token does not expire.
    public let expiresAt: Double?
    /// The whole verified payload as JSON (the connect hook receives it; `{}` once dropped, see ``withoutClaims``).
    public let claims: String

    public init(user: String, info: String? = nil, meta: String? = nil, grants: ChannelGrants = .none, expiresAt: Double? = nil, claims: String = "{}") {
        self.user = user
        self.info = info
        self.meta = meta
        self.grants = grants
        self.expiresAt = expiresAt
        self.claims = claims
    }

    /// The same identity without ``claims``: what a connection keeps for its life (the whole payload is only
    /// the connect hook's, and would cost its bytes on every open connection).
    public var withoutClaims: ConnectionIdentity {
        self.claims == "{}" ? self : ConnectionIdentity(user: self.user, info: self.info, meta: self.meta, grants: self.grants, expiresAt: self.expiresAt)
    }

    public static func == (lhs: ConnectionIdentity, rhs: ConnectionIdentity) -> Bool {
        lhs.user == rhs.user && lhs.info == rhs.info && lhs.meta == rhs.meta && lhs.grants == rhs.grants && lhs.expiresAt == rhs.expiresAt
            && lhs.claims == rhs.claims
    }
}

/// The `channels` claim: exact channel names (subscribed at connect, and allowed) and prefixes (a name ending
/// in `*`, such as `private-*`: every channel starting with it is allowed).
public struct ChannelGrants: Sendable, Equatable {
    /// Exact names, in the claim's order (no duplicates).
    public let exact: [String]
    private let exactSet: Set<String>
    /// Prefixes (the `*` cut off).
    public let prefixes: [String]

    public static let none = ChannelGrants(patterns: [])

    /// - Parameter patterns: the claim's entries; `*` alone allows every channel.
    public init(patterns: [String]) {
        var exact: [String] = []
        var seen = Set<String>()
        var prefixes: [String] = []
        for pattern in patterns {
            if pattern.hasSuffix("*") {
                prefixes.append(String(pattern.dropLast()))
            } else if seen.insert(pattern).inserted {
                exact.append(pattern)
            }
        }
        self.exact = exact
        self.exactSet = seen
        self.prefixes = prefixes
    }

    /// Whether `channel` is granted.
    public func allows(_ channel: String) -> Bool {
        self.exactSet.contains(channel) || self.prefixes.contains { channel.hasPrefix($0) }
    }

    public static func == (lhs: ChannelGrants, rhs: ChannelGrants) -> Bool {
        lhs.exact == rhs.exact && lhs.prefixes == rhs.prefixes
    }
}
