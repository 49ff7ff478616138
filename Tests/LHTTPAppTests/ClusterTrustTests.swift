import Foundation
import LHTTPClient
import LHTTPConfig
import LHTTPGateway
import LHTTPNATS
import LHTTPProtocol
import LHTTPTestSupport
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// What arrives on the cluster's subjects is not trusted (issue 13): a stranger on the real nats-server
/// publishes forged envelopes, a websocket client tries to amplify, and the legitimate cases still work.
@Suite("Cluster trust at the edges")
struct ClusterTrustTests {
    /// A foreign NATS client on the same server: publishes whatever it likes, reads whatever it subscribes to.
    final class Stranger: Sendable {
        let client: NATSClient
        private let received = NIOLockedValueBox<[(subject: String, payload: ByteBuffer)]>([])

        init(_ nats: NATSServerProcess, listening subject: String? = nil) async throws {
            var logger = Logger(label: "lhttpd.test.stranger")
            logger.logLevel = .critical
            self.client = NATSClient(
                configuration: .init(servers: [try NATSServerURL(parsing: nats.url)], name: "stranger"),
                eventLoop: MultiThreadedEventLoopGroup.singleton.next(), logger: logger
            )
            self.client.start { [received] message in received.withLockedValue { $0.append((message.subject, message.payload)) } }
            if let subject { _ = try self.client.subscribe(subject) }
            try await eventually { self.client.currentStatus.state == .connected }
            // The SUB is processed by the server once a round trip completes.
            try await self.client.flush()
        }

        var messages: [(subject: String, payload: ByteBuffer)] { self.received.withLockedValue { $0 } }

        /// Publishes `payload` on channel `channel`'s subject and waits until the server processed it, so
        /// whatever a node publishes afterwards reaches the other nodes after it.
        func publish(_ payload: String, on channel: String) async throws {
            try self.client.publish(ByteBuffer(string: payload), to: NATSSubject.channel(channel, prefix: "lhttp"))
            try await self.client.flush()
        }

        func close() async { await self.client.shutdown() }
    }

    /// The body of the next message `client` receives; fails on anything that is not an LHTTP message.
    static func nextBody(_ client: LHTTPWebSocketClient) async throws -> String {
        let event = try await client.nextEvent()
        guard case .message(let message, _, let binary) = event, !binary else {
            throw TestFailure("expected a text LHTTP message, got \(event)")
        }
        return message.bodyString
    }

    // MARK: Finding 4: the cluster trusts whatever arrives on its subjects

    @Test func anEnvelopeIsDeliveredOnlyToTheChannelItsSubjectNames() async throws {
        let nats = try await NATSServerProcess()
        try await TestServer.withNodes(nats) { a, b in
            let reader = try await b.client()
            let victim = try await b.client()
            try await b.subscribe(reader, "public")
            try await b.subscribe(victim, "secret")
            try await ClusterTests.waitForInterest(nats, node: "b", ["public", "secret"])

            // A stranger allowed to publish on `lhttp.public` only, listing `secret` in the envelope.
            let stranger = try await Stranger(nats)
            try await stranger.publish("LHC1 evil#1 1 public secret\r\nLHTTP/1.0 chat\r\npublish:public secret\r\n\r\nforged", on: "public")
            try await stranger.publish("LHC1 evil#1 2 secret\r\nLHTTP/1.0 chat\r\npublish:secret\r\n\r\nforged for secret", on: "public")
            await stranger.close()

            // A genuine publication after them: the subscriber of `secret` sees it first, nothing forged.
            let http = try await a.publisher()
            #expect(try await http.request(path: "/publish?channel=secret&channel=public", body: ByteBuffer(string: "genuine")).status == 200)
            #expect(try await Self.nextBody(victim) == "genuine")
            // No secret configured: what NATS lets a stranger publish on `public` reaches `public` only.
            #expect(try await Self.nextBody(reader) == "forged")
            #expect(try await Self.nextBody(reader) == "genuine")
            #expect(b.cluster?.rejections(.wrongSubject) == 1)
            for client in [reader, victim] { try await client.close() }
            try await http.close()
        }
    }

    @Test func aForgedOriginAndSequenceDoNotSuppressTheGenuineMessage() async throws {
        let nats = try await NATSServerProcess()
        try await TestServer.withNodes(nats) { a, b in
            let subscriber = try await b.client()
            try await b.subscribe(subscriber, "room")
            try await ClusterTests.waitForInterest(nats, node: "b", ["room"])
            // The stranger reads the subjects (as anyone allowed to subscribe can) and learns a's origin
            // and sequence from a genuine envelope.
            let stranger = try await Stranger(nats, listening: "lhttp.>")
            let http = try await a.publisher()
            #expect(try await http.request(path: "/publish?channel=room", body: ByteBuffer(string: "first")).status == 200)
            #expect(try await Self.nextBody(subscriber) == "first")
            try await eventually { stranger.messages.count == 1 }
            let header = String(buffer: stranger.messages[0].payload).prefix { $0 != "\r\n" }.split(separator: " ")
            let origin = header[1]
            let sequence = try #require(UInt64(header[2]))

            // The next sequence of a's origin, sent first.
            try await stranger.publish("LHC1 \(origin) \(sequence + 1) room\r\nLHTTP/1.0 chat\r\npublish:room\r\n\r\nforged", on: "room")
            #expect(try await http.request(path: "/publish?channel=room", body: ByteBuffer(string: "second")).status == 200)
            #expect(try await Self.nextBody(subscriber) == "forged")
            #expect(try await Self.nextBody(subscriber) == "second")
            await stranger.close()
            try await subscriber.close()
            try await http.close()
        }
    }

    @Test func bytesThatAreNotAValidLHTTPPublicationAreNeverRelayed() async throws {
        let nats = try await NATSServerProcess()
        try await TestServer.withNodes(nats) { a, b in
            let subscriber = try await b.client()
            try await b.subscribe(subscriber, "room")
            try await ClusterTests.waitForInterest(nats, node: "b", ["room"])
            let stranger = try await Stranger(nats)
            for forged in [
                "LHC1 evil#1 1 room\r\n\u{01}\u{02}binary \u{7F}",
                "LHC1 evil#1 2 room\r\nnot an lhttp message",
                "LHC1 evil#1 3 room\r\nLHTTP/1.0 chat\r\npublish:other\r\n\r\nheader names another channel",
                "LHC1 evil#1 4 room\r\nLHTTP/1.0 chat\r\n\r\nno publish header",
                "LHC1 evil#1 5 room\r\nLHTTP/1.0 chat\r\npublish:room \(String(repeating: "x", count: 300))\r\n\r\nname over the limit",
            ] {
                try await stranger.publish(forged, on: "room")
            }
            await stranger.close()
            let http = try await a.publisher()
            #expect(try await http.request(path: "/publish?channel=room", body: ByteBuffer(string: "genuine")).status == 200)
            #expect(try await Self.nextBody(subscriber) == "genuine")
            #expect(b.cluster?.rejections(.invalidMessage) == 5)
            try await subscriber.close()
            try await http.close()
        }
    }

    // MARK: Legitimate multi-channel delivery

    @Test(arguments: ["", "the-cluster-secret-0123456789"])
    func aPublicationToSeveralChannelsReachesEachRemoteConnectionExactlyOnce(secret: String) async throws {
        let nats = try await NATSServerProcess()
        try await TestServer.withNodes(nats, configure: { $0.cluster.secret = secret }) { a, b in
            let subscriptions = ["a b c", "b c", "c", "a c", "b", "a"]
            var clients: [LHTTPWebSocketClient] = []
            for channels in subscriptions {
                let client = try await b.client()
                try await b.subscribe(client, channels)
                clients.append(client)
            }
            try await ClusterTests.waitForInterest(nats, node: "b", ["a", "b", "c"])
            let publisher = try await a.client()
            try await publisher.send(LHTTPMessage(command: "chat", headers: ["publish": "a b c"], body: "abc"))
            try await publisher.send(LHTTPMessage(command: "chat", headers: ["publish": "c b"], body: "cb"))
            try await publisher.send(LHTTPMessage(command: "chat", headers: ["publish": "a b c"], body: "end"))
            for (channels, client) in zip(subscriptions, clients) {
                #expect(try await Self.nextBody(client) == "abc", "\(channels)")
                if channels != "a" { #expect(try await Self.nextBody(client) == "cb", "\(channels)") }
                // A duplicate of either would come before the end marker.
                #expect(try await Self.nextBody(client) == "end", "\(channels)")
            }
            #expect(b.cluster?.health?["rejected"] == .int(0))
            for client in clients { try await client.close() }
            try await publisher.close()
        }
    }

    /// A publication partly refused by the channel options reaches the remote subscribers of what was
    /// allowed: the copy names exactly the channels it was published to, as the receivers check.
    @Test func aPartlyRefusedPublicationReachesTheRemoteNodeOnItsAllowedChannels() async throws {
        let nats = try await NATSServerProcess()
        try await TestServer.withNodes(nats, configure: { config in
            config.channels = [ChannelOptionsConfig(prefix: "chat-", publish: .anyone), ChannelOptionsConfig(prefix: "", publish: .none)]
        }) { a, b in
            let remote = try await b.client()
            try await b.subscribe(remote, "lobby chat-1")
            try await ClusterTests.waitForInterest(nats, node: "b", ["lobby", "chat-1"])
            let publisher = try await a.client()
            try await publisher.send(LHTTPMessage(command: "chat", headers: ["publish": "lobby chat-1"], body: "hi"))
            let refused = try await publisher.nextMessage()
            #expect(refused.headers["status"] == "403" && refused.headers["channels"] == "lobby")
            let message = try await remote.nextMessage()
            #expect(message.bodyString == "hi")
            #expect(message.headers["publish"] == "chat-1")
            try await b.roundTrip(remote)  // once
            #expect(b.cluster?.health?["rejected"] == .int(0))
            try await remote.close()
            try await publisher.close()
        }
    }

    // MARK: Signing

    @Test func nodesWithTheSameSecretBelieveEachOtherAndNoOneElse() async throws {
        let nats = try await NATSServerProcess()
        try await TestServer.withNodes(nats, configure: { $0.cluster.secret = "the-cluster-secret-0123456789" }) { a, b in
            let subscriber = try await b.client()
            try await b.subscribe(subscriber, "room")
            try await ClusterTests.waitForInterest(nats, node: "b", ["room"])
            let http = try await a.publisher()
            #expect(try await http.request(path: "/publish?channel=room", body: ByteBuffer(string: "signed")).status == 200)
            #expect(try await Self.nextBody(subscriber) == "signed")

            // Nodes on the same NATS and prefix, one with another secret, one with none.
            func node(_ id: String, secret: String) -> (inout GatewayConfig) -> Void {
                { $0.cluster = ClusterConfig(nats: [nats.url], nodeID: id, reconnectMinMs: 20, reconnectMaxMs: 200, secret: secret) }
            }
            try await TestServer.with(node("c", secret: "another-secret-0123456789")) { c in
                try await TestServer.with(node("d", secret: "")) { d in
                    try await eventually { c.isClustered && d.isClustered }
                    for (node, body) in [(c, "from c"), (d, "from d")] {
                        let publisher = try await node.publisher()
                        #expect(try await publisher.request(path: "/publish?channel=room", body: ByteBuffer(string: body)).status == 200)
                        try await node.cluster?.client.flush()
                        try await publisher.close()
                    }
                }
            }
            // A stranger's envelope in the signed format, with a made-up MAC.
            let stranger = try await Stranger(nats)
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let mac = String(repeating: "ab", count: 32)
            try await stranger.publish("LHC2 \(mac) evil#1 1 \(now) room\r\nLHTTP/1.0 chat\r\npublish:room\r\n\r\nforged", on: "room")
            await stranger.close()

            #expect(try await http.request(path: "/publish?channel=room", body: ByteBuffer(string: "sentinel")).status == 200)
            #expect(try await Self.nextBody(subscriber) == "sentinel")
            #expect(b.cluster?.rejections(.badSignature) == 2)
            #expect(b.cluster?.rejections(.unsigned) == 1)
            let onB = try await b.publisher()
            let metricsB = try await onB.request(method: .GET, path: "/metrics").bodyString
            #expect(metricsB.contains("lhttp_cluster_rejected_total{reason=\"bad_signature\"} 2"), "\(metricsB)")
            #expect(try await onB.request(method: .GET, path: "/healthz").bodyString.contains("\"rejected\":3"))
            try await onB.close()
            try await subscriber.close()
            try await http.close()
        }
    }

    // MARK: Finding 5: amplification

    @Test func onePublicationCannotFanOutBeyondTheCap() async throws {
        let nats = try await NATSServerProcess()
        try await TestServer.withNodes(nats) { a, b in
            let local = try await a.client()
            try await a.subscribe(local, "ch-0")
            let eavesdropper = try await Stranger(nats, listening: "lhttp.>")
            let channels = (0..<64).map { "ch-\($0)" }.joined(separator: " ")

            // 100 KB to 64 channels: 6.4 MB towards NATS, over the 4 MiB default cap. Refused, locally too.
            let publisher = try await a.client()
            let big = String(repeating: "x", count: 100_000)
            try await publisher.send(LHTTPMessage(command: "chat", headers: ["publish": channels], body: big))
            let reply = try await publisher.nextMessage()
            #expect(reply.command == "error")
            #expect(reply.headers["status"] == "413")
            #expect(reply.headers["reason"]?.contains("max_fanout_bytes") == true, "\(reply.headers)")
            // The same over POST /publish.
            let http = try await a.publisher()
            let query = (0..<64).map { "channel=ch-\($0)" }.joined(separator: "&")
            let response = try await http.request(path: "/publish?\(query)", body: ByteBuffer(string: big))
            #expect(response.status == 413)
            #expect(response.bodyString.contains("max_fanout_bytes"), "\(response.bodyString)")
            try await http.close()

            // Within the cap: one copy per channel subject (delivery is confined by subject), each once.
            try await publisher.send(LHTTPMessage(command: "chat", headers: ["publish": channels], body: "small"))
            #expect(try await Self.nextBody(local) == "small")
            try await eventually { eavesdropper.messages.count >= 64 }
            #expect(Set(eavesdropper.messages.map(\.subject)).count == 64)
            #expect(eavesdropper.messages.allSatisfy { $0.payload.readableBytes < 2000 }, "nothing of the refused one reached NATS")
            await eavesdropper.close()
            try await local.close()
            try await publisher.close()
            _ = b
        }
    }
}
