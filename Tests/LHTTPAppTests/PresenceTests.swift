import Foundation
import LHTTPClient
import LHTTPConfig
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import Testing

/// Issue 16 on one node, over real sockets: who is on a channel (the `presence:` header, `GET /presence`),
/// and `join` / `leave` per user with the grace period.
@Suite("Presence on one node")
struct PresenceTests {
    static func configure(_ config: inout GatewayConfig, grace: Double = 1) {
        config.auth = AuthConfig(jwt: JWTConfig(hmacSecret: TestToken.secret))
        config.channels = [
            ChannelOptionsConfig(prefix: "room-", presence: true, joinLeave: true, leaveGraceS: grace),
            ChannelOptionsConfig(prefix: "quiet-", presence: true),
            ChannelOptionsConfig(prefix: "private-", subscribe: .token, presence: true),
        ]
    }

    static func user(_ server: TestServer, _ name: String, channels: [String] = []) async throws -> LHTTPWebSocketClient {
        let claims = TestToken.claims(sub: name, extra: ["info": ["name": name.capitalized], "channels": channels])
        return try await server.client(path: TestToken.query(TestToken.hmac(claims)))
    }

    /// The presence answer's JSON body.
    static func presence(_ client: LHTTPWebSocketClient, _ channel: String) async throws -> (message: LHTTPMessage, json: [String: Any]) {
        try await client.send(LHTTPMessage(command: "presence", headers: ["presence": channel]))
        let message = try await client.nextMessage()
        let json = (try? JSONSerialization.jsonObject(with: Data(message.bodyString.utf8))) as? [String: Any] ?? [:]
        return (message, json)
    }

    static func users(_ json: [String: Any]) -> [String] {
        ((json["members"] as? [[String: Any]]) ?? []).map { $0["user"] as? String ?? "?" }.sorted()
    }

    @Test func presenceListsTheMembersWithTheirInfo() async throws {
        try await TestServer.with({ config in Self.configure(&config) }) { server in
            let alice = try await Self.user(server, "alice")
            let bob = try await Self.user(server, "bob")
            let guest = try await server.client()
            for client in [alice, bob, guest] { try await server.subscribe(client, "quiet-lobby") }
            let (answer, json) = try await Self.presence(guest, "quiet-lobby")
            #expect(answer.command == "presence")
            #expect(answer.headers["channel"] == "quiet-lobby")
            #expect(answer.headers["clients"] == "3")
            #expect(answer.headers["users"] == "2", "an anonymous connection is a client, not a user")
            #expect(Self.users(json) == ["", "alice", "bob"])
            let members = json["members"] as? [[String: Any]] ?? []
            #expect(members.contains { ($0["info"] as? [String: Any])?["name"] as? String == "Alice" })
            #expect(members.allSatisfy { !($0["conn"] as? String ?? "").isEmpty })

            // The backend asks over HTTP (with the publish token when set), and for counts only.
            let http = try await server.publisher()
            let full = try await http.request(method: .GET, path: "/presence?channel=quiet-lobby")
            #expect(full.status == 200)
            let body = (try? JSONSerialization.jsonObject(with: Data(full.bodyString.utf8))) as? [String: Any] ?? [:]
            #expect(body["clients"] as? Int == 3 && body["users"] as? Int == 2 && Self.users(body) == ["", "alice", "bob"])
            let stats = try await http.request(method: .GET, path: "/presence?channel=quiet-lobby&stats=1")
            #expect(stats.bodyString.trimmingCharacters(in: .whitespacesAndNewlines) == #"{"channel":"quiet-lobby","clients":3,"users":2}"#)
            // Nobody there: zero counts, no members. A channel without presence: 404 both ways.
            #expect(try await http.request(method: .GET, path: "/presence?channel=quiet-empty").bodyString.trimmingCharacters(in: .whitespacesAndNewlines)
                == #"{"channel":"quiet-empty","clients":0,"users":0,"members":[]}"#)
            #expect(try await http.request(method: .GET, path: "/presence?channel=plain").status == 404)
            #expect(try await http.request(method: .GET, path: "/presence").status == 400)
            let (refused, _) = try await Self.presence(alice, "plain")
            #expect(refused.command == "error" && refused.headers["status"] == "404" && refused.headers["channel"] == "plain")
            try await http.close()
            for client in [alice, bob, guest] { try await client.close() }
        }
    }

    /// A private channel's roster is for those who may join it.
    @Test func aPrivateRosterNeedsTheGrant() async throws {
        try await TestServer.with({ config in Self.configure(&config) }) { server in
            let member = try await Self.user(server, "carol", channels: ["private-club"])
            try await server.roundTrip(member)
            let (answer, json) = try await Self.presence(member, "private-club")
            #expect(answer.headers["users"] == "1" && Self.users(json) == ["carol"], "subscribed at connect by the claim")
            let outsider = try await Self.user(server, "mallory")
            let (refused, _) = try await Self.presence(outsider, "private-club")
            #expect(refused.command == "error" && refused.headers["status"] == "403")
            try await outsider.close()
            try await member.close()
        }
    }

    /// Two tabs of bob: the first joins, the second does not; closing one is no leave, closing both is,
    /// after the grace; a reload within the grace is neither. The roster changes at once.
    @Test func joinAndLeaveArePerUserWithAGrace() async throws {
        try await TestServer.with({ config in Self.configure(&config, grace: 1) }) { server in
            let alice = try await Self.user(server, "alice")
            try await server.subscribe(alice, "room-1")
            let tab1 = try await Self.user(server, "bob")
            try await server.subscribe(tab1, "room-1")
            let join = try await alice.nextMessage()
            #expect(join.command == "join")
            #expect(join.headers["channel"] == "room-1" && join.headers["user"] == "bob" && join.headers["conn"]?.isEmpty == false)
            #expect(join.bodyString == #"{"name":"Bob"}"#)
            let tab2 = try await Self.user(server, "bob")
            try await server.subscribe(tab2, "room-1")
            // bob's own join is not sent to the tab that joined; the second tab is no join for anyone.
            let (_, two) = try await Self.presence(alice, "room-1")
            #expect(Self.users(two) == ["alice", "bob", "bob"])
            try await tab1.close()
            try await server.eventually { server.gateway.connectionCount == 2 }
            // A reload: tab2 goes, a new tab comes within the grace.
            try await tab2.close()
            let tab3 = try await Self.user(server, "bob")
            try await server.subscribe(tab3, "room-1")
            // carol comes and goes: her join and (after the grace) leave are the next events alice gets, so
            // nothing was sent for bob's reload.
            let carol = try await Self.user(server, "carol")
            try await server.subscribe(carol, "room-1")
            try await carol.close()
            let events = [try await alice.nextMessage(), try await alice.nextMessage(timeout: .seconds(10))]
            #expect(events.map { "\($0.command) \($0.headers["user"] ?? "")" } == ["join carol", "leave carol"])
            // bob really leaves: leave after the grace; then nobody is left but alice.
            try await tab3.close()
            let leave = try await alice.nextMessage(timeout: .seconds(10))
            #expect(leave.command == "leave" && leave.headers["user"] == "bob")
            let (answer, last) = try await Self.presence(alice, "room-1")
            #expect(answer.headers["users"] == "1" && Self.users(last) == ["alice"])
            try await alice.close()
            // Everyone gone: counts back to zero.
            let http = try await server.publisher()
            try await server.eventually { server.gateway.connectionCount == 0 }
            try await eventuallyAsync {
                try await http.request(method: .GET, path: "/presence?channel=room-1").bodyString.trimmingCharacters(in: .whitespacesAndNewlines) == #"{"channel":"room-1","clients":0,"users":0,"members":[]}"#
            }
            try await http.close()
        }
    }

    /// The roster drops a user at once; only the `leave` event waits for the grace.
    @Test func theRosterDoesNotWaitForTheGrace() async throws {
        try await TestServer.with({ config in Self.configure(&config, grace: 60) }) { server in
            let alice = try await Self.user(server, "alice")
            try await server.subscribe(alice, "room-3")
            let bob = try await Self.user(server, "bob")
            try await server.subscribe(bob, "room-3")
            #expect(try await alice.nextMessage().command == "join")
            try await bob.send(LHTTPMessage(command: "unsub", headers: ["unsubscribe": "room-3"]))
            try await server.roundTrip(bob)
            let (answer, json) = try await Self.presence(alice, "room-3")
            #expect(answer.headers["users"] == "1" && Self.users(json) == ["alice"])
            // No leave yet: the next thing alice gets is the app's message.
            let http = try await server.publisher()
            #expect(try await http.request(path: "/publish?channel=room-3", body: ByteBuffer(string: "marker")).status == 200)
            #expect(try await alice.nextMessage().bodyString == "marker")
            // Back within the grace: no join either.
            try await server.subscribe(bob, "room-3")
            #expect(try await http.request(path: "/publish?channel=room-3", body: ByteBuffer(string: "marker2")).status == 200)
            #expect(try await alice.nextMessage().bodyString == "marker2")
            try await http.close()
            try await bob.close()
            try await alice.close()
        }
    }

    /// Unsubscribing is leaving; `join_leave` off sends nothing (the roster still counts).
    @Test func unsubscribeLeavesAndQuietChannelsSendNoEvents() async throws {
        try await TestServer.with({ config in Self.configure(&config, grace: 0) }) { server in
            let alice = try await Self.user(server, "alice")
            try await server.subscribe(alice, "room-2 quiet-2")
            let bob = try await Self.user(server, "bob")
            try await server.subscribe(bob, "quiet-2 room-2")
            #expect(try await alice.nextMessage().headers["channel"] == "room-2", "one join: quiet-2 has no events")
            try await bob.send(LHTTPMessage(command: "unsub", headers: ["unsubscribe": "room-2 quiet-2"]))
            let leave = try await alice.nextMessage()
            #expect(leave.command == "leave" && leave.headers["channel"] == "room-2" && leave.headers["user"] == "bob")
            let (answer, _) = try await Self.presence(alice, "quiet-2")
            #expect(answer.headers["clients"] == "1")
            try await bob.close()
            try await alice.close()
        }
    }

    /// The `presence` webhook: occupied, each user added once, removed with its last connection, vacated.
    @Test func thePresenceWebhookHearsOfChannelsAndMembers() async throws {
        let backend = try await TestBackend.start { _ in .init(status: 204) }
        defer { Task { await backend.stop() } }
        try await TestServer.with({ config in
            Self.configure(&config, grace: 0)
            config.hooks.presence = "http://127.0.0.1:\(backend.port)/presence"
        }) { server in
            let alice = try await Self.user(server, "alice")
            try await server.subscribe(alice, "quiet-hook")
            let bob1 = try await Self.user(server, "bob")
            let bob2 = try await Self.user(server, "bob")
            try await server.subscribe(bob1, "quiet-hook")
            try await server.subscribe(bob2, "quiet-hook")
            try await bob1.close()
            try await bob2.close()
            try await alice.close()
            let requests = try await backend.waitForRequests(6)
            let events = requests.map { (try? JSONSerialization.jsonObject(with: Data($0.body.utf8))) as? [String: Any] ?? [:] }
            let seen = events.map { "\($0["action"] as? String ?? "?") \((($0["connection"] as? [String: Any])?["user"] as? String) ?? "")" }
            #expect(seen.sorted() == ["channel_occupied alice", "channel_vacated alice", "member_added alice", "member_added bob", "member_removed alice", "member_removed bob"].sorted())
            #expect(events.allSatisfy { $0["event"] as? String == "presence" && $0["channel"] as? String == "quiet-hook" })
            #expect(requests.allSatisfy { $0.header("X-LHTTP-Event") == "presence" })
            try await server.eventually { server.gateway.connectionCount == 0 }
            #expect(backend.requests.count == 6, "no more than once each")
        }
    }
}

/// Polls an async `condition` every 20 ms for up to `timeout`.
func eventuallyAsync(timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TestFailure("condition not met within \(timeout)")
}