import Foundation

/// `ws://host[:port][/path]` (wss is refused: the client speaks plain TCP; put TLS in front of lhttpd).
struct WebSocketURL {
    var host: String
    var port: Int
    var path: String

    struct Invalid: Error, CustomStringConvertible {
        var description: String
    }

    init(_ text: String) throws {
        guard let components = URLComponents(string: text), components.scheme?.lowercased() == "ws", let host = components.host, !host.isEmpty else {
            throw Invalid(description: "\"\(text)\" is not a ws:// URL (ws://127.0.0.1:8081/ws)")
        }
        self.host = host
        self.port = components.port ?? 80
        var path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery { path += "?" + query }
        self.path = path
    }
}

/// `http://host[:port]`.
struct HTTPURL {
    var host: String
    var port: Int

    init(_ text: String) throws {
        guard let components = URLComponents(string: text), components.scheme?.lowercased() == "http", let host = components.host, !host.isEmpty else {
            throw WebSocketURL.Invalid(description: "\"\(text)\" is not an http:// URL (http://127.0.0.1:8081)")
        }
        self.host = host
        self.port = components.port ?? 80
    }
}

/// `--header name:value` options.
enum HeaderOption {
    static func parse(_ options: [String]) -> [(String, String)] {
        options.compactMap { option in
            guard let colon = option.firstIndex(of: ":") else { return nil }
            return (String(option[..<colon]).trimmingCharacters(in: .whitespaces), String(option[option.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
        }
    }
}

/// Query-string escaping for channel names and commands.
enum QueryEscape {
    private static let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
