/// `websocket.allowed_origins`: which browser pages may open a websocket.
///
/// Browsers send `Origin` with every websocket handshake; a page on another site must not be able to use
/// a visitor's cookies to talk to lhttpd (cross-site websocket hijacking). Requests without `Origin` are
/// not from a browser and are let through (the connect hook authenticates them).
struct OriginPolicy: Sendable {
    private enum Rule: Sendable {
        case sameHost
        case any
        case list(Set<String>)
    }

    private let rule: Rule

    init(allowed: [String]) {
        if allowed == ["*"] {
            self.rule = .any
        } else if allowed.isEmpty {
            self.rule = .sameHost
        } else {
            self.rule = .list(Set(allowed.map { Self.normalized($0) }))
        }
    }

    /// Whether a handshake carrying `Origin: origin` and `Host: host` may proceed.
    func allows(origin: String, host: String?) -> Bool {
        switch self.rule {
        case .any:
            return true
        case .list(let origins):
            return origins.contains(Self.normalized(origin))
        case .sameHost:
            guard let host, let authority = Self.authority(of: origin) else { return false }
            return authority == Self.normalizedHost(host, defaultPort: Self.defaultPort(of: origin))
        }
    }

    /// `scheme://host[:port]` lowercased, without a trailing slash and without the scheme's default port.
    static func normalized(_ origin: String) -> String {
        guard let authority = authority(of: origin), let scheme = origin.lowercased().split(separator: ":").first else {
            return origin.lowercased()
        }
        return "\(scheme)://\(authority)"
    }

    /// The `host[:port]` of an origin, lowercased, without the scheme's default port; nil for `null` and
    /// anything that is not `http(s)://`.
    static func authority(of origin: String) -> String? {
        let lowered = origin.lowercased()
        let rest: Substring
        if lowered.hasPrefix("https://") {
            rest = lowered.dropFirst(8)
        } else if lowered.hasPrefix("http://") {
            rest = lowered.dropFirst(7)
        } else {
            return nil
        }
        let trimmed = rest.hasSuffix("/") ? rest.dropLast() : rest
        guard !trimmed.isEmpty, !trimmed.contains("/") else { return nil }
        return normalizedHost(String(trimmed), defaultPort: defaultPort(of: origin))
    }

    private static func defaultPort(of origin: String) -> String {
        origin.lowercased().hasPrefix("https://") ? "443" : "80"
    }

    /// `host[:port]` lowercased, the default port dropped (`Host: example.com:80` = `example.com`).
    private static func normalizedHost(_ host: String, defaultPort: String) -> String {
        let lowered = host.lowercased()
        if lowered.hasSuffix(":" + defaultPort), !lowered.hasSuffix("]") {
            return String(lowered.dropLast(defaultPort.count + 1))
        }
        return lowered
    }
}
