@testable import LHTTPServer
import NIOCore
import Testing

@Suite("UTF-8 validation")
struct UTF8ValidatorTests {
    /// Valid UTF-8, from ASCII to 4-byte sequences at the edges of the ranges.
    static let valid: [[UInt8]] = [
        Array("plain ascii, long enough for the eight-byte path".utf8),
        Array("κόσμε".utf8),
        [0xC2, 0x80], [0xDF, 0xBF],                      // first and last 2-byte
        [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF],          // first 3-byte, last before the surrogates
        [0xEE, 0x80, 0x80], [0xEF, 0xBF, 0xBF],          // after the surrogates, U+FFFF
        [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF],  // U+10000, U+10FFFF
        [],
    ]

    /// Invalid: stray continuations, overlong forms, surrogates, beyond U+10FFFF, bad leads, truncations.
    static let invalid: [[UInt8]] = [
        [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xE0, 0x9F, 0xBF],
        [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF], [0xF0, 0x80, 0x80, 0x80], [0xF4, 0x90, 0x80, 0x80],
        [0xF5, 0x80, 0x80, 0x80], [0xFF], [0xFE], [0xC2], [0xE1, 0x80], [0xF1, 0x80, 0x80],
        [0xC2, 0x41], Array("κόσμε".utf8) + [0xED, 0xA0, 0x80] + Array("edited".utf8),
    ]

    func validate(_ chunks: [[UInt8]]) -> Bool {
        var validator = UTF8Validator()
        for chunk in chunks {
            guard validator.feed(ByteBuffer(bytes: chunk)) else { return false }
        }
        return validator.isAtBoundary
    }

    @Test(arguments: valid)
    func validTextPassesWholeAndSplitAtEveryByte(_ bytes: [UInt8]) {
        #expect(self.validate([bytes]))
        for cut in 0...bytes.count {
            #expect(self.validate([Array(bytes[..<cut]), Array(bytes[cut...])]), "cut at \(cut)")
        }
        #expect(self.validate(bytes.map { [$0] }))
    }

    @Test(arguments: invalid)
    func invalidTextFailsWholeAndSplitAtEveryByte(_ bytes: [UInt8]) {
        #expect(!self.validate([bytes]))
        for cut in 0...bytes.count {
            #expect(!self.validate([Array(bytes[..<cut]), Array(bytes[cut...])]), "cut at \(cut)")
        }
    }

    @Test func itAgreesWithTheStandardLibraryOnEveryTwoByteValue() {
        for high in 0...255 {
            for low in 0...255 {
                let bytes: [UInt8] = [UInt8(high), UInt8(low)]
                #expect(self.validate([bytes]) == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
            }
        }
    }

    @Test func itFailsAsSoonAsAByteCannotContinue() {
        var validator = UTF8Validator()
        let start = validator.feed(ByteBuffer(bytes: [0xE2, 0x82]))  // a valid start, incomplete
        #expect(start)
        #expect(!validator.isAtBoundary)
        let next = validator.feed(ByteBuffer(bytes: [0x41]))  // not a continuation: fails now
        #expect(!next)
    }
}
