/// A place in a channel's stream of publications: `<epoch>:<offset>` on the wire (`seq:`, `since:`, `stream:`).
///
/// Offsets only grow within an epoch. The epoch is a token that changes whenever the stream was lost (the
/// memory store after a restart, a channel's record dropped after it stayed empty for its meta TTL, a new
/// JetStream stream), so a position from an old stream is never mistaken for one of the new stream.
public struct HistoryPosition: Sendable, Hashable, CustomStringConvertible {
    /// The stream's identity: no spaces, no colons (see ``isValidEpoch(_:)``).
    public var epoch: String
    /// The last publication seen (0: none; the first publication has offset 1 on one node).
    public var offset: UInt64

    public init(epoch: String, offset: UInt64) {
        precondition(Self.isValidEpoch(epoch), "invalid epoch token")
        self.epoch = epoch
        self.offset = offset
    }

    /// `<epoch>:<offset>`.
    public var description: String { "\(self.epoch):\(self.offset)" }

    /// Parses `<epoch>:<offset>`; nil for anything else (the caller answers a malformed `since:` itself).
    public init?(parsing text: Substring) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let epoch = text[..<colon]
        let digits = text[text.index(after: colon)...]
        guard Self.isValidEpoch(epoch), !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let offset = UInt64(digits)
        else { return nil }
        self.epoch = String(epoch)
        self.offset = offset
    }

    /// 1 to 64 characters of `A-Z a-z 0-9 - _ .`: what a header value, a JSON string and a NATS subject
    /// token can all carry unchanged.
    public static func isValidEpoch(_ token: some StringProtocol) -> Bool {
        let bytes = token.utf8
        guard !bytes.isEmpty, bytes.count <= 64 else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
                return true
            default:
                return false
            }
        }
    }

    /// A fresh epoch: 12 random characters of `0-9a-z` (62 bits), unlikely to repeat across restarts.
    public static func newEpoch<R: RandomNumberGenerator>(using generator: inout R) -> String {
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(12)
        for _ in 0..<12 { bytes.append(alphabet[Int.random(in: 0..<alphabet.count, using: &generator)]) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
