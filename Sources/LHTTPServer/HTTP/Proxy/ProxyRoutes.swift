import LHTTPConfig

/// Which backend a request path goes to (`proxy.routes` by longest prefix, else `proxy.backend`) and the
/// URL it is sent to.
struct ProxyRoutes: Sendable {
    /// One backend: its base URL (no trailing `/`), the prefix it serves (nil: the default) and its metric label.
    struct Route: Sendable, Equatable {
        var prefix: String?
        var base: String
        var stripPrefix: Bool
        /// `lhttp_proxy_responses_total{route=...}`: the prefix, or `default`.
        var label: String
        /// A small number for the metric cache.
        var index: Int
    }

    /// Longest prefix first.
    private let routes: [Route]
    private let fallback: Route?

    init(_ configuration: ProxyConfig) {
        self.routes = configuration.routes.enumerated()
            .map { index, route in
                Route(prefix: route.prefix, base: Self.base(route.backend), stripPrefix: route.stripPrefix, label: route.prefix, index: index)
            }
            .sorted { $0.prefix!.utf8.count > $1.prefix!.utf8.count }
        self.fallback = configuration.backend.isEmpty
            ? nil
            : Route(prefix: nil, base: Self.base(configuration.backend), stripPrefix: false, label: "default", index: configuration.routes.count)
    }

    /// The route of `path` (the request target's path, as received), nil when nothing serves it.
    func route(for path: Substring) -> Route? {
        self.routes.first { path.hasPrefix($0.prefix!) } ?? self.fallback
    }

    /// The backend URL for `target` (origin-form: path and query as received) on `route`.
    func url(for target: String, on route: Route) -> String {
        guard route.stripPrefix, let prefix = route.prefix, target.hasPrefix(prefix) else { return route.base + target }
        let rest = target.dropFirst(prefix.count)
        return route.base + (rest.hasPrefix("/") ? "" : "/") + rest
    }

    private static func base(_ url: String) -> String {
        var base = Substring(url)
        while base.hasSuffix("/") { base.removeLast() }
        return String(base)
    }

    /// Whether `path` has a `.` or `..` segment, literally or percent-encoded (`%2e`, any case).
    static func hasDotSegment(_ path: Substring) -> Bool {
        // The common case, on bytes: no `.` right after a `/`, and no escape at all.
        var afterSlash = false
        var suspicious = false
        for byte in path.utf8 {
            if byte == UInt8(ascii: "%") || (afterSlash && byte == UInt8(ascii: ".")) {
                suspicious = true
                break
            }
            afterSlash = byte == UInt8(ascii: "/")
        }
        guard suspicious else { return false }
        return path.split(separator: "/", omittingEmptySubsequences: false).contains { segment in
            let decoded = segment.lowercased().replacing("%2e", with: ".")
            return decoded == "." || decoded == ".."
        }
    }
}
