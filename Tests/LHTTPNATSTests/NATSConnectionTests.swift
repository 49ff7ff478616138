import Foundation
import LHTTPNATS
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Against a real `nats-server` on a free loopback port, started and stopped (by PID) by the test.
@Suite("NATS client against nats-server")
struct NATSConnectionTests {
    final class Server {
        let process = Process()
        let port: Int
        private var configFile: URL?

        init() async throws {
            let probe = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
            self.port = probe.localAddress?.port ?? 0
            try await probe.close()
            let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server"].first { FileManager.default.isExecutableFile(atPath: $0) }
            guard let binary else { throw NATSError.notConnected }
            self.process.executableURL = URL(fileURLWithPath: binary)
            // max_payload has no command-line flag: a tiny config file.
            let config = FileManager.default.temporaryDirectory.appendingPathComponent("nats-\(self.port).conf")
            try Data("listen: 127.0.0.1:\(self.port)\nmax_payload: 4096\n".utf8).write(to: config)
            self.configFile = config
            self.process.arguments = ["-c", config.path]
            self.process.standardOutput = FileHandle.nullDevice
            self.process.standardError = FileHandle.nullDevice
            try self.process.run()
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                if (try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: self.port).get().close()) != nil {
                    return
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            self.process.terminate()
            throw NATSError.notConnected
        }

        func stop() {
            self.process.terminate()
            self.process.waitUntilExit()
            if let configFile = self.configFile { try? FileManager.default.removeItem(at: configFile) }
        }
    }

    @Test func publishSubscribeUnsubscribeAndMaxPayload() async throws {
        let server = try await Server()
        defer { server.stop() }
        let received = NIOLockedValueBox<[(String, String)]>([])
        let subscriber = try await NATSConnection.connect(host: "127.0.0.1", port: server.port) { subject, _, payload in
            received.withLockedValue { $0.append((subject, String(buffer: payload))) }
        }
        let publisher = try await NATSConnection.connect(host: "127.0.0.1", port: server.port) { _, _, _ in }
        #expect(publisher.maxPayload == 4096)

        let sid = try subscriber.subscribe("lhttp.room")
        try await subscriber.flush()
        try publisher.publish(ByteBuffer(string: "hello\r\nMSG fake 1 2\r\n"), to: "lhttp.room")
        try publisher.publish(ByteBuffer(string: "other"), to: "lhttp.elsewhere")
        try await publisher.flush()
        try await subscriber.flush()
        #expect(received.withLockedValue { $0.map(\.1) } == ["hello\r\nMSG fake 1 2\r\n"])
        #expect(received.withLockedValue { $0.first?.0 } == "lhttp.room")

        subscriber.unsubscribe(sid)
        try await subscriber.flush()
        try publisher.publish(ByteBuffer(string: "late"), to: "lhttp.room")
        try await publisher.flush()
        try await subscriber.flush()
        #expect(received.withLockedValue { $0.count } == 1)

        // The server's max_payload is respected before anything is sent.
        #expect(throws: NATSError.self) { try publisher.publish(ByteBuffer(repeating: 0x61, count: 5000), to: "lhttp.room") }
        #expect(throws: NATSError.self) { try publisher.publish(ByteBuffer(string: "x"), to: "bad subject") }
        #expect(throws: NATSError.self) { try publisher.publish(ByteBuffer(string: "x"), to: "a..b") }
        await subscriber.close()
        await publisher.close()
    }

    @Test func connectingToNothingFails() async throws {
        let probe = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = probe.localAddress?.port ?? 1
        try await probe.close()
        await #expect(throws: (any Error).self) {
            _ = try await NATSConnection.connect(host: "127.0.0.1", port: port) { _, _, _ in }
        }
    }
}
