#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 network (`10.0.0.0/8`, `::1/128`, or a single address), as `proxy.trusted_proxies`
/// lists them.
public struct IPNetwork: Sendable, Equatable, CustomStringConvertible {
    /// The network's address bytes (4 or 16), host bits cleared.
    public let bytes: [UInt8]
    /// Leading bits that must match.
    public let prefixLength: Int

    /// Parses `address` or `address/length`; nil when either part is not valid.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let bytes = Self.addressBytes(String(parts[0])) else { return nil }
        let bits = bytes.count * 8
        var length = bits
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(parts[1]), value <= bits else { return nil }
            length = value
        }
        self.prefixLength = length
        self.bytes = Self.masked(bytes, length)
    }

    /// Whether `address` (4 or 16 bytes; an IPv4-mapped IPv6 address counts as IPv4) lies in the network.
    public func contains(_ address: [UInt8]) -> Bool {
        var address = address
        if address.count == 16, self.bytes.count == 4, address.prefix(12).elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]) {
            address = Array(address.suffix(4))
        }
        guard address.count == self.bytes.count else { return false }
        return Self.masked(address, self.prefixLength) == self.bytes
    }

    public var description: String {
        var text = [CChar](repeating: 0, count: 64)
        let family = self.bytes.count == 4 ? AF_INET : AF_INET6
        _ = self.bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, 64) }
        return String(cString: text) + "/\(self.prefixLength)"
    }

    /// The bytes of a textual IPv4 or IPv6 address, nil when it is neither.
    public static func addressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    private static func masked(_ bytes: [UInt8], _ length: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let keep = max(0, min(8, length - index * 8))
            return keep == 8 ? byte : byte & ~(UInt8(0xFF) >> keep)
        }
    }
}
