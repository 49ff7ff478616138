/// Websocket frames as raw bytes, for tests that must send what no well-behaved client sends (reserved
/// bits, unmasked frames, bad close payloads) and read exactly what the server wrote.
public enum RawFrames {
    /// One client frame: masked with a fixed key unless `masked` is false.
    public static func client(
        opcode: UInt8, payload: [UInt8] = [], fin: Bool = true, rsv: UInt8 = 0, masked: Bool = true
    ) -> [UInt8] {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | (rsv & 0x7) << 4 | opcode & 0xF]
        let maskBit: UInt8 = masked ? 0x80 : 0
        switch payload.count {
        case 0...125:
            bytes.append(maskBit | UInt8(payload.count))
        case 126...0xFFFF:
            bytes.append(maskBit | 126)
            bytes += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        default:
            bytes.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((payload.count >> shift) & 0xFF)) }
        }
        guard masked else { return bytes + payload }
        let key: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
        bytes += key
        bytes += payload.enumerated().map { $0.element ^ key[$0.offset & 3] }
        return bytes
    }

    /// A client close frame with `code` and `reason` bytes.
    public static func close(code: UInt16, reason: [UInt8] = []) -> [UInt8] {
        client(opcode: 0x8, payload: [UInt8(code >> 8), UInt8(code & 0xFF)] + reason)
    }

    /// A frame the server sent.
    public struct ServerFrame: Equatable, Sendable, CustomStringConvertible {
        public var fin: Bool
        public var opcode: UInt8
        public var payload: [UInt8]

        /// The status code of a close frame.
        public var closeCode: UInt16? {
            guard self.opcode == 0x8, self.payload.count >= 2 else { return nil }
            return UInt16(self.payload[0]) << 8 | UInt16(self.payload[1])
        }

        public init(fin: Bool, opcode: UInt8, payload: [UInt8]) {
            self.fin = fin
            self.opcode = opcode
            self.payload = payload
        }

        public var text: String { String(decoding: self.payload, as: UTF8.self) }

        public var description: String {
            "frame(opcode: \(self.opcode), \(self.closeCode.map { "code \($0), " } ?? "")\(self.payload.count) bytes)"
        }
    }

    /// Parses the server frames in `bytes` (unmasked, as servers send them); a trailing partial frame is ignored.
    public static func serverFrames(_ bytes: [UInt8]) -> [ServerFrame] {
        var frames: [ServerFrame] = []
        var index = 0
        while index + 2 <= bytes.count {
            var length = Int(bytes[index + 1] & 0x7F)
            var header = 2
            if length == 126 {
                guard index + 4 <= bytes.count else { break }
                length = Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
                header = 4
            } else if length == 127 {
                guard index + 10 <= bytes.count else { break }
                length = bytes[(index + 2)..<(index + 10)].reduce(0) { $0 << 8 | Int($1) }
                header = 10
            }
            guard index + header + length <= bytes.count else { break }
            frames.append(ServerFrame(
                fin: bytes[index] & 0x80 != 0, opcode: bytes[index] & 0x0F,
                payload: Array(bytes[(index + header)..<(index + header + length)])
            ))
            index += header + length
        }
        return frames
    }
}
