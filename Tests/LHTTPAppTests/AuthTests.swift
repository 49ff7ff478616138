import Crypto
import Foundation
import LHTTPClient
import LHTTPConfig
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import Testing

/// Issue 16: JWT connection tokens over real sockets — signed in the test (HS256/384, ES256 by hand with
/// swift-crypto, not by the library lhttpd verifies with), refused on the upgrade with 401, refreshed on the
/// connection, and the `channels` claim and the channel permissions it feeds.
@Suite("JWT connection tokens and channel permissions")
struct AuthTests {
    static func configure(_ config: inout GatewayConfig, required: Bool = false, _ jwt: (inout JWTConfig) -> Void = { _ in }) {
        var settings = JWTConfig(hmacSecret: TestToken.secret)
        jwt(&settings)
        config.auth = AuthConfig(required: required, jwt: settings)
    }

    static func refusal(_ server: TestServer, _ token: String) async throws -> Int? {
        do {
            let client = try await server.client(path: TestToken.query(token))
            try await client.close()
            return nil
        } catch LHTTPClientError.upgradeFailed(let status) {
            return status
        }
    }

    @Test func aGoodTokenConnectsAndItsExactChannelsAreSubscribed() async throws {
        try await TestServer.with({ config in Self.configure(&config) }) { server in
            let token = TestToken.hmac(TestToken.claims(sub: "alice", extra: ["channels": ["news", "private-*"]]))
            let client = try await server.client(path: TestToken.query(token))
            try await server.roundTrip(client)
            try await server.eventually { server.gateway.hub.subscriberCount(of: "news") == 1 }
            #expect(server.gateway.hub.subscriberCount(of: "private-*") == 0, "a prefix is a grant, not a channel")
            let http = try await server.publisher()
            #expect(try await http.request(path: "/publish?channel=news", body: ByteBuffer(string: "hello")).status == 200)
            #expect(try await client.nextMessage().bodyString == "hello")
            try await http.close()
            try await client.close()
        }
    }

    @Test func badTokensAreRefusedWith401() async throws {
        try await TestServer.with({ config in
            Self.configure(&config) { jwt in
                jwt.audience = "chat"
                jwt.issuer = "app"
                jwt.leewayS = 0
            }
        }) { server in
            try await Self.checkBadTokens(server)
        }
    }

    static func checkBadTokens(_ server: TestServer) async throws {
        let good = TestToken.claims(sub: "alice", extra: ["aud": "chat", "iss": "app"])
        // The legitimate case first: the checks are what refuses the others.
        #expect(try await Self.refusal(server, TestToken.hmac(good)) == nil)
        #expect(try await Self.refusal(server, TestToken.hmac(good, bits: 384)) == nil)
        #expect(try await Self.refusal(server, TestToken.hmac(good, secret: TestToken.secret + "x")) == 401, "bad signature")
        var expired = good
        expired["exp"] = Int(Date().timeIntervalSince1970) - 5
        #expect(try await Self.refusal(server, TestToken.hmac(expired)) == 401, "expired")
        var wrongAudience = good
        wrongAudience["aud"] = ["other"]
        #expect(try await Self.refusal(server, TestToken.hmac(wrongAudience)) == 401, "wrong aud")
        var wrongIssuer = good
        wrongIssuer["iss"] = "evil"
        #expect(try await Self.refusal(server, TestToken.hmac(wrongIssuer)) == 401, "wrong iss")
        #expect(try await Self.refusal(server, TestToken.unsigned(good)) == 401, "alg none")
        var noExp = good
        noExp["exp"] = nil
        #expect(try await Self.refusal(server, TestToken.hmac(noExp)) == 401, "exp is required by default")
        #expect(try await Self.refusal(server, "not.a.jwt") == 401)
        #expect(try await Self.refusal(server, TestToken.hmac(TestToken.claims(sub: "bad user"))) == 401, "a sub with a space")
        // An ES256 token when only an HMAC secret is configured: its algorithm has no key here.
        #expect(try await Self.refusal(server, TestToken.es256(good, key: P256.Signing.PrivateKey())) == 401)
        #expect(server.gateway.connectionCount == 0)
    }

    /// The 401 of a refused token says how to authenticate (RFC 7235 4.1, RFC 6750 3.1).
    @Test func aRefusedUpgradeSaysBearerInvalidToken() async throws {
        try await TestServer.with({ config in Self.configure(&config) }) { server in
            let http = try await server.publisher()
            let response = try await http.request(
                method: .GET, path: "/?token=forged",
                headers: [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
            )
            #expect(response.status == 401)
            #expect(response.headers.first(name: "www-authenticate") == #"Bearer error="invalid_token""#)
            try await http.close()
        }
        // No token at all where one is required: a challenge without an error code (RFC 6750 3.1).
        try await TestServer.with({ config in Self.configure(&config, required: true) }) { server in
            let http = try await server.publisher()
            let response = try await http.request(
                method: .GET, path: "/",
                headers: [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
            )
            #expect(response.status == 401)
            #expect(response.headers.first(name: "www-authenticate") == "Bearer")
            try await http.close()
        }
    }

    @Test func es256TokensVerifyWithThePublicKeyOnly() async throws {
        let key = P256.Signing.PrivateKey()
        let file = try TestToken.publicKeyFile(key)
        defer { try? FileManager.default.removeItem(atPath: file) }
        try await TestServer.with({ config in
            config.auth = AuthConfig(required: true, jwt: JWTConfig(publicKeyFiles: [file]))
        }) { server in
            let claims = TestToken.claims(sub: "bob")
            let accepted = try await Self.refusal(server, TestToken.es256(claims, key: key))
            #expect(accepted == nil)
            #expect(try await Self.refusal(server, TestToken.es256(claims, key: P256.Signing.PrivateKey())) == 401, "another key")
            // The public key is no HMAC secret: an HS256 token "signed" with it is refused.
            #expect(try await Self.refusal(server, TestToken.hmac(claims, secret: key.publicKey.pemRepresentation)) == 401)
            #expect(try await Self.refusal(server, TestToken.unsigned(claims)) == 401)
            await #expect(throws: LHTTPClientError.upgradeFailed(status: 401), "required: no token, no websocket") {
                _ = try await server.client()
            }
        }
    }

    @Test func aMissingTokenIsAnonymousUnlessRequired() async throws {
        try await TestServer.with({ config in Self.configure(&config) }) { server in
            let anonymous = try await server.client()
            try await server.roundTrip(anonymous)
            // A bearer header carries a token as well as the query.
            let token = TestToken.hmac(TestToken.claims(sub: "carol", extra: ["channels": ["inbox"]]))
            let bearer = try await LHTTPWebSocketClient.connect(host: "127.0.0.1", port: server.port, path: "/", headers: [("Authorization", "Bearer \(token)")])
            try await server.eventually { server.gateway.hub.subscriberCount(of: "inbox") == 1 }
            try await bearer.close()
            try await anonymous.close()
        }
        try await TestServer.with({ config in Self.configure(&config, required: true) }) { server in
            await #expect(throws: LHTTPClientError.upgradeFailed(status: 401)) { _ = try await server.client() }
        }
    }

    /// Refresh after expiry: the server asks (`refresh`), the client answers with a new token in time and
    /// stays; a twin connection that does not answer is closed with 4001 after the grace.
    @Test func anExpiredConnectionIsAskedToRefreshAndClosedWith4001WithoutIt() async throws {
        try await TestServer.with({ config in
            Self.configure(&config) { jwt in
                // The leeway keeps the short token acceptable for the upgrade on a slow machine; the refresh
                // is asked for at exp all the same.
                jwt.leewayS = 30
                jwt.refreshGraceS = 1
            }
        }) { server in
            let short = TestToken.hmac(TestToken.claims(sub: "dave", expiresIn: 2))
            let refreshing = try await server.client(path: TestToken.query(short))
            let silent = try await server.client(path: TestToken.query(short))
            let ask = try await refreshing.nextMessage(timeout: .seconds(10))
            #expect(ask.command == "refresh")
            #expect(ask.headers["grace"] == "1")
            let fresh = TestToken.hmac(TestToken.claims(sub: "dave", expiresIn: 600))
            try await refreshing.send(LHTTPMessage(command: "refresh", headers: ["token": fresh]))
            let answer = try await refreshing.nextMessage()
            #expect(answer.command == "refreshed")
            #expect(Double(answer.headers["exp"] ?? "") ?? 0 > Date().timeIntervalSince1970 + 500)
            // The other one: asked too; it answers with a bad token, which does not buy it a new grace: it is
            // refused (401) and closed once the first grace is over, never asked again.
            #expect(try await silent.nextMessage(timeout: .seconds(10)).command == "refresh")
            try await silent.send(LHTTPMessage(command: "refresh", headers: ["token": TestToken.hmac(TestToken.claims(sub: "dave"), secret: "x" + TestToken.secret)]))
            let (messages, closed) = try await RateLimitAndChannelOptionsTests.events(silent, upTo: 10)
            #expect(messages.map { "\($0.command) \($0.headers["status"] ?? "")" } == ["error 401"])
            #expect(closed == 4001)
            // Both graces ended together: the refreshed one is still served.
            try await server.roundTrip(refreshing)
            try await refreshing.close()
        }
    }

    @Test func aRefreshBeforeExpiryExtendsAndABadOneIsRefused() async throws {
        try await TestServer.with({ config in Self.configure(&config) }) { server in
            let client = try await server.client(path: TestToken.query(TestToken.hmac(TestToken.claims(sub: "erin", expiresIn: 300))))
            try await client.send(LHTTPMessage(command: "refresh", headers: ["token": TestToken.hmac(TestToken.claims(sub: "erin", expiresIn: 900))]))
            #expect(try await client.nextMessage().command == "refreshed")
            try await client.send(LHTTPMessage(command: "refresh", headers: ["token": TestToken.hmac(TestToken.claims(sub: "mallory"))]))
            let other = try await client.nextMessage()
            #expect(other.command == "error" && other.headers["status"] == "403", "a connection keeps its user")
            try await client.send(LHTTPMessage(command: "refresh", headers: ["token": TestToken.hmac(TestToken.claims(sub: "erin"), secret: "x" + TestToken.secret)]))
            let bad = try await client.nextMessage()
            #expect(bad.command == "error" && bad.headers["status"] == "401")
            try await client.send(LHTTPMessage(command: "refresh"))
            #expect(try await client.nextMessage().headers["status"] == "400")
            try await server.roundTrip(client)
            try await client.close()
        }
    }

    static func permissions(_ config: inout GatewayConfig) {
        Self.configure(&config)
        config.channels = [
            ChannelOptionsConfig(prefix: "private-", publish: .token, subscribe: .token),
            ChannelOptionsConfig(prefix: "feed-", publish: .none),
            ChannelOptionsConfig(prefix: "user#", userLimited: true),
        ]
    }

    /// `subscribe: token` / `publish: token`: granted by the claim (a prefix pattern grants a family); a
    /// refused channel gets 403 naming it while the rest of the list applies.
    @Test func tokenChannelsNeedTheClaim() async throws {
        try await TestServer.with({ config in Self.permissions(&config) }) { server in
            let alice = try await server.client(path: TestToken.query(TestToken.hmac(TestToken.claims(sub: "alice", extra: ["channels": ["private-a*"]]))))
            try await alice.send(LHTTPMessage(command: "sub", headers: ["subscribe": "private-a1 private-b1 open"]))
            let refused = try await alice.nextMessage()
            #expect(refused.command == "error" && refused.headers["status"] == "403")
            #expect(refused.headers["channels"] == "private-b1")
            try await server.roundTrip(alice)
            #expect(server.gateway.hub.subscriberCount(of: "private-a1") == 1)
            #expect(server.gateway.hub.subscriberCount(of: "open") == 1)
            #expect(server.gateway.hub.subscriberCount(of: "private-b1") == 0)
            // Publishing: granted to private-a1, not to private-b1 nor (publish: none) to feed-x.
            try await alice.send(LHTTPMessage(command: "say", headers: ["publish": "private-a1 private-b1 feed-x"], body: "hi"))
            var saw: [String] = []
            for _ in 0..<2 {
                let message = try await alice.nextMessage()
                saw.append(message.command == "error" ? "403:\(message.headers["channels"] ?? "")" : message.bodyString)
            }
            #expect(saw == ["403:private-b1 feed-x", "hi"])
            // An anonymous client gets none of it.
            let anonymous = try await server.client()
            try await anonymous.send(LHTTPMessage(command: "sub", headers: ["subscribe": "private-a1"]))
            #expect(try await anonymous.nextMessage().headers["status"] == "403")
            try await anonymous.close()
            try await alice.close()
        }
    }

    @Test func userLimitedChannelsAreTheirUsersOnly() async throws {
        try await TestServer.with({ config in Self.permissions(&config) }) { server in
            let bob = try await server.client(path: TestToken.query(TestToken.hmac(TestToken.claims(sub: "bob"))))
            try await server.subscribe(bob, "user#bob")
            #expect(server.gateway.hub.subscriberCount(of: "user#bob") == 1)
            try await bob.send(LHTTPMessage(command: "sub", headers: ["subscribe": "user#alice user#bo"]))
            let refused = try await bob.nextMessage()
            #expect(refused.headers["status"] == "403" && refused.headers["channels"] == "user#alice user#bo")
            // The app reaches bob's channel with one POST, no webhook.
            let http = try await server.publisher()
            #expect(try await http.request(path: "/publish?channel=user%23bob", body: ByteBuffer(string: "for bob")).status == 200)
            #expect(try await bob.nextMessage().bodyString == "for bob")
            let anonymous = try await server.client()
            try await anonymous.send(LHTTPMessage(command: "sub", headers: ["subscribe": "user#"]))
            #expect(try await anonymous.nextMessage().headers["status"] == "403")
            try await anonymous.close()
            try await http.close()
            try await bob.close()
        }
    }

    /// With a token and a connect hook, the hook sees the verified claims; every later webhook and the
    /// upstream request carry the user.
    @Test func theUserReachesTheWebhooksAndTheUpstream() async throws {
        let backend = try await TestBackend.start { request in
            if request.uri.hasPrefix("/connect") { return .init(status: 204) }
            if request.uri.hasPrefix("/chat") { return .init(status: 204) }
            return .init(status: 200)
        }
        defer { Task { await backend.stop() } }
        try await TestServer.with({ config in
            Self.configure(&config)
            let base = "http://127.0.0.1:\(backend.port)"
            config.hooks = HooksConfig(connect: "\(base)/connect")
            config.routes = ["chat": RouteConfig(url: "\(base)/chat")]
            config.upstream.allow = ["\(base)/"]
        }) { server in
            let token = TestToken.hmac(TestToken.claims(sub: "frank", extra: ["info": ["name": "Frank"], "meta": ["plan": "gold"]]))
            let client = try await server.client(path: TestToken.query(token))
            try await client.send(LHTTPMessage(command: "chat", body: "hi"))
            try await client.send(LHTTPMessage(command: "up", headers: ["upstream": "POST http://127.0.0.1:\(backend.port)/up"]))
            let requests = try await backend.waitForRequests(3)
            let events = requests.prefix(2).map { (try? JSONSerialization.jsonObject(with: Data($0.body.utf8))) as? [String: Any] ?? [:] }
            let connect = try #require(events.first { $0["event"] as? String == "connect" })
            #expect((connect["claims"] as? [String: Any])?["sub"] as? String == "frank")
            for event in events {
                let connection = event["connection"] as? [String: Any] ?? [:]
                #expect(connection["user"] as? String == "frank")
                #expect((connection["info"] as? [String: Any])?["name"] as? String == "Frank")
                #expect((connection["token_meta"] as? [String: Any])?["plan"] as? String == "gold")
            }
            #expect(requests.allSatisfy { $0.header("X-LHTTP-User") == "frank" })
            try await client.close()
        }
    }
}
