import NIOCore

/// Checks UTF-8 incrementally, across the fragments of a text message (RFC 6455 8.1: a text message
/// must be valid UTF-8 as a whole; a fragment may end inside a code point).
///
/// It fails as soon as a byte cannot continue a valid sequence (so an invalid fragment is refused before
/// the message ends), and rejects everything RFC 3629 excludes: overlong forms, surrogates (U+D800–DFFF),
/// code points above U+10FFFF, stray continuation bytes, and a message that ends inside a sequence.
struct UTF8Validator: Equatable {
    /// Continuation bytes still expected in the current code point.
    private var needed: UInt8 = 0
    /// The range the next continuation byte must fall in (narrower right after some lead bytes).
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF

    /// Feeds the readable bytes of `buffer`. - Returns: false once the bytes cannot be valid UTF-8.
    mutating func feed(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { self.feed($0) }
    }

    mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        let count = bytes.count
        while index < count {
            if self.needed == 0 {
                // ASCII runs, eight bytes at a time: the common case for LHTTP headers and JSON bodies.
                while index + 8 <= count, bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                    index += 8
                }
                guard index < count else { break }
                let byte = bytes[index]
                index += 1
                switch byte {
                case 0x00...0x7F: continue
                case 0xC2...0xDF: self.expect(1, 0x80, 0xBF)
                case 0xE0: self.expect(2, 0xA0, 0xBF)  // no overlong 3-byte forms
                case 0xE1...0xEC, 0xEE...0xEF: self.expect(2, 0x80, 0xBF)
                case 0xED: self.expect(2, 0x80, 0x9F)  // no surrogates
                case 0xF0: self.expect(3, 0x90, 0xBF)  // no overlong 4-byte forms
                case 0xF1...0xF3: self.expect(3, 0x80, 0xBF)
                case 0xF4: self.expect(3, 0x80, 0x8F)  // nothing above U+10FFFF
                default: return false  // continuation byte without a lead, C0/C1 (overlong), F5...FF
                }
            } else {
                let byte = bytes[index]
                index += 1
                guard byte >= self.lower, byte <= self.upper else { return false }
                self.needed -= 1
                self.lower = 0x80
                self.upper = 0xBF
            }
        }
        return true
    }

    /// Whether the bytes so far end on a code point boundary (required at the end of a message).
    var isAtBoundary: Bool { self.needed == 0 }

    private mutating func expect(_ count: UInt8, _ lower: UInt8, _ upper: UInt8) {
        self.needed = count
        self.lower = lower
        self.upper = upper
    }
}
