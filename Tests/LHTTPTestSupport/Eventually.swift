/// Polls `condition` every 10 ms for up to `timeout`: for effects with no message to await (counts after a
/// client vanished, a link state). Throws when the time runs out.
public func eventually(timeout: Duration = .seconds(20), _ condition: () throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try !condition() {
        guard ContinuousClock.now < deadline else { throw EventuallyTimeout(timeout: timeout) }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// ``eventually(timeout:_:)`` ran out of time.
public struct EventuallyTimeout: Error, CustomStringConvertible {
    public var timeout: Duration
    public var description: String { "condition not met within \(self.timeout)" }
}
