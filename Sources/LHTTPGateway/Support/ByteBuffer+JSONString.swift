import NIOCore

extension ByteBuffer {
    /// Writes `text` as a JSON string literal (RFC 8259 escaping).
    public mutating func writeJSONString(_ text: String) {
        self.writeStaticString("\"")
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): self.writeStaticString("\\\"")
            case UInt8(ascii: "\\"): self.writeStaticString("\\\\")
            case UInt8(ascii: "\n"): self.writeStaticString("\\n")
            case UInt8(ascii: "\r"): self.writeStaticString("\\r")
            case UInt8(ascii: "\t"): self.writeStaticString("\\t")
            case 0..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                self.writeStaticString("\\u00")
                self.writeInteger(hex[Int(byte >> 4)])
                self.writeInteger(hex[Int(byte & 0xF)])
            default:
                self.writeInteger(byte)
            }
        }
        self.writeStaticString("\"")
    }
}
