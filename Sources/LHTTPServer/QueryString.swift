/// `application/x-www-form-urlencoded` query parsing for request targets.
enum QueryString {
    /// Splits a request target into its path and its decoded query pairs, in order.
    static func split(_ uri: String) -> (path: Substring, query: [(name: String, value: String)]?)? {
        guard let mark = uri.firstIndex(of: "?") else { return (uri[...], []) }
        var pairs: [(String, String)] = []
        for item in uri[uri.index(after: mark)...].split(separator: "&", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = percentDecode(parts[0]),
                let value = parts.count > 1 ? percentDecode(parts[1]) : ""
            else { return (uri[..<mark], nil) }
            pairs.append((name, value))
        }
        return (uri[..<mark], pairs)
    }

    /// Decodes `%XX` escapes and `+` (space). Nil on a bad escape or invalid UTF-8.
    static func percentDecode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            default:
                bytes.append(byte)
            }
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
