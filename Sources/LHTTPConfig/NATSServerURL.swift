/// One entry of `cluster.nats`: `nats://[user:password@|token@]host[:port]`.
///
/// Userinfo may be percent-encoded (`%40` for `@`). A user without a password is a token.
public struct NATSServerURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String?
    public var password: String?
    public var token: String?

    public static let defaultPort = 4222

    public init(host: String, port: Int = NATSServerURL.defaultPort, user: String? = nil, password: String? = nil, token: String? = nil) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.token = token
    }

    /// Why a URL was refused.
    public struct ParseError: Error, Sendable, Equatable {
        public var message: String
    }

    public init(parsing text: String) throws(ParseError) {
        let scheme = "nats://"
        guard text.lowercased().hasPrefix(scheme) else {
            throw ParseError(message: "\"\(Self.redacted(text))\" must start with nats://")
        }
        var rest = Substring(text.dropFirst(scheme.count))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains(where: { $0 == "/" || $0 == "?" || $0 == "#" || $0 == " " }) else {
            throw ParseError(message: "\"\(Self.redacted(text))\" must be nats://[user:password@]host[:port], without path or query")
        }
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                guard let user = Self.percentDecoded(userinfo[..<colon]),
                    let password = Self.percentDecoded(userinfo[userinfo.index(after: colon)...])
                else { throw ParseError(message: "bad percent-encoding in the userinfo of \"\(Self.redacted(text))\"") }
                self.user = user
                self.password = password
            } else {
                guard let token = Self.percentDecoded(userinfo), !token.isEmpty else {
                    throw ParseError(message: "bad token in \"\(Self.redacted(text))\"")
                }
                self.token = token
            }
        }
        var host = rest
        var port = Self.defaultPort
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                throw ParseError(message: "\"\(Self.redacted(text))\": unclosed [ in the host")
            }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let value = Int(after.dropFirst()) else {
                    throw ParseError(message: "\"\(Self.redacted(text))\": bad port")
                }
                port = value
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let value = Int(rest[rest.index(after: colon)...]) else {
                throw ParseError(message: "\"\(Self.redacted(text))\": bad port")
            }
            port = value
        }
        guard !host.isEmpty else { throw ParseError(message: "\"\(Self.redacted(text))\" has no host") }
        guard (1...65535).contains(port) else { throw ParseError(message: "\"\(Self.redacted(text))\": port \(port) out of range 1...65535") }
        self.host = String(host)
        self.port = port
    }

    /// `nats://host:port` without credentials: safe for logs and `/healthz`.
    public var description: String {
        self.host.contains(":") ? "nats://[\(self.host)]:\(self.port)" : "nats://\(self.host):\(self.port)"
    }

    /// The URL with its userinfo replaced by `***`, for error messages.
    static func redacted(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@"), let start = text.range(of: "://")?.upperBound, start <= at else { return text }
        return String(text[..<start]) + "***" + String(text[at...])
    }

    private static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
