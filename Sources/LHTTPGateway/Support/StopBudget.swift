import NIOConcurrencyHelpers

/// The time a graceful stop may take (`shutdown_timeout_s`), counted from the moment it starts (the
/// signal) on a clock passed in, and shared by every step of the stop: the server's drain, then the calls
/// still in flight, then the cluster link. Each step gets what the earlier ones left.
public final class StopBudget: Sendable {
    public let timeout: Duration
    /// The clock every step waits on.
    public let clock: any Clock<Duration>
    /// Time left, once started.
    private let remainingTime = NIOLockedValueBox<(@Sendable () -> Duration)?>(nil)

    public init(timeout: Duration, clock: any Clock<Duration> = ContinuousClock()) {
        self.timeout = timeout
        self.clock = clock
    }

    /// Starts the count (the first call wins; later ones keep the first deadline).
    public func start() {
        self.remainingTime.withLockedValue { remaining in
            if remaining == nil { remaining = Self.countdown(on: self.clock, from: self.timeout) }
        }
    }

    /// Whether ``start()`` was called.
    public var isStarted: Bool { self.remainingTime.withLockedValue { $0 != nil } }

    /// What is left (all of it before ``start()``; never negative).
    public var remaining: Duration {
        self.remainingTime.withLockedValue { $0 }?() ?? self.timeout
    }

    private static func countdown<C: Clock>(on clock: C, from timeout: Duration) -> @Sendable () -> Duration where C.Duration == Duration {
        let deadline = clock.now.advanced(by: timeout)
        return { max(.zero, clock.now.duration(to: deadline)) }
    }
}
