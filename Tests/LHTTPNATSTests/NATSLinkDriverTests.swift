import LHTTPConfig
@testable import LHTTPNATS
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing

/// The client's driver on an `EmbeddedEventLoop`: every connection is an `EmbeddedChannel` on which the
/// test plays the server, and time moves only when the test advances it (no sleeping, no sockets).
@Suite("NATS link driver in virtual time")
struct NATSLinkDriverTests {
    /// Stands in for TCP: one `EmbeddedChannel` per connection attempt, or a refusal.
    final class FakeNetwork: Sendable {
        private let attempts = NIOLockedValueBox<[(server: NATSServerURL, channel: EmbeddedChannel)]>([])
        private let refusing = NIOLockedValueBox(false)

        var count: Int { self.attempts.withLockedValue { $0.count } }
        func server(_ index: Int) -> NATSServerURL { self.attempts.withLockedValue { $0[index].server } }
        func channel(_ index: Int) -> EmbeddedChannel { self.attempts.withLockedValue { $0[index].channel } }
        func refuse(_ refuse: Bool) { self.refusing.withLockedValue { $0 = refuse } }

        func connector(on loop: EmbeddedEventLoop) -> NATSLinkDriver.Connector {
            { server, handler in
                guard !self.refusing.withLockedValue({ $0 }) else { return loop.makeFailedFuture(NATSError.io("connection refused")) }
                let channel = EmbeddedChannel(loop: loop)
                self.attempts.withLockedValue { $0.append((server, channel)) }
                do {
                    try channel.pipeline.syncOperations.addHandler(handler)
                    return channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: server.port)).map { channel as any Channel }
                } catch {
                    return loop.makeFailedFuture(error)
                }
            }
        }
    }

    static func client(_ loop: EmbeddedEventLoop, _ network: FakeNetwork, servers: [String] = ["nats://127.0.0.1:4001", "nats://127.0.0.1:4002"]) throws -> NATSClient {
        var logger = Logger(label: "lhttpd.test.nats")
        logger.logLevel = .critical
        return NATSClient(
            configuration: .init(
                servers: try servers.map { try NATSServerURL(parsing: $0) },
                reconnectMinMs: 100, reconnectMaxMs: 1000, connectTimeoutMs: 500, pingIntervalMs: 1000
            ),
            eventLoop: loop, logger: logger, connector: network.connector(on: loop)
        )
    }

    /// Everything the client wrote on `channel` since the last call.
    static func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    /// Plays the server's side of the handshake on `channel`. - Returns: what the client wrote after it.
    @discardableResult
    static func handshake(_ channel: EmbeddedChannel, info: String = "{}") throws -> String {
        try channel.writeInbound(ByteBuffer(string: "INFO \(info)\r\n"))
        _ = try Self.written(channel)
        try channel.writeInbound(ByteBuffer(string: "PONG\r\n"))
        return try Self.written(channel)
    }

    static func finish(_ client: NATSClient, _ loop: EmbeddedEventLoop) throws {
        _ = client.driver.value.close()
        try loop.syncShutdownGracefully()
    }

    @Test func theHandshakeTimesOutThenTheReconnectWaitsItsDelayAndTriesTheNextServer() throws {
        let loop = EmbeddedEventLoop()
        let network = FakeNetwork()
        let client = try Self.client(loop, network)
        client.start { _ in }
        #expect(network.count == 1)
        let first = network.channel(0)
        loop.advanceTime(by: .milliseconds(499))
        #expect(first.isActive, "the server has 500 ms to complete the handshake")
        loop.advanceTime(by: .milliseconds(1))
        #expect(!first.isActive, "no INFO within 500 ms: closed")
        #expect(client.currentStatus.lastError == "\(NATSError.io("no NATS handshake within 500 ms"))")
        #expect(client.currentStatus.state == .connecting)
        // The first retry waits 50 to 100 ms (equal jitter below 100 ms), then goes to the next server.
        loop.advanceTime(by: .milliseconds(49))
        #expect(network.count == 1)
        loop.advanceTime(by: .milliseconds(51))
        #expect(network.count == 2)
        #expect(network.server(1).port == 4002)
        try Self.finish(client, loop)
    }

    @Test func aLinkComesUpWithItsSubscriptionsFirstThenWhatWaited() throws {
        let loop = EmbeddedEventLoop()
        let network = FakeNetwork()
        let client = try Self.client(loop, network, servers: ["nats://gw:s3cr%40t@127.0.0.1:4001"])
        let inbox = NIOLockedValueBox<[String]>([])
        #expect(try client.subscribe("s.b") == 1)
        #expect(try client.subscribe("s.a") == 2)
        client.start { message in inbox.withLockedValue { $0.append("\(message.subject) \(String(buffer: message.payload))") } }
        try client.publish(ByteBuffer(string: "waited"), to: "s.a")

        let channel = network.channel(0)
        try channel.writeInbound(ByteBuffer(string: "INFO {\"max_payload\":4096}\r\n"))
        let connect = try Self.written(channel)
        #expect(connect.hasPrefix("CONNECT {") && connect.hasSuffix("}\r\nPING\r\n"))
        #expect(connect.contains(#""user":"gw""#) && connect.contains(#""pass":"s3cr@t""#), "credentials from the URL")
        #expect(client.currentStatus.state == .connecting)
        try channel.writeInbound(ByteBuffer(string: "PONG\r\n"))
        #expect(try Self.written(channel) == "SUB s.b 1\r\nSUB s.a 2\r\nPUB s.a 6\r\nwaited\r\n")
        #expect(client.maxPayload == 4096)
        #expect(client.currentStatus.state == .connected)
        #expect(client.currentStatus.server == "nats://127.0.0.1:4001")
        #expect(client.currentStatus.pendingBytes == 0)

        try channel.writeInbound(ByteBuffer(string: "MSG s.a 2 2\r\nhi\r\nMSG s.b 1 3\r\nyou\r\nMSG s.z 9 1\r\n?\r\n"))
        #expect(inbox.withLockedValue { $0 } == ["s.a hi", "s.b you"], "an unknown sid is not delivered")
        #expect(client.currentStatus.receivedMessages == 2)
        // On the client's own loop a publication goes out in the same tick; the server's max_payload holds.
        try client.publish(ByteBuffer(string: "now"), to: "s.b")
        #expect(try Self.written(channel) == "PUB s.b 3\r\nnow\r\n")
        #expect(throws: NATSError.self) { try client.publish(ByteBuffer(repeating: 0, count: 4097), to: "s.b") }
        try Self.finish(client, loop)
    }

    @Test func twoUnansweredKeepAlivePingsCloseTheLinkAndTheNextLinkResubscribes() throws {
        let loop = EmbeddedEventLoop()
        let network = FakeNetwork()
        let client = try Self.client(loop, network)
        _ = try client.subscribe("s.x")
        client.start { _ in }
        let first = network.channel(0)
        #expect(try Self.handshake(first) == "SUB s.x 1\r\n")

        loop.advanceTime(by: .milliseconds(1000))
        #expect(try Self.written(first) == "PING\r\n")
        try first.writeInbound(ByteBuffer(string: "PONG\r\n"))
        loop.advanceTime(by: .milliseconds(1000))
        loop.advanceTime(by: .milliseconds(1000))
        #expect(try Self.written(first) == "PING\r\nPING\r\n")
        #expect(first.isActive, "one answered, two outstanding")
        loop.advanceTime(by: .milliseconds(1000))
        #expect(!first.isActive)
        #expect(client.currentStatus.lastError == "\(NATSError.stale)")
        #expect(client.currentStatus.state == .disconnected)

        loop.advanceTime(by: .milliseconds(100))
        #expect(network.count == 2)
        #expect(try Self.handshake(network.channel(1)) == "SUB s.x 1\r\n")
        #expect(client.currentStatus.connections == 2)
        #expect(client.currentStatus.state == .connected)
        try Self.finish(client, loop)
    }

    @Test func aDrainThatFindsTheLinkGoneDoesNotStallTheNextLink() throws {
        let loop = EmbeddedEventLoop()
        let network = FakeNetwork()
        let client = try Self.client(loop, network, servers: ["nats://127.0.0.1:4001"])
        client.start { _ in }
        try Self.handshake(network.channel(0))
        // A publisher on another thread queues and schedules a drain; the link drops before the drain runs.
        let admitted = client.shared.withLockedValue { $0.admit(ByteBuffer(string: "kept"), to: ["s.a"]) }
        #expect(admitted == .appended(.scheduleDrain))
        network.channel(0).close(promise: nil)
        client.driver.value.drain()
        #expect(client.currentStatus.pendingBytes > 0, "kept for the next link")
        loop.advanceTime(by: .milliseconds(100))
        #expect(try Self.handshake(network.channel(1)) == "PUB s.a 4\r\nkept\r\n")
        try client.publish(ByteBuffer(string: "next"), to: "s.a")
        #expect(try Self.written(network.channel(1)) == "PUB s.a 4\r\nnext\r\n")
        try Self.finish(client, loop)
    }

    @Test func closingDuringAPendingReconnectCancelsIt() throws {
        let loop = EmbeddedEventLoop()
        let network = FakeNetwork()
        network.refuse(true)
        let client = try Self.client(loop, network)
        client.start { _ in }
        #expect(client.currentStatus.lastError == "\(NATSError.io("connection refused"))")
        network.refuse(false)
        _ = client.driver.value.close()
        loop.advanceTime(by: .seconds(10))
        #expect(network.count == 0, "nothing reconnects after the close")
        #expect(client.currentStatus.state == .closed)
        try loop.syncShutdownGracefully()
    }

    @Test func shutdownWaitsForThePongButNotForever() throws {
        let loop = EmbeddedEventLoop()
        let network = FakeNetwork()
        for answered in [false, true] {
            let client = try Self.client(loop, network)
            client.start { _ in }
            let channel = network.channel(network.count - 1)
            try Self.handshake(channel)
            let finished = NIOLockedValueBox(false)
            client.driver.value.shutdown(drainTimeout: .seconds(1)).whenComplete { _ in finished.withLockedValue { $0 = true } }
            #expect(try Self.written(channel) == "PING\r\n")
            if answered {
                try channel.writeInbound(ByteBuffer(string: "PONG\r\n"))
                loop.run()  // the channel's close completes in a task of its loop
                #expect(finished.withLockedValue { $0 }, "the PONG ends the wait")
            } else {
                loop.advanceTime(by: .milliseconds(999))
                #expect(!finished.withLockedValue { $0 } && channel.isActive)
                loop.advanceTime(by: .milliseconds(1))
                #expect(finished.withLockedValue { $0 }, "a silent server delays the stop by drainTimeout at most")
            }
            #expect(!channel.isActive)
            #expect(client.currentStatus.state == .closed)
        }
        try loop.syncShutdownGracefully()
    }
}
