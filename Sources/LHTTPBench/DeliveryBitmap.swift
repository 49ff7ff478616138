/// Which (subscriber, sequence number) pairs arrived: one bit each, in one flat allocation, so the
/// receive path does no array copy-on-write or exclusivity checks. Confined to the bench's event loop.
final class DeliveryBitmap {
    private let words: UnsafeMutablePointer<UInt64>
    private let wordsPerRow: Int
    private let rows: Int

    init(rows: Int, bits: Int) {
        self.rows = rows
        self.wordsPerRow = (bits + 63) / 64
        let count = max(rows * self.wordsPerRow, 1)
        self.words = .allocate(capacity: count)
        self.words.initialize(repeating: 0, count: count)
    }

    deinit {
        self.words.deallocate()
    }

    /// Sets the bit; returns false if it was already set (a duplicate).
    @inline(__always)
    func insert(row: Int, bit: Int) -> Bool {
        let word = self.words + row * self.wordsPerRow + (bit >> 6)
        let mask = UInt64(1) << UInt64(bit & 63)
        guard word.pointee & mask == 0 else { return false }
        word.pointee |= mask
        return true
    }
}

/// Per-message countdown of subscribers still to receive it; flat storage, like ``DeliveryBitmap``.
final class Countdown {
    private let counts: UnsafeMutablePointer<Int32>

    init(count: Int, start: Int) {
        self.counts = .allocate(capacity: max(count, 1))
        self.counts.initialize(repeating: Int32(start), count: max(count, 1))
    }

    deinit {
        self.counts.deallocate()
    }

    /// Decrements entry `index`; true when it reached zero.
    @inline(__always)
    func tick(_ index: Int) -> Bool {
        self.counts[index] -= 1
        return self.counts[index] == 0
    }
}
