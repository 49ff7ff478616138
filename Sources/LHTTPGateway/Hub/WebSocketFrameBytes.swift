import NIOCore

/// Builds complete server-to-client websocket frames (header + payload) as one buffer.
///
/// Server frames are unmasked, so one buffer is byte-identical for every subscriber: the hub builds it
/// once per publish and writes the same `ByteBuffer` to every socket, below NIO's frame encoder.
public enum WebSocketFrameBytes {
    public static let textOpcode: UInt8 = 0x1
    public static let binaryOpcode: UInt8 = 0x2
    public static let closeOpcode: UInt8 = 0x8
    public static let pongOpcode: UInt8 = 0xA
    public static let pingOpcode: UInt8 = 0x9

    /// A final frame of `opcode` carrying `payload`.
    public static func frame(opcode: UInt8, payload: ByteBuffer, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        let length = payload.readableBytes
        var buffer = allocator.buffer(capacity: length + 10)
        buffer.writeInteger(0x80 | opcode)
        switch length {
        case 0...125:
            buffer.writeInteger(UInt8(length))
        case 126...0xFFFF:
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(length))
        default:
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(length))
        }
        var payload = payload
        buffer.writeBuffer(&payload)
        return buffer
    }

    /// A text frame when `payload` is valid UTF-8, a binary frame otherwise.
    public static func message(_ payload: ByteBuffer, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        frame(opcode: payload.isValidUTF8 ? textOpcode : binaryOpcode, payload: payload, allocator: allocator)
    }

    /// A close frame with a status code and a reason (cut to fit the 123-byte control-frame limit).
    public static func close(code: UInt16, reason: String, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var payload = allocator.buffer(capacity: 125)
        payload.writeInteger(code)
        var utf8 = Array(reason.utf8.prefix(123))
        while !utf8.isEmpty, String(validating: utf8, as: UTF8.self) == nil { utf8.removeLast() }
        payload.writeBytes(utf8)
        return frame(opcode: closeOpcode, payload: payload, allocator: allocator)
    }
}

extension ByteBuffer {
    /// Whether the readable bytes are valid UTF-8. ASCII is checked eight bytes at a time.
    public var isValidUTF8: Bool {
        self.withUnsafeReadableBytes { raw in
            var index = 0
            let count = raw.count
            while index + 8 <= count {
                if raw.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { break }
                index += 8
            }
            while index < count, raw[index] < 0x80 { index += 1 }
            if index == count { return true }
            return String(validating: UnsafeRawBufferPointer(rebasing: raw[index...]), as: UTF8.self) != nil
        }
    }
}
