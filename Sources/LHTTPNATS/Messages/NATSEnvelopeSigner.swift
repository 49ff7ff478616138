import Crypto

/// Signs and checks cluster envelopes with `cluster.secret`: HMAC-SHA256, sent as 64 lowercase hex digits.
struct NATSEnvelopeSigner: Sendable {
    /// Hex digits of a MAC in the envelope header.
    static let hexLength = 2 * SHA256.byteCount
    private let key: SymmetricKey

    /// Nil for an empty secret (signing off).
    init?(secret: String) {
        guard !secret.isEmpty else { return nil }
        self.key = SymmetricKey(data: Array(secret.utf8))
    }

    /// The MAC of `bytes` as lowercase hex.
    func hexMAC(of bytes: UnsafeRawBufferPointer) -> [UInt8] {
        let mac = HMAC<SHA256>.authenticationCode(for: bytes, using: self.key)
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(Self.hexLength)
        for byte in mac {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0F)])
        }
        return hex
    }

    /// Whether `hex` is the MAC of `bytes`; compared in constant time (swift-crypto's comparison).
    func isValid(hex: some Collection<UInt8>, for bytes: UnsafeRawBufferPointer) -> Bool {
        guard hex.count == Self.hexLength else { return false }
        var mac: [UInt8] = []
        mac.reserveCapacity(SHA256.byteCount)
        var iterator = hex.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            guard let high = Self.value(high), let low = Self.value(low) else { return false }
            mac.append(high << 4 | low)
        }
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: bytes, using: self.key)
    }

    private static func value(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}
