import CoreMetrics
import NIOConcurrencyHelpers

/// Counters and timers labelled by values from small closed sets (statuses, close codes, route names from
/// the config), each made once and cached: a metric object per event would be an allocation each.
///
/// Every module's metrics (the gateway's, the server's, the backends', the cluster's) keeps one of these
/// over the factory the composition root passes, so each server (and each test) has its own registry.
public final class LabelledMetrics: Sendable {
    public let factory: any MetricsFactory
    /// Counters keyed by an integer family and value (a status or a close code below 65536): frequent
    /// events (`/publish` answers, error replies) must not build a key string each.
    private let byNumber = NIOLockedValueBox<[Int: Counter]>([:])
    private let byName = NIOLockedValueBox<[String: Counter]>([:])
    private let timers = NIOLockedValueBox<[String: Timer]>([:])

    public init(factory: any MetricsFactory) {
        self.factory = factory
    }

    /// The counter `name` of `family` for `value`; `dimensions` is only evaluated the first time.
    public func counter(_ name: String, family: Int, value: Int, dimensions: () -> [(String, String)]) -> Counter {
        let key = family << 16 | (value & 0xFFFF)
        return self.byNumber.withLockedValue { cache in
            if let counter = cache[key] { return counter }
            let counter = Counter(label: name, dimensions: dimensions(), factory: self.factory)
            cache[key] = counter
            return counter
        }
    }

    /// The counter `name` with `dimensions`.
    public func counter(_ name: String, _ dimensions: [(String, String)] = []) -> Counter {
        let key = Self.key(name, dimensions)
        return self.byName.withLockedValue { cache in
            if let counter = cache[key] { return counter }
            let counter = Counter(label: name, dimensions: dimensions, factory: self.factory)
            cache[key] = counter
            return counter
        }
    }

    /// The timer `name` with `dimensions`.
    public func timer(_ name: String, _ dimensions: [(String, String)]) -> Timer {
        let key = Self.key(name, dimensions)
        return self.timers.withLockedValue { cache in
            if let timer = cache[key] { return timer }
            let timer = Timer(label: name, dimensions: dimensions, factory: self.factory)
            cache[key] = timer
            return timer
        }
    }

    private static func key(_ name: String, _ dimensions: [(String, String)]) -> String {
        name + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
    }
}
