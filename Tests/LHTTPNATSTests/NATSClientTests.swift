import LHTTPConfig
import LHTTPNATS
import LHTTPTestSupport
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// The reconnecting client against a real `nats-server` on a free loopback port, started, killed and
/// restarted (by PID) by the test.
@Suite("NATS client against nats-server")
struct NATSClientTests {
    /// Messages a client received, with a way to wait for them.
    final class Inbox: Sendable {
        private let messages = NIOLockedValueBox<[(subject: String, payload: String)]>([])

        func record(_ subject: String, _ payload: ByteBuffer) {
            self.messages.withLockedValue { $0.append((subject, String(buffer: payload))) }
        }

        var payloads: [String] { self.messages.withLockedValue { $0.map(\.payload) } }
        var subjects: [String] { self.messages.withLockedValue { $0.map(\.subject) } }

        func waitFor(count: Int, timeout: Duration = .seconds(10)) async throws {
            try await eventually(timeout: timeout) { self.payloads.count >= count }
        }
    }

    static func client(
        _ servers: [String],
        maxPendingBytes: Int = 1 << 20,
        pingIntervalMs: Int = 20_000,
        echo: Bool = true
    ) throws -> NATSClient {
        var logger = Logger(label: "lhttpd.test.nats")
        logger.logLevel = .critical
        return NATSClient(
            configuration: .init(
                servers: try servers.map { try NATSServerURL(parsing: $0) },
                maxPendingBytes: maxPendingBytes,
                reconnectMinMs: 20,
                reconnectMaxMs: 200,
                connectTimeoutMs: 1000,
                pingIntervalMs: pingIntervalMs,
                echo: echo
            ),
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: logger
        )
    }

    static func connected(_ client: NATSClient, inbox: Inbox? = nil, connections: Int = 1) async throws {
        client.start { message in inbox?.record(message.subject, message.payload) }
        try await eventually { client.currentStatus.state == .connected && client.currentStatus.connections >= connections }
    }

    @Test func publishSubscribeUnsubscribeAndMaxPayload() async throws {
        let server = try await NATSServerProcess(maxPayload: 4096)
        let inbox = Inbox()
        let subscriber = try Self.client([server.url])
        let publisher = try Self.client([server.url])
        try await Self.connected(subscriber, inbox: inbox)
        try await Self.connected(publisher)
        #expect(publisher.maxPayload == 4096)

        let sid = try subscriber.subscribe("lhttp.room")
        try await subscriber.flush()
        try publisher.publish(ByteBuffer(string: "hello\r\nMSG fake 1 2\r\n"), to: "lhttp.room")
        try publisher.publish(ByteBuffer(string: "other"), to: "lhttp.elsewhere")
        try await publisher.flush()
        try await subscriber.flush()
        #expect(inbox.payloads == ["hello\r\nMSG fake 1 2\r\n"])
        #expect(inbox.subjects == ["lhttp.room"])
        #expect(try await server.subscriptions(ofClientsNamed: "lhttpd") == ["lhttp.room"])

        subscriber.unsubscribe(sid)
        try await subscriber.flush()
        try publisher.publish(ByteBuffer(string: "late"), to: "lhttp.room")
        try await publisher.flush()
        try await subscriber.flush()
        #expect(inbox.payloads.count == 1)
        #expect(try await server.subscriptions(ofClientsNamed: "lhttpd").isEmpty)

        // The server's max_payload is respected before anything is queued; bad subjects never leave.
        #expect(throws: NATSError.self) { try publisher.publish(ByteBuffer(repeating: 0x61, count: 5000), to: "lhttp.room") }
        #expect(throws: NATSError.self) { try publisher.publish(ByteBuffer(string: "x"), to: "bad subject") }
        #expect(throws: NATSError.self) { try publisher.publish(ByteBuffer(string: "x"), to: "a..b") }
        #expect(throws: NATSError.self) { try subscriber.subscribe("") }
        try await publisher.flush()
        #expect(publisher.currentStatus.connections == 1)
        await subscriber.shutdown()
        await publisher.shutdown()
        #expect(publisher.currentStatus.state == .closed)
    }

    @Test func keepsTryingUntilAServerAppears() async throws {
        let port = try await NATSServerProcess.freePort()
        let client = try Self.client(["nats://127.0.0.1:\(port)"])
        let inbox = Inbox()
        client.start { message in inbox.record(message.subject, message.payload) }
        _ = try client.subscribe("lhttp.early")
        try await eventually { client.currentStatus.lastError != nil }
        #expect(client.currentStatus.state == .connecting)
        await #expect(throws: NATSError.notConnected) { try await client.flush() }
        // Published while nothing listens: kept in the pending buffer, sent once connected, after the
        // subscription (so this client, with echo on, receives its own message).
        try client.publish(ByteBuffer(string: "queued"), to: "lhttp.early")

        let server = try await NATSServerProcess(port: port)
        try await inbox.waitFor(count: 1)
        #expect(inbox.payloads == ["queued"])
        #expect(client.currentStatus.connections == 1)
        await client.shutdown()
        server.stop()
    }

    @Test func reconnectsResubscribesAndSendsWhatWaitedAfterTheServerWasKilled() async throws {
        let server = try await NATSServerProcess()
        let inbox = Inbox()
        let client = try Self.client([server.url])
        try await Self.connected(client, inbox: inbox)
        _ = try client.subscribe("lhttp.a")
        _ = try client.subscribe("lhttp.b")
        try client.publish(ByteBuffer(string: "before"), to: "lhttp.a")
        try await inbox.waitFor(count: 1)

        server.kill()
        try await eventually { client.currentStatus.state == .disconnected }
        for index in 0..<10 {
            #expect(try client.publish(ByteBuffer(string: "during-\(index)"), to: index % 2 == 0 ? "lhttp.a" : "lhttp.b"))
        }
        #expect(client.currentStatus.pendingBytes > 0)

        try await server.start()
        try await inbox.waitFor(count: 11)
        #expect(inbox.payloads == ["before"] + (0..<10).map { "during-\($0)" })
        #expect(client.currentStatus.connections == 2)
        #expect(client.currentStatus.pendingBytes == 0)
        #expect(client.currentStatus.droppedMessages == 0)
        #expect(Set(try await server.subscriptions(ofClientsNamed: "lhttpd")) == ["lhttp.a", "lhttp.b"])
        try client.publish(ByteBuffer(string: "after"), to: "lhttp.b")
        try await inbox.waitFor(count: 12)
        await client.shutdown()
    }

    @Test func thePendingBufferIsBoundedAndDropsAreCounted() async throws {
        let server = try await NATSServerProcess()
        let inbox = Inbox()
        let client = try Self.client([server.url], maxPendingBytes: 1000)
        try await Self.connected(client, inbox: inbox)
        _ = try client.subscribe("lhttp.x")
        try await client.flush()
        server.kill()
        try await eventually { client.currentStatus.state == .disconnected }

        let payload = String(repeating: "p", count: 100)
        var accepted = 0
        for _ in 0..<50 where try client.publish(ByteBuffer(string: payload), to: "lhttp.x") { accepted += 1 }
        // Each entry is the payload plus its PUB line (about 120 bytes): 5 to 8 fit in 1000 bytes.
        #expect((5...8).contains(accepted))
        #expect(client.currentStatus.droppedMessages == 50 - accepted)
        #expect(client.currentStatus.pendingBytes <= 1000)

        try await server.start()
        try await inbox.waitFor(count: accepted)
        try await client.flush()
        #expect(inbox.payloads.count == accepted)
        await client.shutdown()
    }

    @Test func credentialsFromTheURL() async throws {
        let server = try await NATSServerProcess(user: "gateway", password: "s3cr@t")
        let good = try Self.client(["nats://gateway:s3cr%40t@127.0.0.1:\(server.port)"])
        try await Self.connected(good)
        try await good.flush()

        let bad = try Self.client(["nats://gateway:wrong@127.0.0.1:\(server.port)"])
        bad.start { _ in }
        try await eventually { bad.currentStatus.lastError?.contains("Authorization") == true }
        #expect(bad.currentStatus.state != .connected)
        #expect(bad.currentStatus.connections == 0)
        await good.shutdown()
        await bad.shutdown()
    }

    @Test func aServerThatStopsAnsweringPingsIsLeft() async throws {
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(SilentServer()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let client = try Self.client(["nats://127.0.0.1:\(silent.localAddress?.port ?? 0)"], pingIntervalMs: 30)
        try await Self.connected(client)
        #expect(client.maxPayload == 1024)
        // Two keep-alive PINGs go unanswered: the link is closed as stale and a new one made.
        try await eventually { client.currentStatus.lastError == "\(NATSError.stale)" }
        try await eventually { client.currentStatus.connections >= 2 }
        await client.shutdown()
        try await silent.close()
    }

    @Test func aPermissionsViolationIsReportedAndTheLinkStays() async throws {
        let server = try await NATSServerProcess(extraConfig: """
            authorization { users = [ { user: gw, password: pw, permissions: { subscribe: { deny: "lhttp.secret" } } } ] }
            """)
        let inbox = Inbox()
        let client = try Self.client(["nats://gw:pw@127.0.0.1:\(server.port)"])
        try await Self.connected(client, inbox: inbox)
        _ = try client.subscribe("lhttp.secret")
        _ = try client.subscribe("lhttp.open")
        try await eventually { client.currentStatus.lastError?.contains("Permissions Violation") == true }
        try client.publish(ByteBuffer(string: "still here"), to: "lhttp.open")
        try await inbox.waitFor(count: 1)
        #expect(inbox.payloads == ["still here"])
        #expect(client.currentStatus.connections == 1)
        await client.shutdown()
    }

    @Test func shutdownWritesWhatWasQueuedFirst() async throws {
        let server = try await NATSServerProcess()
        let inbox = Inbox()
        let subscriber = try Self.client([server.url])
        try await Self.connected(subscriber, inbox: inbox)
        _ = try subscriber.subscribe("lhttp.last")
        try await subscriber.flush()
        let publisher = try Self.client([server.url])
        try await Self.connected(publisher)
        for index in 0..<1000 { try publisher.publish(ByteBuffer(string: "\(index)"), to: "lhttp.last") }
        await publisher.shutdown()
        try await inbox.waitFor(count: 1000)
        #expect(inbox.payloads == (0..<1000).map { "\($0)" })
        await subscriber.shutdown()
    }

    @Test func triesTheNextServerWhenOneIsDown() async throws {
        let downPort = try await NATSServerProcess.freePort()
        let server = try await NATSServerProcess()
        let client = try Self.client(["nats://127.0.0.1:\(downPort)", server.url])
        try await Self.connected(client)
        #expect(client.currentStatus.server == server.url)
        await client.shutdown()
    }
}

/// A server that completes the handshake and then goes silent (a half-dead peer: TCP open, nothing
/// answered). nats-server never does this on purpose, so the test plays it.
final class SilentServer: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let pings = NIOLockedValueBox(0)

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(Self.wrapOutboundOut(ByteBuffer(string: "INFO {\"max_payload\":1024}\r\n")), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let text = String(buffer: Self.unwrapInboundIn(data))
        let count = text.components(separatedBy: "PING\r\n").count - 1
        for _ in 0..<count {
            let first = self.pings.withLockedValue { pings in
                defer { pings += 1 }
                return pings == 0
            }
            // Only the handshake's PING is answered.
            if first { context.writeAndFlush(Self.wrapOutboundOut(ByteBuffer(string: "PONG\r\n")), promise: nil) }
        }
    }
}
