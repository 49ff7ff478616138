/// `application/x-www-form-urlencoded` query parsing for request targets.
///
/// Written by hand on UTF-8 bytes: it runs for every `POST /publish`, and Foundation's `URLComponents`
/// builds a URL per call and silently accepts malformed escapes.
enum QueryString {
    /// Splits a request target into its path and its decoded query pairs, in order; the pairs are nil
    /// when an escape is malformed or decodes to invalid UTF-8.
    static func split(_ uri: String) -> (path: Substring, query: [(name: String, value: String)]?)? {
        let utf8 = uri.utf8
        guard let mark = utf8.firstIndex(of: UInt8(ascii: "?")) else { return (uri[...], []) }
        var pairs: [(name: String, value: String)] = []
        var start = utf8.index(after: mark)
        while start < utf8.endIndex {
            let end = utf8[start...].firstIndex(of: UInt8(ascii: "&")) ?? utf8.endIndex
            if start < end {
                let item = uri[start..<end]
                let equals = item.utf8.firstIndex(of: UInt8(ascii: "="))
                let rawName = equals.map { item[..<$0] } ?? item
                let rawValue = equals.map { item[item.utf8.index(after: $0)...] } ?? ""
                guard let name = percentDecode(rawName), let value = percentDecode(rawValue) else {
                    return (uri[..<mark], nil)
                }
                pairs.append((name, value))
            }
            start = end == utf8.endIndex ? end : utf8.index(after: end)
        }
        return (uri[..<mark], pairs)
    }

    /// Decodes `%XX` escapes and `+` (space). Nil on a bad escape or invalid UTF-8.
    static func percentDecode(_ text: Substring) -> String? {
        let utf8 = text.utf8
        // Fast path: nothing to decode.
        if !utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) {
            return String(text)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var iterator = utf8.makeIterator()
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
