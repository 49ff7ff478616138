/// The `host:port` a listener binds to.
///
/// A host is always required: binding every interface has to be asked for
/// explicitly (`0.0.0.0:8081` or `[::]:8081`) rather than happen because a host was left out.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// Host name or IP address, without brackets for IPv6 (`::1`, not `[::1]`).
    public var host: String
    /// TCP port; 0 lets the OS choose (useful in tests).
    public var port: Int

    /// Creates an address without checking it; `GatewayConfig.validate()` checks host and port.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `[ipv6]:port`; rejects a missing host, a missing port,
    /// a non-numeric port, a port outside 0...65535 and an unbracketed IPv6 address.
    public init(parsing text: String) throws(ConfigError) {
        func failure(_ message: String) -> ConfigError {
            ConfigError(ConfigProblem(keyPath: "", message: message))
        }
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw failure("\"\(text)\": missing \"]\" after IPv6 address")
            }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else {
                throw failure("\"\(text)\": expected \":port\" after \"]\"")
            }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw failure("\"\(text)\": expected host:port, e.g. 127.0.0.1:8081")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") {
                throw failure("\"\(text)\": put an IPv6 address in brackets, e.g. [::1]:8081")
            }
        }
        guard !host.isEmpty else {
            throw failure("\"\(text)\": missing host (use 0.0.0.0 to listen on every interface)")
        }
        // Only plain digits: Int("+80") would be accepted otherwise, and so would overflow-free junk.
        guard !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(portText) else {
            throw failure("\"\(text)\": port \"\(portText)\" is not a number")
        }
        guard (0...65535).contains(port) else {
            throw failure("\"\(text)\": port \(port) is out of range 0...65535")
        }
        self.init(host: String(host), port: port)
    }

    /// `host:port`, with IPv6 hosts in brackets so the result parses back.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

extension ListenAddress: Decodable {
    /// Decodes from a `host:port` string, turning parse failures into a decoding error
    /// so the loader can report them with the key's line.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do throws(ConfigError) {
            self = try ListenAddress(parsing: text)
        } catch {
            let message = error.problems.map(\.message).joined(separator: "; ")
            throw DecodingError.dataCorruptedError(in: container, debugDescription: message)
        }
    }
}
