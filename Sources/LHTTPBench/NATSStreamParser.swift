#if canImport(Glibc)
import Glibc
#endif

/// The server side of the NATS text protocol as a subscriber sees it, parsed from a byte stream whose
/// chunks (websocket frame payloads) need not line up with protocol messages: a chunk may hold several,
/// and a message may be split over several chunks.
///
/// Complete messages are parsed in place out of the chunk; only a message split over a chunk boundary is
/// copied (into `pending`, whose storage is kept), so the steady state allocates nothing. A plain struct
/// that never sees a socket; one per connection.
struct NATSStreamParser {
    /// What the server said. A `message` payload is borrowed from the chunk (or `pending`) for the call.
    enum Event {
        case message(UnsafeRawBufferPointer)
        case ping
        case pong
        case ok
        case info
        case error(String)
    }

    /// The stream is not NATS: the connection should end.
    struct ProtocolError: Error, Equatable, CustomStringConvertible {
        var description: String
    }

    /// Longest control line accepted (the server's INFO is ~400 bytes; a MSG line is short).
    static let maxLine = 64 * 1024

    /// The start of a message split over chunks: a partial line, or a complete MSG line whose payload is
    /// still incomplete (then `pendingNeed` is the whole message's length).
    private var pending: [UInt8] = []
    private var pendingNeed: Int?

    /// Parses `chunk`, calling `handle` for every complete message in order; keeps an incomplete tail.
    mutating func parse(_ chunk: UnsafeRawBufferPointer, _ handle: (Event) -> Void) throws {
        var offset = 0
        let count = chunk.count
        // First complete the message split over the previous chunk boundary, taking only its own bytes.
        while !self.pending.isEmpty {
            if let need = self.pendingNeed {
                let take = min(need - self.pending.count, count - offset)
                self.pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[offset..<(offset + take)]))
                offset += take
                if self.pending.count < need { return }
            } else {
                guard let newline = Self.newline(in: chunk, from: offset) else {
                    self.pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[offset...]))
                    guard self.pending.count <= Self.maxLine else { throw ProtocolError(description: "control line longer than \(Self.maxLine) bytes") }
                    return
                }
                self.pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[offset...newline]))
                offset = newline + 1
            }
            let step = try self.pending.withUnsafeBytes { bytes in try Self.next(bytes, from: 0, handle) }
            switch step {
            case .complete:
                self.pending.removeAll(keepingCapacity: true)
                self.pendingNeed = nil
            case .incomplete(let need):
                self.pendingNeed = need  // a MSG line is in: now its payload
            }
        }
        while offset < count {
            switch try Self.next(chunk, from: offset, handle) {
            case .complete(let consumed):
                offset += consumed
            case .incomplete(let need):
                self.pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[offset...]))
                self.pendingNeed = need
                if need == nil, self.pending.count > Self.maxLine {
                    throw ProtocolError(description: "control line longer than \(Self.maxLine) bytes")
                }
                return
            }
        }
    }

    /// True while a message is split over chunks (for tests).
    var hasPending: Bool { !self.pending.isEmpty }

    enum Step: Equatable {
        case complete(consumed: Int)
        /// More bytes needed: the whole message's length once known (a MSG line was read), else nil (no
        /// line end yet).
        case incomplete(need: Int?)
    }

    /// Parses one message starting at `start`.
    static func next(_ bytes: UnsafeRawBufferPointer, from start: Int, _ handle: (Event) -> Void) throws -> Step {
        guard let newline = newline(in: bytes, from: start) else { return .incomplete(need: nil) }
        let lineLength = newline + 1 - start
        var end = newline  // the line without its CR LF
        if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        guard end - start >= 2 else { throw ProtocolError(description: "empty control line") }
        let first = bytes[start] | 0x20
        let second = bytes[start + 1] | 0x20
        switch (first, second) {
        case (UInt8(ascii: "m"), UInt8(ascii: "s")):  // MSG <subject> <sid> [reply-to] <#bytes>
            guard let size = lastNumber(bytes, start: start, end: end) else { throw lineError(bytes, start, end) }
            return try payload(bytes, start: start, lineLength: lineLength, headers: 0, total: size, handle)
        case (UInt8(ascii: "h"), UInt8(ascii: "m")):  // HMSG <subject> <sid> [reply-to] <#header bytes> <#total bytes>
            guard let total = lastNumber(bytes, start: start, end: end) else { throw lineError(bytes, start, end) }
            var before = end
            while before > start, bytes[before - 1] != UInt8(ascii: " ") { before -= 1 }
            while before > start, bytes[before - 1] == UInt8(ascii: " ") { before -= 1 }
            guard let headers = lastNumber(bytes, start: start, end: before), headers <= total else { throw lineError(bytes, start, end) }
            return try payload(bytes, start: start, lineLength: lineLength, headers: headers, total: total, handle)
        case (UInt8(ascii: "p"), UInt8(ascii: "i")):
            handle(.ping)
        case (UInt8(ascii: "p"), UInt8(ascii: "o")):
            handle(.pong)
        case (UInt8(ascii: "+"), UInt8(ascii: "o")):
            handle(.ok)
        case (UInt8(ascii: "i"), UInt8(ascii: "n")):
            handle(.info)
        case (UInt8(ascii: "-"), UInt8(ascii: "e")):
            handle(.error(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)))
        default:
            throw lineError(bytes, start, end)
        }
        return .complete(consumed: lineLength)
    }

    /// The payload after a MSG/HMSG line: `total` bytes (the first `headers` of them NATS headers) and CR LF.
    private static func payload(
        _ bytes: UnsafeRawBufferPointer, start: Int, lineLength: Int, headers: Int, total: Int, _ handle: (Event) -> Void
    ) throws -> Step {
        let need = lineLength + total + 2
        guard bytes.count - start >= need else { return .incomplete(need: need) }
        let body = start + lineLength
        guard bytes[body + total] == UInt8(ascii: "\r"), bytes[body + total + 1] == UInt8(ascii: "\n") else {
            throw ProtocolError(description: "message payload not followed by CR LF")
        }
        handle(.message(UnsafeRawBufferPointer(rebasing: bytes[(body + headers)..<(body + total)])))
        return .complete(consumed: need)
    }

    /// The decimal number ending the line `start..<end` (the last space-separated token).
    private static func lastNumber(_ bytes: UnsafeRawBufferPointer, start: Int, end: Int) -> Int? {
        var index = end
        var value = 0
        var scale = 1
        while index > start, bytes[index - 1] != UInt8(ascii: " ") {
            let digit = bytes[index - 1] &- UInt8(ascii: "0")
            guard digit < 10, scale <= 1_000_000_000 else { return nil }
            value += Int(digit) * scale
            scale *= 10
            index -= 1
        }
        return scale > 1 && index > start ? value : nil
    }

    private static func newline(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < bytes.count, let base = bytes.baseAddress else { return nil }
        guard let found = memchr(base + start, 0x0A, bytes.count - start) else { return nil }
        return UnsafeRawPointer(found) - base
    }

    private static func lineError(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> ProtocolError {
        let line = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<min(end, start + 80)]), as: UTF8.self)
        return ProtocolError(description: "unexpected NATS line: \(line)")
    }
}
