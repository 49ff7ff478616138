import CCurl

/// Which URLs the `upstream` header may reach: prefixes from `upstream.allow`.
///
/// URLs are parsed by libcurl's own URL parser (`curl_url`), the same one the request will use, so the
/// check and the call cannot disagree about host, port or path. A URL is allowed when it parses, its
/// scheme is http or https, it has no userinfo (`http://allowed@evil/`), its path holds no encoded dot,
/// slash or backslash (`%2e`, `%2f`, `%5c`: a backend could decode them into a `..` escape), and, after
/// libcurl removed dot segments, scheme, host and port equal an allowed prefix's and its path starts with
/// the prefix's path on a segment boundary.
public struct UpstreamURLPolicy: Sendable {
    struct Location: Sendable, Equatable {
        var scheme: String
        var host: String
        var port: Int
        var path: String
        /// The normalized URL, as libcurl will request it.
        var url: String
    }

    private let prefixes: [Location]

    /// - Throws: ``UpstreamError/disallowed(_:)`` naming the first unusable prefix.
    public init(allow: [String]) throws(UpstreamError) {
        var prefixes: [Location] = []
        for prefix in allow {
            prefixes.append(try Self.parse(prefix))
        }
        self.prefixes = prefixes
    }

    /// True when no URL at all is allowed (the default: the upstream header is refused).
    public var isEmpty: Bool { self.prefixes.isEmpty }

    /// The normalized URL to request, or ``UpstreamError/disallowed(_:)``.
    public func check(_ url: String) throws(UpstreamError) -> String {
        let location = try Self.parse(url)
        for prefix in self.prefixes where prefix.scheme == location.scheme && prefix.host == location.host
            && prefix.port == location.port && Self.path(location.path, isUnder: prefix.path)
        {
            return location.url
        }
        throw .disallowed("\(location.url) is not under an allowed prefix")
    }

    static func path(_ path: String, isUnder prefix: String) -> Bool {
        if prefix.hasSuffix("/") { return path.hasPrefix(prefix) }
        return path == prefix || path.hasPrefix(prefix + "/")
    }

    static func parse(_ text: String) throws(UpstreamError) -> Location {
        guard let handle = curl_url() else { throw .disallowed("curl_url failed") }
        defer { curl_url_cleanup(handle) }
        guard !text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            throw .disallowed("URL contains whitespace or control characters")
        }
        guard curl_url_set(handle, CURLUPART_URL, text, 0) == CURLUE_OK else {
            throw .disallowed("cannot parse \(text)")
        }
        func part(_ which: CURLUPart, _ flags: UInt32 = 0) -> String? {
            var value: UnsafeMutablePointer<CChar>?
            guard curl_url_get(handle, which, &value, flags) == CURLUE_OK, let value else { return nil }
            defer { curl_free(value) }
            return String(cString: value)
        }
        guard let scheme = part(CURLUPART_SCHEME)?.lowercased(), scheme == "http" || scheme == "https" else {
            throw .disallowed("only http and https URLs are allowed")
        }
        guard part(CURLUPART_USER) == nil, part(CURLUPART_PASSWORD) == nil else {
            throw .disallowed("URLs with userinfo are not allowed")
        }
        guard let host = part(CURLUPART_HOST)?.lowercased(), !host.isEmpty,
            let port = part(CURLUPART_PORT, UInt32(CURLU_DEFAULT_PORT)).flatMap(Int.init)
        else {
            throw .disallowed("URL has no host")
        }
        let path = part(CURLUPART_PATH) ?? "/"
        let lowered = path.lowercased()
        guard !lowered.contains("%2e"), !lowered.contains("%2f"), !lowered.contains("%5c"), !path.contains("\\") else {
            throw .disallowed("encoded dots or slashes in the path are not allowed")
        }
        // Drop any fragment: it is never sent.
        _ = curl_url_set(handle, CURLUPART_FRAGMENT, nil, 0)
        guard let url = part(CURLUPART_URL) else { throw .disallowed("cannot rebuild \(text)") }
        return Location(scheme: scheme, host: host, port: port, path: path, url: url)
    }
}
