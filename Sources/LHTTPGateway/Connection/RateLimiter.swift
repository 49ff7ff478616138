import NIOCore

/// A connection's rate limits (`limits.max_messages_per_second`, `limits.max_bytes_per_second`, their
/// bursts, and `limits.max_rate_violations`). A rate of 0 turns that limit off.
public struct RateLimit: Sendable, Equatable {
    /// Messages a connection may send per second, on average.
    public var messagesPerSecond: Int
    /// Bytes per second, on average: a message counts its size times the channels it publishes to (at
    /// least 1), so a publication to 64 channels costs 64 times its size.
    public var bytesPerSecond: Int
    /// Messages that may come at once after a quiet time.
    public var burstMessages: Int
    /// Bytes that may come at once after a quiet time (a single message larger than this still passes
    /// when the allowance is full; it then has to be paid back before the next one).
    public var burstBytes: Int
    /// Messages refused in a row (none accepted between) after which the connection is closed with
    /// 4029; 0 never closes.
    public var maxViolations: Int

    public init(messagesPerSecond: Int = 0, bytesPerSecond: Int = 0, burstMessages: Int = 0, burstBytes: Int = 0, maxViolations: Int = 0) {
        self.messagesPerSecond = messagesPerSecond
        self.bytesPerSecond = bytesPerSecond
        self.burstMessages = burstMessages
        self.burstBytes = burstBytes
        self.maxViolations = maxViolations
    }

    /// No limit at all.
    public static let off = RateLimit()

    var isOff: Bool { self.messagesPerSecond <= 0 && self.bytesPerSecond <= 0 }
}

/// Two token buckets (messages, bytes) refilled continuously from the connection's clock. A plain value,
/// kept by the connection's ``SessionStateMachine``.
///
/// A message is admitted while the message bucket holds a token and the byte bucket is not in debt; its
/// bytes are then taken, possibly into debt (a large message passes on a full allowance and is paid back
/// before the next), and what it costs beyond its own size (its fan-out) is taken once it is known
/// (``charge(bytes:)``).
struct RateLimiter {
    enum Verdict: Equatable {
        case accepted
        /// Over the rate: drop this message (error reply 429).
        case refused
        /// Over the rate `maxViolations` times in a row: drop it and close the connection (4029).
        case closeConnection
    }

    private var messageTokens: Double = 0
    private var byteTokens: Double = 0
    private var last: NIODeadline?
    private var violations: Int32 = 0

    /// Decides about one message of `bytes` arriving at `now`.
    mutating func admit(bytes: Int, now: NIODeadline, limit: RateLimit) -> Verdict {
        guard !limit.isOff else { return .accepted }
        self.refill(now: now, limit: limit)
        let messagesOK = limit.messagesPerSecond <= 0 || self.messageTokens >= 1
        let bytesOK = limit.bytesPerSecond <= 0 || self.byteTokens > 0
        guard messagesOK, bytesOK else {
            if self.violations < Int32.max { self.violations += 1 }  // a flood that is never closed must not overflow
            return limit.maxViolations > 0 && Int(self.violations) >= limit.maxViolations ? .closeConnection : .refused
        }
        self.violations = 0
        if limit.messagesPerSecond > 0 { self.messageTokens -= 1 }
        if limit.bytesPerSecond > 0 { self.byteTokens -= Double(bytes) }
        return .accepted
    }

    /// Takes `bytes` more from the byte allowance (a publication's fan-out beyond its own size).
    mutating func charge(bytes: Int, limit: RateLimit) {
        guard limit.bytesPerSecond > 0, bytes > 0 else { return }
        self.byteTokens -= Double(bytes)
    }

    private mutating func refill(now: NIODeadline, limit: RateLimit) {
        guard let last = self.last else {
            // The first message finds both allowances full.
            self.last = now
            self.messageTokens = Double(max(limit.burstMessages, 1))
            self.byteTokens = Double(max(limit.burstBytes, 1))
            return
        }
        let seconds = Double(max((now - last).nanoseconds, 0)) / 1e9
        self.last = now
        if limit.messagesPerSecond > 0 {
            self.messageTokens = min(self.messageTokens + seconds * Double(limit.messagesPerSecond), Double(max(limit.burstMessages, 1)))
        }
        if limit.bytesPerSecond > 0 {
            self.byteTokens = min(self.byteTokens + seconds * Double(limit.bytesPerSecond), Double(max(limit.burstBytes, 1)))
        }
    }
}
