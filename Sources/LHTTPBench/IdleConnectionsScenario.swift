import Foundation
import NIOCore
import NIOPosix

/// `idle-conns`: N websocket connections, each subscribed to its own channel; the server's resident
/// memory before and after gives KiB per connection. A sample of the channels is then published to,
/// to prove the subscriptions are real.
public struct IdleConnectionsScenario: Sendable {
    public var host: String
    public var port: Int
    public var dialect: BenchDialect
    public var connections: Int
    public var serverPID: Int32
    public var settle: TimeAmount

    public init(host: String, port: Int, dialect: BenchDialect, connections: Int, serverPID: Int32, settle: TimeAmount = .seconds(2)) {
        self.host = host
        self.port = port
        self.dialect = dialect
        self.connections = connections
        self.serverPID = serverPID
        self.settle = settle
    }

    func channelName(_ index: Int) -> String { "idle-\(index)" }

    public func run(on eventLoop: any EventLoop) async throws -> BenchResult {
        guard let before = ProcessMemory.residentKiB(pid: self.serverPID) else {
            throw BenchError.serverError("cannot read /proc/\(self.serverPID)/status")
        }
        let scenario = self
        let tracker = try await eventLoop.submit {
            NIOLoopBound(IdleTracker(connections: scenario.connections, dialect: scenario.dialect), eventLoop: eventLoop)
        }.get()
        let sink = try await eventLoop.submit { NIOLoopBound(tracker.value as any BenchSink, eventLoop: eventLoop) }.get()
        var channels: [any Channel] = []
        channels.reserveCapacity(self.connections)
        defer { for channel in channels { channel.close(promise: nil) } }
        var next = 0
        while next < self.connections {
            let batch = next..<min(next + 200, self.connections)
            let futures = batch.map { index in
                RawWebSocket.connect(
                    on: eventLoop, host: self.host, port: self.port,
                    path: self.dialect.subscribePath(channel: self.channelName(index)), index: index, sink: sink
                )
            }
            for (offset, future) in futures.enumerated() {
                let channel = try await future.get()
                channels.append(channel)
                RawWebSocket.send(self.dialect.subscribeFrames(channel: self.channelName(batch.lowerBound + offset)), on: channel)
            }
            next = batch.upperBound
        }
        try await Task.sleep(nanoseconds: UInt64(self.settle.nanoseconds))
        guard let after = ProcessMemory.residentKiB(pid: self.serverPID) else {
            throw BenchError.serverError("server \(self.serverPID) is gone")
        }

        // Prove 20 spread-out subscriptions work.
        let sample = stride(from: 0, to: self.connections, by: max(self.connections / 20, 1)).map { $0 }
        let publisher = try await HTTPLoadConnection.connect(on: eventLoop, host: self.host, port: self.port).get()
        channels.append(try await eventLoop.submit { publisher.value.channel }.get())
        let names = sample.map(self.channelName)
        let delivered = try await eventLoop.flatSubmit {
            tracker.value.probe(sample, names: names, publisher: publisher.value)
        }.get()
        let perConnection = Double(after - before) / Double(self.connections)
        return BenchResult(
            scenario: "idle-conns",
            dialect: self.dialect,
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
