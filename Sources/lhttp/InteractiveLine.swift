import LHTTPProtocol

/// One line typed in interactive mode, as an action.
enum InteractiveLine {
    enum Action {
        case help
        case quit
        case send(LHTTPMessage)
        case raw(String)
    }

    struct Error: Swift.Error {
        var message: String
    }

    static func parse(_ line: String) throws(Error) -> Action? {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return nil }
        let words = trimmed.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        switch words[0] {
        case "help", "?":
            return .help
        case "quit", "exit":
            return .quit
        case "sub", "subscribe":
            guard words.count > 1 else { throw Error(message: "sub <channel...>") }
            return .send(LHTTPMessage(command: "subscribe", headers: [LHTTPChannelList.subscribeHeader: words.dropFirst().joined(separator: " ")]))
        case "unsub", "unsubscribe":
            guard words.count > 1 else { throw Error(message: "unsub <channel...>") }
            return .send(LHTTPMessage(command: "unsubscribe", headers: [LHTTPChannelList.unsubscribeHeader: words.dropFirst().joined(separator: " ")]))
        case "pub", "publish":
            guard words.count > 2 else { throw Error(message: "pub <channel> <text>") }
            let text = trimmed.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true).dropFirst(2).joined()
            return .send(LHTTPMessage(command: "publish", headers: [LHTTPChannelList.publishHeader: words[1]], body: Render.unescape(text)))
        case "send":
            guard words.count > 1 else { throw Error(message: "send <command> [key:value ...] [-- body]") }
            var headers = LHTTPHeaders()
            var body = ""
            var index = 2
            while index < words.count {
                if words[index] == "--" {
                    body = words[(index + 1)...].joined(separator: " ")
                    break
                }
                guard let colon = words[index].firstIndex(of: ":"), colon != words[index].startIndex else {
                    throw Error(message: "header \(words[index]) is not key:value")
                }
                headers.add(name: String(words[index][..<colon]), value: String(words[index][words[index].index(after: colon)...]))
                index += 1
            }
            return .send(LHTTPMessage(command: words[1], headers: headers, body: Render.unescape(body)))
        case "raw":
            return .raw(Render.unescape(String(trimmed.dropFirst(3)).trimmingCharacters(in: .whitespaces)))
        default:
            throw Error(message: "unknown command \(words[0]) (try help)")
        }
    }
}
