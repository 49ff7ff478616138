import LHTTPConfig

/// Maps channel names to NATS subjects that cannot escape their prefix.
///
/// `<prefix>.<encoded>`: every byte of the name outside `[A-Za-z0-9_-]` (so `.`, `*`, `>`, space,
/// non-ASCII, and `~` itself) becomes `~XX` (two uppercase hex digits). The encoded token is never
/// empty, never holds a wildcard or a dot, and decodes back to exactly the name.
public enum NATSSubject {
    /// The subject of `channel` under `prefix` (itself a dot-separated list of plain tokens).
    public static func channel(_ channel: String, prefix: String) -> String {
        prefix + "." + encode(channel)
    }

    public static func encode(_ name: String) -> String {
        guard !name.isEmpty else { return "~" }
        var out: [UInt8] = []
        out.reserveCapacity(name.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in name.utf8 {
            if ClusterConfig.isTokenByte(byte) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "~"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The channel name of an encoded token, or nil when it is not one `encode` produces.
    public static func decode(_ token: Substring) -> String? {
        if token == "~" { return "" }
        var out: [UInt8] = []
        var iterator = token.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "~") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
                out.append(high << 4 | low)
            } else {
                out.append(byte)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
