import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Monotonic nanoseconds, for publish→receive latency within one process.
enum BenchClock {
    static func nanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// CPU time (user + system) the bench process has used, in nanoseconds: against the wall clock it
    /// tells whether the load generator's core, rather than the server, was the limit.
    static func processCPUNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// The body of every bench message: `<seq>.<sent-nanos>.<filler>`, where the filler is a pattern derived
/// from the sequence number, so a receiver checks every byte without keeping a copy.
/// Warm-up messages are `w.<filler>`.
enum BenchPayload {
    enum Parsed: Equatable {
        case message(seq: Int, sentNanos: UInt64)
        case warmup
        case corrupt
    }

    static func fillerByte(seq: Int, index: Int) -> UInt8 {
        UInt8(ascii: "a") + UInt8(truncatingIfNeeded: (seq &+ index) % 26)  // seq, index >= 0
    }

    /// A body of at least `size` bytes (the size grows only when the header alone is longer).
    static func make(seq: Int, sentNanos: UInt64, size: Int) -> [UInt8] {
        var bytes = Array("\(seq).\(sentNanos).".utf8)
        let fill = max(size - bytes.count, 1)
        bytes.reserveCapacity(bytes.count + fill)
        for index in 0..<fill { bytes.append(fillerByte(seq: seq, index: index)) }
        return bytes
    }

    static func warmup(size: Int) -> [UInt8] {
        var bytes = Array("w.".utf8)
        for index in 0..<max(size - 2, 1) { bytes.append(fillerByte(seq: 7, index: index)) }
        return bytes
    }

    /// Checks a received body byte for byte.
    static func parse(_ body: UnsafeRawBufferPointer) -> Parsed {
        var index = 0
        let count = body.count
        if count >= 2, body[0] == UInt8(ascii: "w"), body[1] == UInt8(ascii: ".") {
            return checkFiller(body, from: 2, seq: 7) ? .warmup : .corrupt
        }
        var seq = 0
        var digits = 0
        while index < count, body[index] != UInt8(ascii: ".") {
            let d = body[index] &- UInt8(ascii: "0")
            guard d < 10, digits < 12 else { return .corrupt }
            seq = seq * 10 + Int(d)
            digits += 1
            index += 1
        }
        guard digits > 0, index < count else { return .corrupt }
        index += 1
        var sent: UInt64 = 0
        digits = 0
        while index < count, body[index] != UInt8(ascii: ".") {
            let d = body[index] &- UInt8(ascii: "0")
            guard d < 10, digits < 20 else { return .corrupt }
            sent = sent &* 10 &+ UInt64(d)
            digits += 1
            index += 1
        }
        guard digits > 0, index < count else { return .corrupt }
        index += 1
        return checkFiller(body, from: index, seq: seq) ? .message(seq: seq, sentNanos: sent) : .corrupt
    }

    private static func checkFiller(_ body: UnsafeRawBufferPointer, from start: Int, seq: Int) -> Bool {
        guard start < body.count else { return false }
        var expected = Int(fillerByte(seq: seq, index: 0) - UInt8(ascii: "a"))
        for index in start..<body.count {
            guard body[index] == UInt8(ascii: "a") + UInt8(expected) else { return false }
            expected = expected == 25 ? 0 : expected + 1
        }
        return true
    }
}
