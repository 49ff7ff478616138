import Foundation
import LHTTPClient
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import NIOPosix
import Testing

@Suite("Slow consumers")
struct SlowConsumerTests {
    /// States of the server's TCP sockets on `port` (local port = `port`) talking to the client's
    /// `clientPort`, from `/proc/net/tcp`: "01" established, "04" FIN-WAIT-1, "06" TIME-WAIT, ...
    /// (include/net/tcp_states.h). Other sockets of the port (earlier servers' TIME-WAIT) are not counted.
    static func serverSockets(port: Int, clientPort: Int) throws -> [String] {
        // Read to the end: procfs reports a size of 0, and a one-shot read can stop after the first page.
        guard let file = FileHandle(forReadingAtPath: "/proc/net/tcp") else { throw TestFailure("no /proc/net/tcp") }
        defer { try? file.close() }
        let table = String(decoding: try file.readToEnd() ?? Data(), as: UTF8.self)
        let local = String(format: ":%04X", port)
        let remote = String(format: ":%04X", clientPort)
        return table.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 3, fields[1].hasSuffix(local), fields[2].hasSuffix(remote) else { return nil }
            return String(fields[3])
        }
    }

    @Test func aStalledReaderIsClosedWith4008ThenResetSoItHoldsNoKernelMemory() async throws {
        try await TestServer.with({
            $0.limits.maxOutboundBytes = 64 * 1024
            $0.limits.socketSendBufferBytes = 16 * 1024
            $0.websocket.closeTimeoutS = 0.3
        }) { server in
            let stalled = try await RawConnection.websocket(port: server.port, reading: false, receiveBuffer: 4096)
            try await stalled.send(RawFrames.client(opcode: 0x1, payload: Array("LHTTP/1.0 sub\r\nsubscribe:feed\r\n\r\n".utf8)))
            try await server.eventually { server.gateway.hub.subscriberCount(of: "feed") == 1 }
            let publisher = try await server.publisher()
            let filler = String(repeating: "x", count: 8 * 1024)
            var published = 0
            let clientPort = try #require(stalled.channel.localAddress?.port)
            // The stalled websocket, established. Awaited: /proc/net/tcp is read in chunks, and a busy machine's
            // socket churn between them can make one read skip or repeat a row.
            try await server.eventually { (try? Self.serverSockets(port: server.port, clientPort: clientPort)) == ["01"] }
            // Bounded: at most 2000 messages (16 MiB); stops as soon as the stalled reader is gone.
            while published < 2000, server.gateway.hub.subscriberCount(of: "feed") == 1 {
                _ = try await publisher.request(path: "/publish?channel=feed", body: ByteBuffer(string: filler))
                published += 1
            }
            #expect(server.gateway.hub.subscriberCount(of: "feed") == 0, "the stalled reader was never closed")
            try await publisher.close()
            // Its close frame is stuck behind what it never read: after close_timeout_s it is reset, and
            // the server keeps no socket for it (no FIN-WAIT-1 holding the unsent bytes for minutes).
            do {
                // Twice in a row: one read may skip a row (see above).
                try await server.eventually {
                    (try? Self.serverSockets(port: server.port, clientPort: clientPort))?.isEmpty == true
                        && (try? Self.serverSockets(port: server.port, clientPort: clientPort))?.isEmpty == true
                }
            } catch {
                Issue.record("server sockets left: \((try? Self.serverSockets(port: server.port, clientPort: clientPort)) ?? []), published \(published)")
                throw error
            }
            let metrics = try await MetricsTests.scrape(server)
            #expect(metrics.values["lhttp_closes_total{code=\"4008\"}"] == 1)
            #expect(metrics.values["lhttp_websocket_resets_total"] == 1)
            // The client learns it was reset (at once, or when it reads at last).
            if !stalled.isClosed { try? await stalled.startReading() }
            try await server.eventually { stalled.isClosed }
            #expect(stalled.error?.contains("Connection reset by peer") == true, "\(stalled.error ?? "no error")")
            await stalled.close()
        }
    }

    /// A websocket client that upgrades, subscribes, and then never reads a byte.
    static func stalledSubscriber(port: Int, channel name: String) async throws -> any Channel {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: false)
            .channelOption(.socketOption(.so_rcvbuf), value: 4096)
            .connect(host: "127.0.0.1", port: port)
            .get()
        var request = ByteBuffer(
            string: "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        // One masked text frame (mask key 0: the payload is sent as is).
        let payload = Array("LHTTP/1.0 sub\r\nsubscribe:\(name)\r\n\r\n".utf8)
        request.writeBytes([0x81, 0x80 | UInt8(payload.count), 0, 0, 0, 0])
        request.writeBytes(payload)
        try await channel.writeAndFlush(request)
        return channel
    }

    @Test func slowReaderIsClosedWhileFastReaderGetsEverything() async throws {
        try await TestServer.with({ $0.limits.maxOutboundBytes = 64 * 1024 }) { server in
            let fast = try await server.client()
            try await server.subscribe(fast, "feed")
            let slow = try await Self.stalledSubscriber(port: server.port, channel: "feed")
            try await server.eventually { server.gateway.hub.subscriberCount(of: "feed") == 2 }

            let publisher = try await server.publisher()
            let filler = String(repeating: "x", count: 8 * 1024)
            var published = 0
            // Bounded: at most 4000 messages (32 MiB); stops as soon as the slow reader is gone. The fast
            // reader takes each message before the next is published, so it can never be the slow one.
            while published < 4000, server.gateway.hub.subscriberCount(of: "feed") == 2 {
                let response = try await publisher.request(path: "/publish?channel=feed", body: ByteBuffer(string: "\(published) \(filler)"))
                #expect(response.status == 200)
                let message = try await fast.nextMessage(timeout: .seconds(10))
                #expect(message.bodyString == "\(published) \(filler)")
                published += 1
            }
            #expect(server.gateway.hub.subscriberCount(of: "feed") == 1, "the slow reader was never closed")
            #expect(server.gateway.connectionCount == 1)
            // The fast reader is still served after the slow one is gone.
            let after = try await publisher.request(path: "/publish?channel=feed", body: ByteBuffer(string: "after"))
            #expect(after.bodyString.contains("\"deliveries\":1"))
            #expect(try await fast.nextMessage().bodyString == "after")
            try await fast.close()
            try await publisher.close()
            try? await slow.close()
        }
    }

    @Test func tenThousandMessagesReachTheFastReaderWhileTheStalledOneIsClosedWith4008() async throws {
        // Default limits.max_outbound_bytes (1 MiB); the one publisher stands for many, so no rate limit.
        try await TestServer.with({ $0.limits.maxMessagesPerSecond = 0 }) { server in
            let fast = try await server.client()
            try await server.subscribe(fast, "feed")
            let slow = try await Self.stalledSubscriber(port: server.port, channel: "feed")
            try await server.eventually { server.gateway.hub.subscriberCount(of: "feed") == 2 }
            let publisher = try await server.client()
            let filler = String(repeating: "x", count: 1000)
            // In batches of 500 (500 KB): the fast reader takes each batch before the next is sent.
            for batch in 0..<20 {
                try await publisher.send((0..<500).map { index in
                    LHTTPMessage(command: "tick", headers: ["publish": "feed"], body: "\(batch * 500 + index) \(filler)")
                })
                for index in 0..<500 {
                    let message = try await fast.nextMessage(timeout: .seconds(10))
                    if message.bodyString != "\(batch * 500 + index) \(filler)" {
                        Issue.record("message \(batch * 500 + index) lost or out of order")
                        return
                    }
                }
            }
            // 10 MB went out; the stalled reader could hold a few of them (socket buffers + 1 MiB).
            try await server.eventually { server.gateway.hub.subscriberCount(of: "feed") == 1 }
            let metrics = try await MetricsTests.scrape(server).values
            #expect(metrics["lhttp_closes_total{code=\"4008\"}"] == 1)
            #expect(metrics["lhttp_deliveries_total"].map { $0 >= 10_000 } == true)
            try await fast.close()
            try await publisher.close()
            try? await slow.close()
        }
    }
}
