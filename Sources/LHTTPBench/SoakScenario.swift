import Foundation
import NIOCore
import NIOPosix

/// `soak`: many connections over a bounded time with steady publishing, clients leaving and coming back,
/// and a few stalled readers on a busy channel. Reports the server's memory at start and end, deliveries,
/// losses and duplicates among connected clients (must be 0), and how many stalled readers were closed.
///
/// Every healthy connection subscribes to one of `channels` channels; each channel's messages carry a
/// per-channel sequence number, so a gap is a loss. A connection's count starts at its first message
/// (and again after each reconnect): what was published while it was away is not a loss.
public struct SoakScenario: Sendable {
    public var target: BenchTarget
    public var connections: Int
    public var channels: Int
    public var seconds: Int
    /// Publications per second, spread over the channels.
    public var rate: Int
    /// Connections closed and reopened per second.
    public var churn: Int
    /// Connections that subscribe to the firehose channel and then stop reading.
    public var stalled: Int
    public var serverPID: Int32

    public init(target: BenchTarget, connections: Int, channels: Int, seconds: Int, rate: Int, churn: Int, stalled: Int, serverPID: Int32) {
        self.target = target
        self.connections = connections
        self.channels = max(channels, 1)
        self.seconds = seconds
        self.rate = rate
        self.churn = churn
        self.stalled = stalled
        self.serverPID = serverPID
    }

    static func channelName(_ index: Int) -> String { "soak-\(index)" }
    static let firehose = "soak-firehose"

    public func run(on eventLoop: any EventLoop) async throws -> BenchResult {
        try self.target.requireHTTPPublish("soak")
        guard let rssStart = ProcessMemory.residentKiB(pid: self.serverPID) else {
            throw BenchError.serverError("cannot read /proc/\(self.serverPID)/status")
        }
        let scenario = self
        let (tracker, sink) = try await ScenarioConnections.bind(on: eventLoop) { SoakTracker(scenario: scenario, eventLoop: eventLoop) }
        var connections = ScenarioConnections(eventLoop: eventLoop, target: self.target)
        defer {
            connections.closeAll()
            try? eventLoop.submit { tracker.value.closeReconnected() }.wait()
        }
        let channels = self.channels
        try await connections.subscribers(self.connections, channel: { Self.channelName($0 % channels) }, sink: sink)
        let connected = ProcessMemory.residentKiB(pid: self.serverPID) ?? rssStart
        let originals = Array(connections.channels.prefix(self.connections))
        try await eventLoop.submit { tracker.value.closeOriginal = { originals[$0].close(promise: nil) } }.get()
        // The stalled readers: subscribed to the firehose, then never read again (until the end, to see
        // whether the server closed them).
        var stalledChannels: [any Channel] = []
        for offset in 0..<self.stalled {
            let channel = try await connections.websocket(path: self.target.dialect.subscribePath(channel: Self.firehose), index: self.connections + offset, sink: sink, receiveBuffer: 4096)
            RawWebSocket.send(self.target.dialect.subscribeFrames(channel: Self.firehose), on: channel)
            try await channel.setOption(.autoRead, value: false)
            stalledChannels.append(channel)
        }
        let publisher = try await connections.http()
        try await eventLoop.flatSubmit { tracker.value.start(publisher: publisher.value, sink: sink) }.get()
        // Read the stalled connections again: the ones the server closed show their end (bounded wait).
        for channel in stalledChannels { try? await channel.setOption(.autoRead, value: true) }
        let deadline = ContinuousClock.now + .seconds(10)
        while try await eventLoop.submit({ tracker.value.stalledClosedCount }).get() < self.stalled, ContinuousClock.now < deadline {
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        guard let rssEnd = ProcessMemory.residentKiB(pid: self.serverPID) else {
            throw BenchError.serverError("server \(self.serverPID) is gone")
        }
        return try await eventLoop.submit {
            tracker.value.result(rssStart: rssStart, rssConnected: connected, rssEnd: rssEnd)
        }.get()
    }
}

/// The soak bookkeeping; confined to the bench's event loop.
final class SoakTracker: BenchSink {
    private let scenario: SoakScenario
    private let eventLoop: any EventLoop
    private var publisher: HTTPLoadConnection?
    private var sink: NIOLoopBound<any BenchSink>?
    /// Next sequence number per channel.
    private var nextSeq: [Int]
    /// Last sequence seen per healthy connection (-1: none since (re)connecting).
    private var lastSeen: [Int]
    private var reconnecting = Set<Int>()
    private var churned = Set<Int>()
    private var reconnected: [Int: any Channel] = [:]
    private var published = 0
    private var firehosePublished = 0
    private var deliveries = 0
    private var lost = 0
    private var duplicates = 0
    private var corrupted = 0
    private var errors = 0
    private var reconnects = 0
    private var unexpectedCloses = 0
    private var stalledClosed = 0
    private var behind = 0
    private var running = false
    private var tick: RepeatedTask?
    private var done: EventLoopPromise<Void>?
    private var random = SystemRandomNumberGenerator()
    private let firehoseBody = [UInt8](repeating: UInt8(ascii: "f"), count: 64 * 1024)
    private var ticks = 0

    init(scenario: SoakScenario, eventLoop: any EventLoop) {
        self.scenario = scenario
        self.eventLoop = eventLoop
        self.nextSeq = Array(repeating: 0, count: scenario.channels)
        self.lastSeen = Array(repeating: -1, count: scenario.connections)
    }

    /// Publishes and churns every 10 ms for `seconds`, then lets the last messages arrive.
    func start(publisher: HTTPLoadConnection, sink: NIOLoopBound<any BenchSink>) -> EventLoopFuture<Void> {
        self.publisher = publisher
        self.sink = sink
        publisher.onResponse = { [weak self] status in
            if !(200..<300).contains(status) { self?.errors += 1 }
        }
        let promise = self.eventLoop.makePromise(of: Void.self)
        self.done = promise
        self.running = true
        let ticks = self.scenario.seconds * 100
        var count = 0
        var publishCredit = 0.0
        var churnCredit = 0.0
        self.tick = self.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(10), delay: .milliseconds(10)) { [weak self] task in
            guard let self else { return }
            count += 1
            guard count <= ticks else {
                task.cancel()
                self.running = false
                // Let deliveries in flight arrive before counting.
                self.eventLoop.scheduleTask(in: .seconds(2)) { self.done?.succeed(()) }
                return
            }
            publishCredit += Double(self.scenario.rate) / 100
            churnCredit += Double(self.scenario.churn) / 100
            self.publish(Int(publishCredit))
            publishCredit -= Double(Int(publishCredit))
            self.churnSome(Int(churnCredit))
            churnCredit -= Double(Int(churnCredit))
        }
        return promise.futureResult
    }

    private func publish(_ count: Int) {
        guard let publisher = self.publisher, count > 0 else { return }
        // Bounded pipelining: a server that cannot keep up shows as `behind`, not as unbounded queueing here.
        guard publisher.inFlight < 256 else {
            self.behind += count
            return
        }
        for _ in 0..<count {
            let channel = self.published % self.scenario.channels
            let seq = self.nextSeq[channel]
            self.nextSeq[channel] += 1
            publisher.write(target: self.scenario.target.dialect.publishTarget(channel: SoakScenario.channelName(channel)), body: Array(String(seq).utf8))
            self.published += 1
        }
        // The firehose: 64 KiB 20 times a second (1.3 MB/s), for the stalled readers to choke on.
        self.ticks += 1
        if self.scenario.stalled > 0, self.ticks % 5 == 0 {
            publisher.write(target: self.scenario.target.dialect.publishTarget(channel: SoakScenario.firehose), body: self.firehoseBody)
            self.firehosePublished += 1
        }
        publisher.flush()
    }

    private func churnSome(_ count: Int) {
        guard count > 0, self.scenario.connections > 0 else { return }
        for _ in 0..<count {
            let index = Int.random(in: 0..<self.scenario.connections, using: &self.random)
            guard !self.reconnecting.contains(index) else { continue }
            self.reconnecting.insert(index)
            self.churned.insert(index)
            self.lastSeen[index] = -1
            if let channel = self.reconnected.removeValue(forKey: index) {
                channel.close(promise: nil)
            } else {
                self.closeOriginal?(index)
            }
        }
    }

    /// Closes the original connection `index` (set by the scenario: it owns those channels).
    var closeOriginal: ((Int) -> Void)?

    func received(_ payload: UnsafeRawBufferPointer, from index: Int) {
        self.deliveries += 1
        guard index < self.scenario.connections else { return }  // a stalled reader that still got something
        // "LHTTP/1.0 bench\r\npublish:soak-N\r\n\r\n<seq>"
        guard let separator = Self.bodyStart(payload), let seq = Int(String(decoding: UnsafeRawBufferPointer(rebasing: payload[separator...]), as: UTF8.self)) else {
            self.corrupted += 1
            return
        }
        let last = self.lastSeen[index]
        if last >= 0 {
            if seq > last + 1 {
                self.lost += seq - last - 1
            } else if seq <= last {
                self.duplicates += 1
            }
        }
        self.lastSeen[index] = max(seq, last)
    }

    private static func bodyStart(_ payload: UnsafeRawBufferPointer) -> Int? {
        guard payload.count >= 4 else { return nil }
        for index in 0...(payload.count - 4)
        where payload[index] == 0x0D && payload[index + 1] == 0x0A && payload[index + 2] == 0x0D && payload[index + 3] == 0x0A {
            return index + 4
        }
        return nil
    }

    func closed(_ index: Int) {
        if index >= self.scenario.connections {
            self.stalledClosed += 1
            return
        }
        guard self.reconnecting.contains(index) else {
            if self.running { self.unexpectedCloses += 1 }
            return
        }
        guard self.running, let sink = self.sink else {
            self.reconnecting.remove(index)
            return
        }
        let target = self.scenario.target
        let channelName = SoakScenario.channelName(index % self.scenario.channels)
        RawWebSocket.connect(
            on: self.eventLoop, host: target.host, port: target.port,
            path: target.dialect.subscribePath(channel: channelName), index: index, sink: sink
        ).whenComplete { [weak self] result in
            guard let self else { return }
            self.reconnecting.remove(index)
            switch result {
            case .success(let channel):
                self.reconnects += 1
                self.reconnected[index] = channel
                RawWebSocket.send(target.dialect.subscribeFrames(channel: channelName), on: channel)
            case .failure:
                self.errors += 1
            }
        }
    }

    var stalledClosedCount: Int { self.stalledClosed }

    func closeReconnected() {
        for channel in self.reconnected.values { channel.close(promise: nil) }
        self.reconnected.removeAll()
    }

    func result(rssStart: Int, rssConnected: Int, rssEnd: Int) -> BenchResult {
        // Connections never churned must all have received something.
        let silent = self.lastSeen.enumerated().filter { $0.element < 0 && !self.churned.contains($0.offset) }.count
        return BenchResult(
            scenario: "soak",
            dialect: self.scenario.target.dialect,
            parameters: [
                "connections": self.scenario.connections, "channels": self.scenario.channels, "seconds": self.scenario.seconds,
                "rate": self.scenario.rate, "churn": self.scenario.churn, "stalled": self.scenario.stalled,
            ],
            metrics: [
                "publications": Double(self.published),
                "firehose_publications": Double(self.firehosePublished),
                "deliveries": Double(self.deliveries),
                "reconnects": Double(self.reconnects),
                "stalled_closed": Double(self.stalledClosed),
                "unexpected_closes": Double(self.unexpectedCloses),
                "silent_connections": Double(silent),
                "publishes_skipped_server_behind": Double(self.behind),
                "rss_start_kib": Double(rssStart),
                "rss_connected_kib": Double(rssConnected),
                "rss_end_kib": Double(rssEnd),
            ],
            lost: self.lost,
            duplicates: self.duplicates,
            corrupted: self.corrupted,
            errors: self.errors + self.unexpectedCloses + silent,
            note: self.scenario.stalled > 0 && self.stalledClosed < self.scenario.stalled
                ? "only \(self.stalledClosed) of \(self.scenario.stalled) stalled readers were closed" : nil
        )
    }
}
