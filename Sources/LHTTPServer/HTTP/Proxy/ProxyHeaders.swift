import LHTTPConfig
import NIOCore
import NIOHTTP1

/// The header rules of the reverse proxy (RFC 7230 6.1, RFC 7239), one place for both directions.
enum ProxyHeaders {
    /// Hop-by-hop headers: never forwarded, either way (plus whatever `Connection` lists).
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-connection", "proxy-authenticate", "proxy-authorization",
    ]

    /// What the client and its connection look like to the backend.
    struct Client: Sendable {
        /// The peer's address bytes (4 or 16) and its text; nil for a non-IP peer.
        var address: [UInt8]?
        var addressText: String
        /// `https` behind TLS, else `http`.
        var scheme: String
        /// The user of a verified connection token on the request (sent as `X-LHTTP-User`).
        var user: String?
    }

    /// The request headers for the backend: hop-by-hop and framing headers removed (libcurl frames the
    /// body), client-sent `X-LHTTP-*` removed, `Host` kept, and the `X-Forwarded-*` and `Forwarded` of
    /// this hop: appended to when the peer is in `trusted`, replaced otherwise.
    static func request(_ headers: HTTPHeaders, client: Client, trusted: [IPNetwork]) -> [(name: String, value: String)] {
        let listed = Self.connectionListed(headers["connection"])
        let isTrusted = client.address.map { address in trusted.contains { $0.contains(address) } } ?? false
        var forwarded: [(name: String, value: String)] = []
        forwarded.reserveCapacity(headers.count + 5)
        var priorFor: [String] = []
        var priorForwarded: [String] = []
        var priorProto: String?
        var priorHost: String?
        for (name, value) in headers {
            let lowered = name.lowercased()
            if Self.hopByHop.contains(lowered) || listed.contains(lowered) { continue }
            switch lowered {
            case "content-length", "expect":
                continue
            case "x-forwarded-for":
                if isTrusted { priorFor.append(value) }
                continue
            case "forwarded":
                if isTrusted { priorForwarded.append(value) }
                continue
            case "x-forwarded-proto":
                if isTrusted, priorProto == nil { priorProto = value }
                continue
            case "x-forwarded-host":
                if isTrusted, priorHost == nil { priorHost = value }
                continue
            default:
                if lowered.hasPrefix("x-lhttp-") { continue }
                forwarded.append((name, value))
            }
        }
        let host = headers.first(name: "host")
        priorFor.append(client.addressText)
        forwarded.append(("X-Forwarded-For", priorFor.joined(separator: ", ")))
        forwarded.append(("X-Forwarded-Proto", priorProto ?? client.scheme))
        if let forwardedHost = priorHost ?? host { forwarded.append(("X-Forwarded-Host", forwardedHost)) }
        // RFC 7239 4: an IPv6 node in brackets, and quoted (":" is not a token character).
        let node = client.addressText.contains(":") ? "\"[\(client.addressText)]\"" : client.addressText
        var element = "for=\(node);proto=\(client.scheme)"
        if let host, Self.isToken(host) { element += ";host=\(host)" } else if let host { element += ";host=\"\(host)\"" }
        priorForwarded.append(element)
        forwarded.append(("Forwarded", priorForwarded.joined(separator: ", ")))
        if let user = client.user { forwarded.append(("X-LHTTP-User", user)) }
        return forwarded
    }

    /// The backend's response headers for the client: hop-by-hop removed (the server frames the body
    /// itself), and any line that is not a valid header dropped.
    static func response(_ lines: [(name: String, value: String)]) -> HTTPHeaders {
        let listed = Self.connectionListed(lines.lazy.filter { $0.name.lowercased() == "connection" }.map(\.value))
        var headers = HTTPHeaders()
        for line in lines {
            let lowered = line.name.lowercased()
            guard !Self.hopByHop.contains(lowered), !listed.contains(lowered), Self.isValid(name: line.name, value: line.value) else { continue }
            headers.add(name: line.name, value: line.value)
        }
        return headers
    }

    /// The header names the `Connection` values list (they are hop-by-hop too).
    static func connectionListed(_ values: some Sequence<String>) -> Set<String> {
        var listed: Set<String> = []
        for value in values {
            for token in value.split(separator: ",") { listed.insert(token.trimmingCharacters(in: [" ", "\t"]).lowercased()) }
        }
        return listed
    }

    /// A token (RFC 7230 3.2.6) name and a value without CR, LF or NUL.
    static func isValid(name: String, value: String) -> Bool {
        Self.isToken(name) && !value.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }
    }

    static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
            default: return "!#$%&'*+-.^_`|~".utf8.contains(byte)
            }
        }
    }
}
