import Foundation
import LHTTPClient
import LHTTPConfig
import LHTTPGateway
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import Testing

/// History on one node over real sockets: `POST /publish` answers with positions, a client that went away
/// comes back with `since:` and gets exactly what it missed, a publication racing the recovery lands once.
@Suite("History over real sockets")
struct HistoryEndToEndTests {
    static func withHistory(_ configure: @escaping (inout GatewayConfig) -> Void = { _ in }) -> (inout GatewayConfig) -> Void {
        { config in
            config.channels = [ChannelOptionsConfig(prefix: "chat-", historySize: 100)]
            configure(&config)
        }
    }

    /// The position in a `POST /publish` answer's `seq`.
    func position(_ response: HTTPResponse) throws -> HistoryPosition {
        struct Answer: Decodable { var seq: [String?] }
        let answer = try JSONDecoder().decode(Answer.self, from: Data(response.bodyString.utf8))
        return try #require(answer.seq.first.flatMap { $0 }.flatMap { HistoryPosition(parsing: Substring($0)) })
    }

    @Test func aClientBackWithItsPositionGetsExactlyWhatItMissedInOrder() async throws {
        try await TestServer.with(Self.withHistory()) { server in
            let http = try await server.publisher()
            let client = try await server.client()
            try await server.subscribe(client, "chat-room")
            let first = try await http.request(path: "/publish?channel=chat-room", body: ByteBuffer(string: "seen"))
            #expect(first.status == 200)
            let seen = try position(first)
            let delivered = try await client.nextMessage()
            #expect(delivered.bodyString == "seen")
            #expect(delivered.headers["seq"] == seen.description)
            #expect(delivered.headers["prev"] == "0")
            try await client.close()

            var missed: [HistoryPosition] = []
            for index in 0..<5 {
                missed.append(try position(try await http.request(path: "/publish?channel=chat-room", body: ByteBuffer(string: "m\(index)"))))
            }
            #expect(missed.map(\.offset) == [2, 3, 4, 5, 6])
            #expect(Set(missed.map(\.epoch)) == [seen.epoch])

            let back = try await server.client()
            try await back.send(LHTTPMessage(command: "sub", headers: ["subscribe": "chat-room", "since": seen.description]))
            for index in 0..<5 {
                let message = try await back.nextMessage()
                #expect(message.bodyString == "m\(index)")
                #expect(message.headers["seq"] == missed[index].description)
            }
            let answer = try await back.nextMessage()
            #expect(answer.command == "subscribed")
            #expect(answer.headers["stream"] == "\(seen.epoch):6")
            #expect(answer.headers["recovered"] == "true")
            #expect(answer.headers["missed"] == "5")
            // Live again, and nothing doubled.
            _ = try await http.request(path: "/publish?channel=chat-room", body: ByteBuffer(string: "live"))
            #expect(try await back.nextMessage().bodyString == "live")
            try await server.roundTrip(back)
            try await back.close()
            try await http.close()
        }
    }

    @Test func aPublicationRacingTheRecoveryIsDeliveredOnceAfterTheReplayedOnes() async throws {
        try await TestServer.with(Self.withHistory()) { server in
            let http = try await server.publisher()
            let total = 60
            let epoch = try position(try await http.request(path: "/publish?channel=chat-race", body: ByteBuffer(string: "0"))).epoch
            // Publications keep coming on their own connection while clients recover from offset 1.
            let publishing = Task {
                let racer = try await server.publisher()
                for index in 1..<total {
                    _ = try await racer.request(path: "/publish?channel=chat-race", body: ByteBuffer(string: "\(index)"))
                }
                try await racer.close()
            }
            var clients: [LHTTPWebSocketClient] = []
            for _ in 0..<4 {
                let client = try await server.client()
                try await client.send(LHTTPMessage(command: "sub", headers: ["subscribe": "chat-race", "since": "\(epoch):1"]))
                clients.append(client)
            }
            try await publishing.value
            for client in clients {
                // Offsets 2...total, each once, in order; the `subscribed` answer somewhere in between.
                var offsets: [UInt64] = []
                var answers = 0
                while offsets.count < total - 1 || answers == 0 {
                    let message = try await client.nextMessage()
                    if message.command == "subscribed" {
                        answers += 1
                        #expect(message.headers["recovered"] == "true")
                        continue
                    }
                    let seq = try #require(message.headers["seq"].flatMap { HistoryPosition(parsing: Substring($0)) })
                    #expect(seq.epoch == epoch)
                    #expect(message.bodyString == "\(seq.offset - 1)")
                    offsets.append(seq.offset)
                }
                #expect(offsets == Array(2...UInt64(total)))
                #expect(answers == 1)
                try await server.roundTrip(client)
                try await client.close()
            }
            try await http.close()
        }
    }

    struct HistoryJSON: Decodable {
        struct Message: Decodable {
            var seq: String
            var prev: UInt64
            var command: String
            var headers: [String: String]
            var body: String
        }
        var channel: String
        var stream: String
        var recovered: Bool
        var messages: [Message]
    }

    @Test func getHistoryGivesTheNewestOrWhatFollowsAPositionBehindThePublishToken() async throws {
        try await TestServer.with(Self.withHistory { $0.publish.token = "s3cret" }) { server in
            let http = try await server.publisher()
            let auth = [("Authorization", "Bearer s3cret")]
            var positions: [HistoryPosition] = []
            for index in 0..<5 {
                let response = try await http.request(path: "/publish?channel=chat-log&command=say", headers: auth, body: ByteBuffer(string: "line \(index) \"quoted\""))
                positions.append(try position(response))
            }
            let newest = try await http.request(method: .GET, path: "/history?channel=chat-log&limit=2", headers: auth)
            #expect(newest.status == 200)
            let answer = try JSONDecoder().decode(HistoryJSON.self, from: Data(newest.bodyString.utf8))
            #expect(answer.channel == "chat-log")
            #expect(answer.stream == positions[4].description)
            #expect(answer.messages.map(\.seq) == [positions[3].description, positions[4].description])
            #expect(answer.messages.map(\.body) == ["line 3 \"quoted\"", "line 4 \"quoted\""])
            #expect(answer.messages.map(\.prev) == [3, 4])
            #expect(answer.messages.first?.command == "say")
            #expect(answer.messages.first?.headers["publish"] == "chat-log")
            #expect(answer.messages.first?.headers["seq"] == positions[3].description)

            let after = try await http.request(method: .GET, path: "/history?channel=chat-log&since=\(positions[0])&limit=2", headers: auth)
            let following = try JSONDecoder().decode(HistoryJSON.self, from: Data(after.bodyString.utf8))
            #expect(following.messages.map(\.seq) == [positions[1].description, positions[2].description])
            #expect(following.recovered)

            // The token, the channel's history, and the query are checked.
            #expect(try await http.request(method: .GET, path: "/history?channel=chat-log").status == 401)
            #expect(try await http.request(method: .GET, path: "/history?channel=plain", headers: auth).status == 404)
            for bad in ["/history", "/history?channel=chat-log&since=nope", "/history?channel=chat-log&limit=0", "/history?channel=chat-log&limit=x"] {
                #expect(try await http.request(method: .GET, path: bad, headers: auth).status == 400, "\(bad)")
            }
            try await http.close()
        }
    }

    @Test func aRetriedPublishWithTheSameIdempotencyKeyPublishesOnceAndGetsTheFirstAnswer() async throws {
        try await TestServer.with(Self.withHistory()) { server in
            let http = try await server.publisher()
            let client = try await server.client()
            try await server.subscribe(client, "chat-cron")
            let first = try await http.request(path: "/publish?channel=chat-cron", headers: [("Idempotency-Key", "job-42")], body: ByteBuffer(string: "once"))
            let retry = try await http.request(path: "/publish?channel=chat-cron", headers: [("idempotency-key", "job-42")], body: ByteBuffer(string: "once"))
            #expect(first.status == 200 && retry.status == 200)
            #expect(retry.bodyString == first.bodyString, "the same answer, the same seq")
            #expect(try position(retry) == position(first))
            #expect(retry.headers.first(name: "idempotent-replayed") == "true")
            #expect(first.headers.first(name: "idempotent-replayed") == nil)
            let other = try await http.request(path: "/publish?channel=chat-cron", headers: [("Idempotency-Key", "job-43")], body: ByteBuffer(string: "twice"))
            #expect(try position(other).offset == 2)
            #expect(try await client.nextMessage().bodyString == "once")
            #expect(try await client.nextMessage().bodyString == "twice")
            try await server.roundTrip(client)  // nothing doubled
            let long = String(repeating: "k", count: 257)
            #expect(try await http.request(path: "/publish?channel=chat-cron", headers: [("Idempotency-Key", long)], body: ByteBuffer(string: "x")).status == 400)
            try await client.close()
            try await http.close()
        }
    }

    @Test func withoutHistoryConfiguredNothingChangesOnTheWire() async throws {
        try await TestServer.with { server in
            let http = try await server.publisher()
            let client = try await server.client()
            try await server.subscribe(client, "chat-room")
            let response = try await http.request(path: "/publish?channel=chat-room", body: ByteBuffer(string: "plain"))
            #expect(response.bodyString.trimmingCharacters(in: .whitespacesAndNewlines) == #"{"channels":["chat-room"],"deliveries":1}"#)
            let message = try await client.nextMessage()
            #expect(message.headers["seq"] == nil && message.headers["prev"] == nil)
            try await client.close()
            try await http.close()
        }
    }

    /// In a cluster history is JetStream's (the default) or each node's own (`memory`).
    @Test func historyInAClusterIsJetStreamsOrEachNodesOwn() throws {
        var config = GatewayConfig()
        config.history.size = 10
        config.cluster.nats = ["nats://127.0.0.1:4222"]
        #expect(config.validate().isEmpty)
        config.cluster.history = .memory
        #expect(config.validate().isEmpty)
        config.cluster.nats = []
        #expect(config.validate().isEmpty)
        config.cluster.jetstream = .init(stream: "no.dots", replicas: 9, storage: "disk", timeoutMs: 0)
        #expect(config.validate().map(\.keyPath) == ["cluster.jetstream.stream", "cluster.jetstream.replicas", "cluster.jetstream.storage", "cluster.jetstream.timeout_ms"])
    }
}
