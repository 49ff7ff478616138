import Foundation
import NIOCore
import NIOPosix

/// `idle-conns`: N websocket connections, each subscribed to its own channel; the server's resident
/// memory before and after gives KiB per connection. A sample of the channels is then published to,
/// to prove the subscriptions are real.
public struct IdleConnectionsScenario: Sendable {
    public var target: BenchTarget
    public var connections: Int
    public var serverPID: Int32
    public var settle: TimeAmount

    public init(target: BenchTarget, connections: Int, serverPID: Int32, settle: TimeAmount = .seconds(2)) {
        self.target = target
        self.connections = connections
        self.serverPID = serverPID
        self.settle = settle
    }

    static func channelName(_ index: Int) -> String { "idle-\(index)" }

    public func run(on eventLoop: any EventLoop) async throws -> BenchResult {
        try self.target.requireHTTPPublish("idle-conns")
        guard let before = ProcessMemory.residentKiB(pid: self.serverPID) else {
            throw BenchError.serverError("cannot read /proc/\(self.serverPID)/status")
        }
        let dialect = self.target.dialect
        let count = self.connections
        let (tracker, sink) = try await ScenarioConnections.bind(on: eventLoop) { IdleTracker(connections: count, dialect: dialect) }
        var connections = ScenarioConnections(eventLoop: eventLoop, target: self.target)
        defer { connections.closeAll() }
        try await connections.subscribers(self.connections, channel: Self.channelName, sink: sink)
        try await Task.sleep(nanoseconds: UInt64(self.settle.nanoseconds))
        guard let after = ProcessMemory.residentKiB(pid: self.serverPID) else {
            throw BenchError.serverError("server \(self.serverPID) is gone")
        }

        // Prove 20 spread-out subscriptions work.
        let sample = stride(from: 0, to: self.connections, by: max(self.connections / 20, 1)).map { $0 }
        let publisher = try await connections.http()
        let names = sample.map(Self.channelName)
        let delivered = try await eventLoop.flatSubmit {
            tracker.value.probe(sample, names: names, publisher: publisher.value)
        }.get()
        let perConnection = Double(after - before) / Double(self.connections)
        return BenchResult(
            scenario: "idle-conns",
            dialect: dialect,
            parameters: ["connections": self.connections],
            metrics: [
                "kib_per_conn": perConnection,
                "rss_before_kib": Double(before),
                "rss_after_kib": Double(after),
            ],
            lost: sample.count - delivered,
            errors: try await eventLoop.submit { tracker.value.closedEarly }.get()
        )
    }
}

/// Bookkeeping of `idle-conns`; confined to the bench's event loop.
final class IdleTracker: BenchSink {
    private let dialect: BenchDialect
    private var expected: [Int: [UInt8]] = [:]
    private var delivered = 0
    private var probeDone: EventLoopPromise<Int>?
    private(set) var closedEarly = 0

    init(connections: Int, dialect: BenchDialect) {
        self.dialect = dialect
    }

    func probe(_ indexes: [Int], names: [String], publisher: HTTPLoadConnection) -> EventLoopFuture<Int> {
        let promise = publisher.channel.eventLoop.makePromise(of: Int.self)
        self.probeDone = promise
        for (index, name) in zip(indexes, names) {
            self.expected[index] = self.dialect.deliveredPrefix(channel: name)
            publisher.write(target: self.dialect.publishTarget(channel: name), body: BenchPayload.make(seq: index, sentNanos: 0, size: 32))
        }
        publisher.flush()
        publisher.channel.eventLoop.assumeIsolated().scheduleTask(in: .seconds(10)) { [weak self] in
            guard let self else { return }
            self.probeDone?.succeed(self.delivered)
            self.probeDone = nil
        }
        return promise.futureResult
    }

    func received(_ payload: UnsafeRawBufferPointer, from index: Int) {
        guard let prefix = self.expected.removeValue(forKey: index),
            case .message(let seq, _) = BenchPayload.check(payload, prefix: prefix), seq == index
        else { return }
        self.delivered += 1
        if self.expected.isEmpty {
            self.probeDone?.succeed(self.delivered)
            self.probeDone = nil
        }
    }

    func closed(_ index: Int) {
        self.closedEarly += 1
    }
}
