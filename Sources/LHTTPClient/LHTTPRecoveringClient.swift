import LHTTPProtocol
import NIOCore
import NIOPosix

/// A client that stays subscribed across reconnects, as lhttp.js does (docs/protocol.md 6.1): after the
/// connection ends it connects again (backoff from `reconnectDelay`, doubling up to `maxReconnectDelay`),
/// re-subscribes its channels with `since:` from the last position it saw of each, re-subscribes a channel
/// from its position when a `prev` shows a gap, drops a delivery it already had (a replay overlapping live
/// messages), and reports every `subscribed` answer: `recovered: false` means messages were lost.
///
/// Events come in order from ``next(timeout:)``. ``close()`` ends it for good.
public actor LHTTPRecoveringClient {
    /// What the app sees.
    public enum Event: Sendable, Equatable {
        /// A delivery (or any other message from the server), once.
        case message(LHTTPMessage)
        /// A `subscribed` answer: where the channel stands and whether anything was lost.
        case recovered(HistoryCursor.Answer)
        /// The connection ended (`willReconnect` false only after ``close()``).
        case disconnected(code: UInt16?, willReconnect: Bool)
        /// Connected again (the `attempt`-th connection), channels re-subscribed.
        case reconnected(attempt: Int)
    }

    public let host: String
    public let port: Int
    public let path: String
    public private(set) var channels: [String]
    /// The last position per channel (survives reconnects).
    public private(set) var cursor = HistoryCursor()
    private let reconnectDelay: Duration
    private let maxReconnectDelay: Duration
    private let eventLoopGroup: any EventLoopGroup
    private var connection: LHTTPWebSocketClient?
    private var connections = 0
    private var closed = false
    /// Channels re-subscribed after a gap, until their `subscribed` answer (one recovery per gap).
    private var recovering: Set<String> = []
    private var pending: [Event] = []
    private var waiters: [CheckedContinuation<Event?, Never>] = []
    private var runner: Task<Void, Never>?

    public init(
        host: String, port: Int, path: String = "/", channels: [String], reconnectDelay: Duration = .milliseconds(100),
        maxReconnectDelay: Duration = .seconds(5), eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.host = host
        self.port = port
        self.path = path
        self.channels = channels
        self.reconnectDelay = reconnectDelay
        self.maxReconnectDelay = maxReconnectDelay
        self.eventLoopGroup = eventLoopGroup
    }

    /// Connects and subscribes (`since:-` the first time: each channel's `subscribed` answer is its starting
    /// point), then keeps the connection up in the background. - Throws: when the first connection fails.
    public func start() async throws {
        precondition(self.runner == nil, "started twice")
        let first = try await self.connect()
        self.runner = Task { await self.run(first) }
    }

    /// The next event, waiting at most `timeout`. - Throws: ``LHTTPClientError/timeout``,
    /// ``LHTTPClientError/closed`` after ``close()`` once nothing is left.
    public func next(timeout: Duration = .seconds(20)) async throws -> Event {
        if !self.pending.isEmpty { return self.pending.removeFirst() }
        if self.closed { throw LHTTPClientError.closed }
        let timer = Task {
            try await Task.sleep(for: timeout)
            self.timeOut()
        }
        defer { timer.cancel() }
        guard let event = await withCheckedContinuation({ self.waiters.append($0) }) else {
            throw self.closed ? LHTTPClientError.closed : LHTTPClientError.timeout
        }
        return event
    }

    /// Sends `message` on the current connection. - Throws: ``LHTTPClientError/connectionClosed`` while
    /// reconnecting (nothing is queued).
    public func send(_ message: LHTTPMessage) async throws {
        guard let connection = self.connection else { throw LHTTPClientError.connectionClosed }
        try await connection.send(message)
    }

    /// Ends the connection for good.
    public func close() async {
        self.closed = true
        self.runner?.cancel()
        try? await self.connection?.close()
        self.connection = nil
        for waiter in self.waiters { waiter.resume(returning: nil) }
        self.waiters.removeAll()
    }

    // MARK: The connection

    private func connect() async throws -> LHTTPWebSocketClient {
        let connection = try await LHTTPWebSocketClient.connect(host: self.host, port: self.port, path: self.path, eventLoopGroup: self.eventLoopGroup)
        self.connections += 1
        self.connection = connection
        self.recovering.removeAll()
        if !self.channels.isEmpty {
            try await connection.send(Self.subscribe(self.channels, since: self.cursor.since(for: self.channels)))
        }
        return connection
    }

    private static func subscribe(_ channels: [String], since: String) -> LHTTPMessage {
        LHTTPMessage(command: "subscribe", headers: [LHTTPChannelList.subscribeHeader: channels.joined(separator: " "), "since": since])
    }

    private func run(_ first: LHTTPWebSocketClient) async {
        var connection = first
        while !self.closed {
            await self.read(connection)
            guard !self.closed else { return }
            var delay = self.reconnectDelay
            while !self.closed {
                do {
                    try await Task.sleep(for: delay)
                    connection = try await self.connect()
                    self.emit(.reconnected(attempt: self.connections))
                    break
                } catch {
                    if Task.isCancelled { return }
                    delay = min(delay * 2, self.maxReconnectDelay)
                }
            }
        }
    }

    /// Reads one connection until it ends.
    private func read(_ connection: LHTTPWebSocketClient) async {
        for await event in connection.events {
            switch event {
            case .message(let message, _, _):
                await self.received(message, on: connection)
            case .unparsable:
                continue
            case .closed(let code, _):
                self.connection = nil
                self.emit(.disconnected(code: code, willReconnect: !self.closed))
                return
            }
        }
    }

    private func received(_ message: LHTTPMessage, on connection: LHTTPWebSocketClient) async {
        if let answer = self.cursor.answered(message) {
            self.recovering.remove(answer.channel)
            self.emit(.recovered(answer))
            return
        }
        let gaps = self.gaps(in: message)
        if !gaps.isEmpty {
            // The message after the gap comes again with the replay, in order.
            self.recovering.formUnion(gaps)
            try? await connection.send(LHTTPMessage(command: "unsubscribe", headers: [LHTTPChannelList.unsubscribeHeader: gaps.joined(separator: " ")]))
            try? await connection.send(Self.subscribe(gaps, since: self.cursor.since(for: gaps)))
            return
        }
        guard self.cursor.track(message, subscribed: Set(self.channels)) else { return }
        self.emit(.message(message))
    }

    /// Our channels whose `prev` in `message` is not the position we have (same epoch), and that are not
    /// being recovered already.
    private func gaps(in message: LHTTPMessage) -> [String] {
        guard let seq = message.headers["seq"], let prev = message.headers["prev"] else { return [] }
        let listed = (message.headers[LHTTPChannelList.publishHeader] ?? "").split(separator: " ").map(String.init)
        var gaps: [String] = []
        for (channel, (seqToken, prevToken)) in zip(listed, zip(seq.split(separator: " "), prev.split(separator: " ")))
        where self.channels.contains(channel) && !self.recovering.contains(channel) {
            guard let position = HistoryPosition(parsing: seqToken), let previous = UInt64(prevToken),
                  let known = self.cursor.positions[channel], known.epoch == position.epoch
            else { continue }
            if position.offset > known.offset, previous != known.offset { gaps.append(channel) }
        }
        return gaps
    }

    private func emit(_ event: Event) {
        if !self.waiters.isEmpty {
            self.waiters.removeFirst().resume(returning: event)
        } else {
            self.pending.append(event)
        }
    }

    private func timeOut() {
        guard !self.waiters.isEmpty else { return }
        self.waiters.removeFirst().resume(returning: nil)
    }
}
