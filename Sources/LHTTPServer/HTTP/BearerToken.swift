/// `Authorization: Bearer <token>` checking, shared by `POST /publish` and `/metrics`.
struct BearerToken: Sendable {
    /// Empty: every request is authorized.
    let token: String

    init(_ token: String) { self.token = token }

    /// Whether the `Authorization` header values carry the token (constant-time compare).
    func isAuthorized(_ authorization: [String]) -> Bool {
        guard !self.token.isEmpty else { return true }
        guard let credential = Self.credential(authorization) else { return false }
        return Self.constantTimeEqual(Array(credential.utf8), Array(self.token.utf8))
    }

    /// The credential of the one `Authorization: Bearer <credential>` header (the scheme's case aside); nil
    /// without one, with several, or with another scheme.
    static func credential(_ authorization: [String]) -> Substring? {
        guard authorization.count == 1 else { return nil }
        let value = authorization[0]
        let prefix = "Bearer "
        guard value.utf8.count > prefix.utf8.count, value.prefix(prefix.count).lowercased() == prefix.lowercased() else { return nil }
        return value.dropFirst(prefix.count)
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }
}
