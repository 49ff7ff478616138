import Foundation
import LHTTPClient
import LHTTPConfig
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import Testing

/// Issue 16 across two nodes and a real nats-server: presence is the union of the nodes' members, join and
/// leave are computed per user where the subscribers are, and a node that vanishes takes its members with
/// it within three heartbeats (here 200 ms each) plus the leave grace.
@Suite("Presence across the cluster")
struct ClusterPresenceTests {
    static let heartbeatMs = 200
    static let grace = 0.5

    static func configure(_ config: inout GatewayConfig) {
        PresenceTests.configure(&config, grace: Self.grace)
        config.cluster.presenceHeartbeatMs = Self.heartbeatMs
    }

    static func members(_ node: TestServer, _ channel: String) async throws -> (clients: Int, users: [String]) {
        let http = try await node.publisher()
        defer { Task { try? await http.close() } }
        let response = try await http.request(method: .GET, path: "/presence?channel=\(channel)")
        let json = (try? JSONSerialization.jsonObject(with: Data(response.bodyString.utf8))) as? [String: Any] ?? [:]
        return (json["clients"] as? Int ?? -1, PresenceTests.users(json))
    }

    @Test func theRosterIsTheUnionAndJoinLeaveCrossNodes() async throws {
        let nats = try await NATSServerProcess()
        try await TestServer.withNodes(nats, configure: Self.configure) { a, b in
            let alice = try await PresenceTests.user(a, "alice")
            try await a.subscribe(alice, "room-x")
            // b hears of alice before bob comes (else bob, subscribed first, would be told she joined).
            try await eventuallyAsync { try await Self.members(b, "room-x").users == ["alice"] }
            let bob = try await PresenceTests.user(b, "bob")
            try await b.subscribe(bob, "room-x")
            // Node a learns of bob from b's members, and tells alice.
            let join = try await alice.nextMessage(timeout: .seconds(10))
            #expect(join.command == "join" && join.headers["user"] == "bob" && join.headers["channel"] == "room-x")
            #expect(join.bodyString == #"{"name":"Bob"}"#)
            for node in [a, b] {
                let roster = try await Self.members(node, "room-x")
                #expect(roster.clients == 2 && roster.users == ["alice", "bob"])
            }
            let (answer, json) = try await PresenceTests.presence(bob, "room-x")
            #expect(answer.headers["users"] == "2" && PresenceTests.users(json) == ["alice", "bob"])
            // Bob goes: leave after the grace, on the other node.
            try await bob.close()
            let leave = try await alice.nextMessage(timeout: .seconds(10))
            #expect(leave.command == "leave" && leave.headers["user"] == "bob")
            try await alice.close()
            // Everyone gone: zero on both nodes.
            for node in [a, b] {
                try await eventuallyAsync { try await Self.members(node, "room-x") == (0, []) }
            }
        }
    }

    /// One user on two nodes is one member: the first connection joins, the last one leaving leaves.
    @Test func aUserOnTwoNodesJoinsOnceAndLeavesWithTheLastConnection() async throws {
        let nats = try await NATSServerProcess()
        try await TestServer.withNodes(nats, configure: Self.configure) { a, b in
            let alice = try await PresenceTests.user(a, "alice")
            try await a.subscribe(alice, "room-y")
            try await eventuallyAsync { try await Self.members(b, "room-y").users == ["alice"] }
            let bobOnA = try await PresenceTests.user(a, "bob")
            try await a.subscribe(bobOnA, "room-y")
            #expect(try await alice.nextMessage().headers["user"] == "bob")
            try await eventuallyAsync { try await Self.members(b, "room-y").users == ["alice", "bob"] }
            let bobOnB = try await PresenceTests.user(b, "bob")
            try await b.subscribe(bobOnB, "room-y")
            try await eventuallyAsync { try await Self.members(a, "room-y").clients == 3 }
            try await bobOnA.close()
            try await eventuallyAsync { try await Self.members(a, "room-y").clients == 2 }
            // carol comes and goes on a: her join and leave are alice's next events (a leave of bob, still
            // on b, would have come first).
            let carol = try await PresenceTests.user(a, "carol")
            try await a.subscribe(carol, "room-y")
            try await carol.close()
            let events = [try await alice.nextMessage(timeout: .seconds(10)), try await alice.nextMessage(timeout: .seconds(10))]
            #expect(events.map { "\($0.command) \($0.headers["user"] ?? "")" } == ["join carol", "leave carol"])
            try await bobOnB.close()
            let leave = try await alice.nextMessage(timeout: .seconds(10))
            #expect(leave.command == "leave" && leave.headers["user"] == "bob")
            try await alice.close()
        }
    }

    /// Node b drops off NATS without a word (its connections stay open locally): within three heartbeats and
    /// the grace, node a has forgotten b's members and told its subscribers.
    @Test func aVanishedNodesMembersAreGoneWithinTheTimeout() async throws {
        let nats = try await NATSServerProcess()
        try await TestServer.withNodes(nats, configure: Self.configure) { a, b in
            let alice = try await PresenceTests.user(a, "alice")
            try await a.subscribe(alice, "room-z")
            try await eventuallyAsync { try await Self.members(b, "room-z").users == ["alice"] }
            let bob = try await PresenceTests.user(b, "bob")
            try await b.subscribe(bob, "room-z")
            #expect(try await alice.nextMessage(timeout: .seconds(10)).command == "join")
            try await eventuallyAsync { try await Self.members(a, "room-z").users == ["alice", "bob"] }
            await b.cluster?.client.shutdown()
            // Documented bound: 3 × presence_heartbeat_ms + leave_grace_s (+ one heartbeat for the check).
            let bound = Duration.milliseconds(4 * Self.heartbeatMs) + .seconds(Self.grace)
            let leave = try await alice.nextMessage(timeout: bound + .seconds(5))
            #expect(leave.command == "leave" && leave.headers["user"] == "bob")
            #expect(try await Self.members(a, "room-z") == (1, ["alice"]))
            try await bob.close()
            try await alice.close()
        }
    }

    /// Presence on channels that keep history in JetStream (the demo's setup): a recovering subscribe
    /// joins, a close leaves, and neither event is kept in the stream.
    @Test func presenceAndJetStreamHistoryOnTheSameChannel() async throws {
        let nats = try await NATSServerProcess(jetStream: true)
        try await TestServer.with({ config in
            config.auth = AuthConfig(jwt: JWTConfig(hmacSecret: TestToken.secret))
            config.channels = [ChannelOptionsConfig(prefix: "chat-", historySize: 100, presence: true, joinLeave: true, leaveGraceS: Self.grace)]
            config.cluster = ClusterConfig(nats: [nats.url], nodeID: "solo", reconnectMinMs: 20, reconnectMaxMs: 200, history: .jetstream)
        }) { server in
            try await eventually { server.isClustered }
            let alice = try await PresenceTests.user(server, "alice")
            try await alice.send(LHTTPMessage(command: "sub", headers: ["subscribe": "chat-room", "since": "-"]))
            #expect(try await alice.nextMessage().command == "subscribed")
            let bob = try await PresenceTests.user(server, "bob")
            try await bob.send(LHTTPMessage(command: "sub", headers: ["subscribe": "chat-room", "since": "-"]))
            #expect(try await bob.nextMessage().command == "subscribed")
            let join = try await alice.nextMessage()
            #expect(join.command == "join" && join.headers["user"] == "bob")
            try await bob.close()
            let leave = try await alice.nextMessage(timeout: .seconds(10))
            #expect(leave.command == "leave" && leave.headers["user"] == "bob")
            let http = try await server.publisher()
            let history = try await http.request(method: .GET, path: "/history?channel=chat-room")
            #expect(history.status == 200 && history.bodyString.contains("\"messages\":[]"), "join and leave are not history: \(history.bodyString)")
            try await http.close()
            try await alice.close()
        }
    }

    /// With `cluster.secret`, presence from a stranger on the subject (unsigned, or signed with another
    /// secret) is dropped and counted: it can neither add members nor take them away.
    @Test func forgedPresenceIsRefusedWithASecret() async throws {
        let nats = try await NATSServerProcess()
        try await TestServer.withNodes(nats, configure: { config in
            Self.configure(&config)
            config.cluster.secret = "cluster-secret-of-the-nodes-0123"
        }) { a, b in
            let alice = try await PresenceTests.user(a, "alice")
            try await a.subscribe(alice, "room-t")
            try await eventuallyAsync { try await Self.members(b, "room-t").users == ["alice"] }
            let bob = try await PresenceTests.user(b, "bob")
            try await b.subscribe(bob, "room-t")
            #expect(try await alice.nextMessage(timeout: .seconds(10)).headers["user"] == "bob", "signed presence works")
            let stranger = try await ClusterTrustTests.Stranger(nats)
            let forged = #"{"kind":"state","node":"evil#1","seq":1,"ts":0,"channels":{"room-t":{"members":[{"conn":"1","user":"mallory","info":null}],"clients":1,"users":1}}}"#
            try stranger.client.publish(ByteBuffer(string: "- " + forged), to: "lhttp.p.all")
            try stranger.client.publish(ByteBuffer(string: String(repeating: "ab", count: 32) + " " + forged), to: "lhttp.p.all")
            try await stranger.client.flush()
            try await eventually { (a.cluster?.rejections(.unsigned) ?? 0) >= 1 && (a.cluster?.rejections(.badSignature) ?? 0) >= 1 }
            #expect(try await Self.members(a, "room-t").users == ["alice", "bob"])
            await stranger.close()
            try await bob.close()
            try await alice.close()
        }
    }
}
