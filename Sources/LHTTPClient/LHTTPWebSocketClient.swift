import LHTTPProtocol
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// A websocket client that speaks LHTTP: for tests, the CLI and the benchmark.
///
/// ```swift
/// let client = try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: port)
/// try await client.send(LHTTPMessage(command: "chat", headers: ["subscribe": "room"]))
/// let reply = try await client.nextMessage()
/// try await client.close()
/// ```
///
/// Everything the server sends is turned into ``LHTTPClientEvent``s and kept, in order, in one queue until
/// consumed — by ``nextEvent(timeout:)``, ``nextMessage(timeout:)``, ``expectNoMessage(within:)`` or the
/// ``events`` stream, which all draw from that same queue. Each event is delivered exactly once; a wait
/// that times out or is cancelled consumes nothing. The queue is unbounded: consume what you receive.
///
/// Every frame this client sends is masked with a fresh random key, as RFC 6455 requires of clients.
/// Pings from the server are answered automatically; pongs are recorded in ``pongs``, not queued as events. Dropping the last reference
/// closes the connection abruptly (no close frame); call ``close(code:)`` for a clean close.
public final class LHTTPWebSocketClient: Sendable {
    private let channel: any Channel
    private let state: WebSocketClientState

    private init(channel: any Channel, state: WebSocketClientState) {
        self.channel = channel
        self.state = state
    }

    deinit {
        self.channel.close(promise: nil)
    }

    // MARK: Connecting

    /// Opens a TCP connection (TCP_NODELAY), upgrades it to a websocket with `GET path`, and returns once
    /// the server has accepted the upgrade.
    ///
    /// - Parameters:
    ///   - host: Host name or IP address; also sent in the `Host` header (with the port) unless `headers` has one.
    ///   - port: TCP port.
    ///   - path: Request target of the upgrade request, e.g. `/ws?token=x`.
    ///   - headers: Extra request headers (e.g. `Origin`, cookies, `Sec-WebSocket-Protocol`).
    ///   - maxFrameSize: Largest websocket frame, and largest reassembled message, accepted from the server.
    ///     A larger one is a protocol error: the client sends close 1009 / 1002 and the connection ends.
    ///   - eventLoopGroup: Where the connection runs.
    ///   - timeout: Bound for the TCP connect and the upgrade handshake together.
    /// - Throws: ``LHTTPClientError/upgradeFailed(status:)`` when the server answers with anything but
    ///   `101 Switching Protocols` (e.g. 404); ``LHTTPClientError/invalidResponse(_:)`` for a 101 with a wrong
    ///   `Sec-WebSocket-Accept` or a malformed response; ``LHTTPClientError/timeout``;
    ///   ``LHTTPClientError/connectionClosed`` when the server closes before answering; NIO's connect errors.
    public static func connect(
        host: String,
        port: Int,
        path: String = "/",
        headers: [(String, String)] = [],
        maxFrameSize: Int = 16 << 20,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        timeout: Duration = .seconds(10),
        tls: NIOSSLContext? = nil
    ) async throws -> LHTTPWebSocketClient {
        let eventLoop = eventLoopGroup.next()
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        let state = WebSocketClientState(eventLoop: eventLoop)
        // Completed exactly once by whichever comes first: the upgrade, a refusal, the connection's end, the deadline.
        let upgraded = eventLoop.makePromise(of: Void.self)

        let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: maxFrameSize, automaticErrorHandling: true) {
            channel,
            _ in
            let added = channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers(
                    NIOWebSocketFrameAggregator(
                        minNonFinalFragmentSize: 0,
                        maxAccumulatedFrameCount: .max,
                        maxAccumulatedFrameSize: maxFrameSize
                    ),
                    WebSocketFrameHandler(state: state)
                )
            }
            added.cascade(to: upgraded)
            return added
        }

        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(timeout))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        // wss: the server's name checked against its certificate (SNI unless an address).
                        let isAddress = host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." }
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: isAddress ? nil : host))
                    }
                    let upgrade: NIOHTTPClientUpgradeConfiguration = (
                        upgraders: [upgrader],
                        completionHandler: { context in
                            // Runs after the HTTP codec is gone and before the websocket handlers are added.
                            context.pipeline.syncOperations.removeHandler(
                                name: WebSocketUpgradeResponseHandler.name,
                                promise: nil
                            )
                        }
                    )
                    // `.forwardBytes`: frames the server sends right behind its 101 response are not lost.
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        leftOverBytesStrategy: .forwardBytes,
                        withClientUpgrade: upgrade
                    )
                    try channel.pipeline.syncOperations.addHandler(
                        WebSocketUpgradeResponseHandler(upgraded: upgraded),
                        name: WebSocketUpgradeResponseHandler.name
                    )
                }
            }

        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: host, port: port).get()
        } catch {
            upgraded.fail(error)
            throw error
        }
        channel.closeFuture.whenComplete { _ in upgraded.fail(LHTTPClientError.connectionClosed) }
        let timer = eventLoop.scheduleTask(deadline: deadline) { upgraded.fail(LHTTPClientError.timeout) }
        defer { timer.cancel() }

        var requestHeaders = HTTPHeaders(headers)
        if !requestHeaders.contains(name: "host") {
            requestHeaders.add(name: "Host", value: ClientSupport.hostHeader(host: host, port: port))
        }
        // The upgrade handler adds Connection, Upgrade, Sec-WebSocket-Key and Sec-WebSocket-Version.
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: requestHeaders)
        for part in [HTTPClientRequestPart.head(head), .end(nil)] {
            channel.write(part).whenFailure { error in upgraded.fail(ClientSupport.mapWriteError(error)) }
        }
        channel.flush()

        do {
            try await upgraded.futureResult.get()
        } catch {
            try? await channel.close()
            throw error
        }
        return LHTTPWebSocketClient(channel: channel, state: state)
    }

    // MARK: Sending

    /// Sends an LHTTP message in one frame: a text frame if its serialized bytes are valid UTF-8, else binary.
    public func send(_ message: LHTTPMessage) async throws {
        let bytes = try message.serialized(allocator: self.channel.allocator)
        try await self.write(opcode: ClientSupport.isValidUTF8(bytes) ? .text : .binary, payload: bytes, fin: true)
    }

    /// Sends `text` as one text frame, verbatim (it need not be a valid LHTTP message).
    /// Sends several messages with few flushes: one wake-up of the connection's loop per batch of at most
    /// ``sendBatchFrames`` frames and ``sendBatchBytes`` bytes, each batch written before the next is handed
    /// over. The frames are masked on the loop: 40 frames of 100 KB in one task held the loop, and every
    /// connection on it, for seconds in a debug build.
    public func send(_ messages: [LHTTPMessage]) async throws {
        let channel = self.channel
        let frames = try messages.map { message in
            let bytes = try message.serialized(allocator: channel.allocator)
            return WebSocketFrame(fin: true, opcode: ClientSupport.isValidUTF8(bytes) ? .text : .binary, maskKey: .random(), data: bytes)
        }
        do {
            var start = 0
            while start < frames.count {
                var end = start
                var bytes = 0
                while end < frames.count, end - start < Self.sendBatchFrames, end == start || bytes + frames[end].length <= Self.sendBatchBytes {
                    bytes += frames[end].length
                    end += 1
                }
                let batch = frames[start..<end]
                try await channel.eventLoop.flatSubmit {
                    let written = batch.map { channel.write($0) }
                    channel.flush()
                    return EventLoopFuture.andAllSucceed(written, on: channel.eventLoop)
                }.get()
                start = end
            }
        } catch {
            throw ClientSupport.mapWriteError(error)
        }
    }

    /// Most frames ``send(_:)-([LHTTPMessage])`` writes in one task on the connection's loop.
    public static let sendBatchFrames = 32
    /// Most payload bytes it writes in one task (a larger frame goes alone).
    public static let sendBatchBytes = 64 << 10

    public func sendText(_ text: String) async throws {
        try await self.write(opcode: .text, payload: ByteBuffer(string: text), fin: true)
    }

    /// Sends `bytes` as one binary frame, verbatim.
    public func sendBinary(_ bytes: ByteBuffer) async throws {
        try await self.write(opcode: .binary, payload: bytes, fin: true)
    }

    /// Sends one frame exactly as given (masked): for tests of fragmentation (`fin: false` then
    /// `.continuation` frames), control frames, unknown opcodes, and oversize frames.
    public func sendRaw(opcode: WebSocketOpcode, payload: ByteBuffer, fin: Bool) async throws {
        try await self.write(opcode: opcode, payload: payload, fin: fin)
    }

    /// Sends a ping frame with `data` (at most 125 bytes for a well-behaved ping). Its pong shows up in ``pongs``.
    public func ping(_ data: ByteBuffer = ByteBuffer()) async throws {
        try await self.write(opcode: .ping, payload: data, fin: true)
    }

    /// Writes one masked frame; returns once it is written to the socket.
    /// Throws ``LHTTPClientError/connectionClosed`` if the connection is closed.
    private func write(opcode: WebSocketOpcode, payload: ByteBuffer, fin: Bool) async throws {
        let frame = WebSocketFrame(fin: fin, opcode: opcode, maskKey: .random(), data: payload)
        do {
            try await self.channel.writeAndFlush(frame)
        } catch {
            throw ClientSupport.mapWriteError(error)
        }
    }

    // MARK: Receiving

    /// Every event, in arrival order, ending after the `.closed` event.
    ///
    /// Each access returns a new stream over the client's one event queue: an event taken here is not
    /// seen by ``nextEvent(timeout:)`` and vice versa. Iterate it from one task at a time. Cancelling the
    /// iterating task ends that stream without consuming an event.
    public var events: AsyncStream<LHTTPClientEvent> {
        let state = self.state
        return AsyncStream(unfolding: {
            if case .event(let event) = await state.next(timeout: nil) { return event }
            return nil
        })
    }

    /// The next event (message, unparsable payload or the final close), waiting at most `timeout`.
    ///
    /// - Throws: ``LHTTPClientError/timeout`` (nothing consumed), ``LHTTPClientError/closed`` when the
    ///   `.closed` event was already delivered, `CancellationError` when the task is cancelled.
    public func nextEvent(timeout: Duration = .seconds(20)) async throws -> LHTTPClientEvent {
        switch await self.state.next(timeout: TimeAmount(timeout)) {
        case .event(let event): return event
        case .finished: throw LHTTPClientError.closed
        case .timedOut: throw LHTTPClientError.timeout
        case .cancelled: throw CancellationError()
        }
    }

    /// The next event, which must be a parsed LHTTP message. Skips nothing.
    ///
    /// - Throws: ``LHTTPClientError/unexpectedEvent(_:)`` (carrying the event, now consumed) when the next
    ///   event is `.unparsable` or `.closed`; otherwise as ``nextEvent(timeout:)``.
    public func nextMessage(timeout: Duration = .seconds(20)) async throws -> LHTTPMessage {
        let event = try await self.nextEvent(timeout: timeout)
        guard case .message(let message, _, _) = event else {
            throw LHTTPClientError.unexpectedEvent(event)
        }
        return message
    }

    /// Waits `within` and succeeds if no event arrives meanwhile.
    ///
    /// - Throws: ``LHTTPClientError/unexpectedEvent(_:)`` with the first event that arrives (including
    ///   `.closed`, or an event already queued); ``LHTTPClientError/closed`` at once if the stream has
    ///   already ended; `CancellationError`.
    public func expectNoMessage(within duration: Duration) async throws {
        switch await self.state.next(timeout: TimeAmount(duration)) {
        case .timedOut: return
        case .event(let event): throw LHTTPClientError.unexpectedEvent(event)
        case .finished: throw LHTTPClientError.closed
        case .cancelled: throw CancellationError()
        }
    }

    // MARK: Closing

    /// Whether the TCP connection is still open.
    public var isConnected: Bool { self.channel.isActive }

    /// Closes the websocket cleanly: sends a close frame with `code` (unless a close frame was already sent,
    /// e.g. in answer to the server's), waits up to 5 seconds for the server's close frame or the end of the
    /// TCP connection, then closes the connection. Idempotent; never fails because the connection is
    /// already gone. The `.closed` event is still delivered to consumers.
    public func close(code: UInt16 = 1000) async throws {
        if self.state.markCloseFrameSent(), self.channel.isActive {
            var payload = self.channel.allocator.buffer(capacity: 2)
            payload.writeInteger(code)
            let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: payload)
            // Not awaited: a stalled write must not outlast the 5-second bound below.
            self.channel.writeAndFlush(frame, promise: nil)
        }
        let closedOrTimedOut = self.channel.eventLoop.makePromise(of: Void.self)
        self.channel.closeFuture.cascade(to: closedOrTimedOut)
        let timer = self.channel.eventLoop.scheduleTask(in: .seconds(5)) { closedOrTimedOut.succeed(()) }
        try? await closedOrTimedOut.futureResult.get()
        timer.cancel()
        try? await self.channel.close()
    }
}

extension LHTTPWebSocketClient {
    /// Drops the TCP connection without a close frame, as a crashed or vanished client would.
    public func closeTCP() async {
        try? await self.channel.close()
    }
}

extension LHTTPWebSocketClient {
    /// Payloads of the pongs received so far, oldest first.
    public var pongs: [ByteBuffer] { self.state.pongs }
}
