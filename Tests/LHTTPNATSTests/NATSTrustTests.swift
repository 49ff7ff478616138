@testable import LHTTPNATS
import LHTTPProtocol
import NIOCore
import Testing

/// The pure parts of the cluster's distrust: signed envelopes, the inbound filter's verdicts, the
/// rate-limited rejection log.
@Suite("NATS envelope trust")
struct NATSTrustTests {
    static let secret = "a-cluster-secret-of-32-bytes-xyz"
    static let message = ByteBuffer(string: "LHTTP/1.0 chat\r\npublish:a b c\r\n\r\nbody")
    static let now: Int64 = 1_700_000_000_000

    static func signed(_ message: ByteBuffer = message, channels: [String] = ["a", "b", "c"], secret: String = secret, at time: Int64 = now, origin: String = "node-1#ab") -> ByteBuffer {
        NATSEnvelope.encode(
            origin: origin, sequence: 7, channels: channels, message: message,
            signer: NATSEnvelopeSigner(secret: secret), timestampMs: time, allocator: ByteBufferAllocator()
        )
    }

    static func filter(secret: String? = secret, maxAgeMs: Int64 = 60_000, limits: LHTTPLimits = .default) -> NATSInboundFilter {
        NATSInboundFilter(origin: "me#1", signer: secret.flatMap(NATSEnvelopeSigner.init(secret:)), maxAgeMs: maxAgeMs, parser: LHTTPParser(limits: limits))
    }

    @Test func aSignedEnvelopeRoundTripsAndItsMACCoversEveryByteAfterIt() throws {
        let encoded = Self.signed()
        let text = String(buffer: encoded)
        #expect(text.hasPrefix("LHC2 "))
        let fields = text.prefix { $0 != "\r\n" }.split(separator: " ")
        #expect(fields.count == 8 && fields[1].count == 64 && fields[1].allSatisfy(\.isHexDigit))
        #expect(Array(fields[2...]) == ["node-1#ab", "7", "\(Self.now)", "a", "b", "c"])
        let decoded = try #require(NATSEnvelope(decoding: encoded))
        #expect(decoded.origin == "node-1#ab" && decoded.sequence == 7 && decoded.channels == ["a", "b", "c"])
        #expect(decoded.message == Self.message)
        #expect(decoded.signature?.timestampMs == Self.now)

        let filter = Self.filter()
        #expect(filter.verdict(for: encoded, on: "b", nowMs: { Self.now }) == .deliver(Self.message, excluding: ["a"]))
        // Flip any byte of the header's other fields, the channel list or the message: refused.
        let bytes = Array(encoded.readableBytesView)
        for index in 70..<bytes.count {
            var tampered = bytes
            tampered[index] ^= 0x01
            let verdict = filter.verdict(for: ByteBuffer(bytes: tampered), on: "b", nowMs: { Self.now })
            #expect(verdict != .deliver(Self.message, excluding: ["a"]), "byte \(index)")
            guard case .reject = verdict else { Issue.record("byte \(index): \(verdict)"); continue }
        }
        // The MAC itself: any digit changed, upper case, or cut short.
        var wrongDigit = bytes
        wrongDigit[5] = wrongDigit[5] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        #expect(filter.verdict(for: ByteBuffer(bytes: wrongDigit), on: "b", nowMs: { Self.now }) == .reject(.badSignature))
        let upper = "LHC2 " + fields[1].uppercased() + text.dropFirst(69)
        #expect(filter.verdict(for: ByteBuffer(string: upper), on: "b", nowMs: { Self.now }) == .reject(.badSignature))
        #expect(filter.verdict(for: ByteBuffer(string: "LHC2 abc" + text.dropFirst(69)), on: "b", nowMs: { Self.now }) == .reject(.malformed))
    }

    @Test func withASecretOnlyEnvelopesSignedWithItAndRecentAreBelieved() {
        let filter = Self.filter()
        let unsigned = NATSEnvelope.encode(origin: "x#1", sequence: 1, channels: ["a", "b", "c"], message: Self.message, allocator: ByteBufferAllocator())
        #expect(filter.verdict(for: unsigned, on: "a", nowMs: { Self.now }) == .reject(.unsigned))
        #expect(filter.verdict(for: Self.signed(secret: "another-secret-of-enough-bytes"), on: "a", nowMs: { Self.now }) == .reject(.badSignature))
        #expect(filter.verdict(for: Self.signed(at: Self.now - 60_001), on: "a", nowMs: { Self.now }) == .reject(.stale))
        #expect(filter.verdict(for: Self.signed(at: Self.now + 60_001), on: "a", nowMs: { Self.now }) == .reject(.stale))
        #expect(filter.verdict(for: Self.signed(at: Self.now - 60_000), on: "a", nowMs: { Self.now }) == .deliver(Self.message, excluding: []))
        #expect(filter.verdict(for: Self.signed(at: .min), on: "a", nowMs: { Self.now }) == .reject(.stale))
        #expect(Self.filter(maxAgeMs: 0).verdict(for: Self.signed(at: 0), on: "a", nowMs: { Self.now }) == .deliver(Self.message, excluding: []))
        // Our own publication, signed: ignored, not counted as a stranger's.
        #expect(filter.verdict(for: Self.signed(origin: "me#1"), on: "a", nowMs: { Self.now }) == .ownEcho)
    }

    @Test func withoutASecretBothVersionsAreReadAndTheClockIsNotAsked() {
        let filter = Self.filter(secret: nil)
        let unsigned = NATSEnvelope.encode(origin: "x#1", sequence: 1, channels: ["a", "b", "c"], message: Self.message, allocator: ByteBufferAllocator())
        #expect(filter.verdict(for: unsigned, on: "c", nowMs: { Issue.record("clock asked"); return 0 }) == .deliver(Self.message, excluding: ["a", "b"]))
        #expect(filter.verdict(for: Self.signed(at: 0), on: "c", nowMs: { Issue.record("clock asked"); return 0 }) == .deliver(Self.message, excluding: ["a", "b"]))
    }

    @Test func theSubjectAndTheMessageMustAgreeWithTheEnvelope() {
        let filter = Self.filter(limits: LHTTPLimits(maxChannelsPerMessage: 3, maxChannelNameBytes: 8))
        func verdict(_ message: String, channels: [String], on channel: String) -> NATSInboundFilter.Verdict {
            filter.verdict(for: Self.signed(ByteBuffer(string: message), channels: channels), on: channel, nowMs: { Self.now })
        }
        #expect(verdict("LHTTP/1.0 chat\r\npublish:a b c\r\n\r\nbody", channels: ["a", "b", "c"], on: "x") == .reject(.wrongSubject))
        #expect(verdict("not lhttp", channels: ["a"], on: "a") == .reject(.invalidMessage))
        #expect(verdict("LHTTP/1.0 chat\r\n\r\nno publish header", channels: ["a"], on: "a") == .reject(.invalidMessage))
        #expect(verdict("LHTTP/1.0 chat\r\npublish:a\r\n\r\nfewer", channels: ["a", "b"], on: "a") == .reject(.invalidMessage))
        #expect(verdict("LHTTP/1.0 chat\r\npublish:b a\r\n\r\nother order", channels: ["a", "b"], on: "a") == .reject(.invalidMessage))
        #expect(verdict("LHTTP/1.0 chat\r\npublish:a b c d\r\n\r\nover the count", channels: ["a", "b", "c", "d"], on: "a") == .reject(.invalidMessage))
        #expect(verdict("LHTTP/1.0 chat\r\npublish:a toolongname\r\n\r\nname over the limit", channels: ["a", "toolongname"], on: "a") == .reject(.invalidMessage))
        #expect(verdict("LHTTP/1.0 chat\r\npublish:a a\r\n\r\nrepeat", channels: ["a", "a"], on: "a") == .reject(.invalidMessage))
        #expect(filter.verdict(for: ByteBuffer(string: "LHC9 x 1 a\r\nLHTTP/1.0 x\r\npublish:a\r\n\r\n"), on: "a", nowMs: { Self.now }) == .reject(.malformed))
    }

    @Test func unsignedEnvelopesStillRoundTripAndGarbageIsNotAnEnvelope() throws {
        let message = ByteBuffer(string: "LHTTP/1.0 chat\r\npublish:a b\r\n\r\nbody \r\n\r\n with CRLFs")
        let channels = ["a", "b.c", "*", ">", "é", ""]
        let encoded = NATSEnvelope.encode(origin: "node-1#ab", sequence: 42, channels: channels, message: message, allocator: ByteBufferAllocator())
        #expect(String(buffer: encoded).hasPrefix("LHC1 node-1#ab 42 a b~2Ec ~2A ~3E ~C3~A9 ~\r\n"))
        let decoded = try #require(NATSEnvelope(decoding: encoded))
        #expect(decoded == NATSEnvelope(origin: "node-1#ab", sequence: 42, channels: channels, message: message))
        let mac = String(repeating: "0", count: 64)
        for garbage in [
            "", "hello", "LHC1 x 1\r\nno channel", "LHC1 x notanumber a\r\n", "LHC1 x 1 a~Z\r\nbad escape", "LHC1 x 1 a",
            "LHC2 x 1 a\r\nbody", "LHC2 \(mac) x 1 a\r\nno timestamp", "LHC2 \(mac) x 1 soon a\r\n", "LHC2 \(mac)  1 2 a\r\nno origin",
        ] {
            #expect(NATSEnvelope(decoding: ByteBuffer(string: garbage)) == nil, "\(garbage)")
        }
    }

    @Test func rejectionsAreLoggedOncePerReasonPerInterval() {
        var log = NATSRejectionLog()
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        #expect(log.record(.badSignature, now: start) == 1)
        #expect(log.record(.badSignature, now: start + .seconds(1)) == nil)
        #expect(log.record(.badSignature, now: start + .seconds(2)) == nil)
        #expect(log.record(.unsigned, now: start + .seconds(2)) == 1, "each reason has its own line")
        #expect(log.record(.badSignature, now: start + NATSRejectionLog.interval) == 3, "the line counts what it did not log")
        #expect(log.record(.badSignature, now: start + NATSRejectionLog.interval + .seconds(1)) == nil)
        #expect(log.counts == [.badSignature: 5, .unsigned: 1])
    }
}
