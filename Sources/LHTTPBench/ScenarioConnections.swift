import NIOCore

/// The server a scenario runs against.
public struct BenchTarget: Sendable {
    public var host: String
    public var port: Int
    public var dialect: BenchDialect

    public init(host: String, port: Int, dialect: BenchDialect) {
        self.host = host
        self.port = port
        self.dialect = dialect
    }

    /// Throws unless the server takes HTTP publications (every scenario but `fanout --publisher websocket`
    /// needs them).
    func requireHTTPPublish(_ scenario: String) throws {
        guard self.dialect.publishesOverHTTP else {
            throw BenchError.unsupported("\(scenario) publishes over HTTP, which \(self.dialect.rawValue) does not take")
        }
    }
}

/// The connections a scenario opens, all on the bench's one event loop, all closed by ``closeAll()``.
struct ScenarioConnections {
    let eventLoop: any EventLoop
    let target: BenchTarget
    private(set) var channels: [any Channel] = []

    init(eventLoop: any EventLoop, target: BenchTarget) {
        self.eventLoop = eventLoop
        self.target = target
    }

    /// Makes a loop-bound tracker and the sink view of it that connections report to.
    static func bind<Tracker: BenchSink & SendableMetatype>(
        on eventLoop: any EventLoop,
        _ make: @escaping @Sendable () -> Tracker
    ) async throws -> (tracker: NIOLoopBound<Tracker>, sink: NIOLoopBound<any BenchSink>) {
        try await eventLoop.submit {
            let tracker = make()
            return (NIOLoopBound(tracker, eventLoop: eventLoop), NIOLoopBound(tracker as any BenchSink, eventLoop: eventLoop))
        }.get()
    }

    /// Connects websocket subscribers `0..<count` (200 handshakes in flight at most), subscribing
    /// subscriber `i` to `channel(i)`; with `ports`, subscriber `i` goes to `ports[i % ports.count]`
    /// (the other nodes of a cluster) instead of the target's port.
    mutating func subscribers(_ count: Int, channel: (Int) -> String, ports: [Int] = [], sink: NIOLoopBound<any BenchSink>) async throws {
        var next = 0
        while next < count {
            let batch = next..<min(next + 200, count)
            let futures = batch.map { index in
                RawWebSocket.connect(
                    on: self.eventLoop, host: self.target.host, port: ports.isEmpty ? self.target.port : ports[index % ports.count],
                    path: self.target.dialect.subscribePath(channel: channel(index)), index: index, sink: sink,
                    framing: self.target.dialect.framing
                )
            }
            for (index, future) in zip(batch, futures) {
                let connection = try await future.get()
                self.channels.append(connection)
                RawWebSocket.send(
                    self.target.dialect.subscribeFrames(channel: channel(index)), opcode: self.target.dialect.websocketOpcode, on: connection
                )
            }
            next = batch.upperBound
        }
    }

    /// A websocket on `path` whose messages are reported as connection `index` (read in the dialect's framing).
    mutating func websocket(path: String, index: Int, sink: NIOLoopBound<any BenchSink>, receiveBuffer: Int? = nil) async throws -> any Channel {
        let connection = try await RawWebSocket.connect(
            on: self.eventLoop, host: self.target.host, port: self.target.port, path: path, index: index, sink: sink,
            framing: self.target.dialect.framing, receiveBuffer: receiveBuffer
        ).get()
        self.channels.append(connection)
        return connection
    }

    /// A keep-alive HTTP connection.
    mutating func http() async throws -> NIOLoopBound<HTTPLoadConnection> {
        let connection = try await HTTPLoadConnection.connect(on: self.eventLoop, host: self.target.host, port: self.target.port).get()
        self.channels.append(try await self.eventLoop.submit { connection.value.channel }.get())
        return connection
    }

    func closeAll() {
        for channel in self.channels { channel.close(promise: nil) }
    }
}
