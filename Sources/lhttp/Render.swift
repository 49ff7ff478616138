import Foundation
import LHTTPClient
import LHTTPProtocol

/// How messages are printed.
enum Render {
    /// One line: `<channels> <command> [key=value ...]: <body>` with CR, LF and tabs escaped.
    static func line(_ message: LHTTPMessage) -> String {
        let channels = message.headers[LHTTPChannelList.publishHeader] ?? "-"
        let others = message.headers.filter { $0.name.lowercased() != LHTTPChannelList.publishHeader }
            .map { "\($0.name)=\($0.value)" }
        let head = ([channels, message.command] + others).joined(separator: " ")
        return head + ": " + escape(message.bodyString)
    }

    /// One JSON object: `{"command":..,"headers":{name: value},"body":..}` (repeated headers: the first).
    static func json(_ message: LHTTPMessage) -> String {
        var headers: [String: String] = [:]
        for header in message.headers where headers[header.name] == nil { headers[header.name] = header.value }
        let object: [String: Any] = ["command": message.command, "headers": headers, "body": message.bodyString]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// Interactive output: messages, error replies, the close.
    static func event(_ event: LHTTPClientEvent) -> String {
        switch event {
        case .message(let message, _, _) where message.command == LHTTPMessage.errorCommand:
            return "! error \(message.headers["status"] ?? "?"): \(message.headers["reason"] ?? "")"
        case .message(let message, _, _):
            return "< " + line(message)
        case .unparsable(let bytes, _):
            return "< (unparsable, \(bytes.readableBytes) bytes)"
        case .closed(let code, let reason):
            return "closed (\(code.map(String.init) ?? "no code")\(reason.isEmpty ? "" : " " + reason))"
        }
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\r", with: "\\r")
            .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\t", with: "\\t")
    }

    static func unescape(_ text: String) -> String {
        var out = ""
        var iterator = text.makeIterator()
        while let character = iterator.next() {
            guard character == "\\", let next = iterator.next() else {
                out.append(character)
                continue
            }
            switch next {
            case "r": out.append("\r")
            case "n": out.append("\n")
            case "t": out.append("\t")
            default: out.append(next)
            }
        }
        return out
    }
}
