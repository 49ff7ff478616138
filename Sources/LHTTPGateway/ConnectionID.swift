import Synchronization

/// A process-unique connection number, carried in logs (`lhttp.conn`) and in `X-LHTTP-Connection`.
public struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    private static let counter = Atomic<UInt64>(0)

    /// The next unused id.
    public static func next() -> ConnectionID {
        ConnectionID(rawValue: counter.add(1, ordering: .relaxed).newValue)
    }

    public var description: String { String(self.rawValue) }
}
