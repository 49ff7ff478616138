import Foundation
import LHTTPGateway
import LHTTPProtocol
import LHTTPUpstream
import LHTTPTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import Testing

@Suite("Webhook contract")
struct WebhookTests {
    let connection = WebhookEvent.Connection(id: "7", remote: "127.0.0.1:50312", meta: ["user": "42"])

    func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
    }

    func response(_ status: Int, _ contentType: String? = nil, _ body: String = "") -> UpstreamResponse {
        UpstreamResponse(status: status, headers: contentType.map { [("Content-Type", $0)] } ?? [], body: ByteBuffer(string: body))
    }

    // MARK: Signature

    @Test func signatureIsLowercaseHexHMACSHA256() {
        // RFC 4231, test case 2.
        let signer = WebhookSigner(secret: "Jefe")
        #expect(
            signer.signature(for: ByteBuffer(string: "what do ya want for nothing?"))
                == "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        )
    }

    // MARK: Envelope

    @Test func messageEventEnvelope() throws {
        let message = LHTTPMessage(
            command: "chat",
            headers: LHTTPHeaders([("Publish", "room"), ("publish", "lobby"), ("x", "1")]),
            body: "hello"
        )
        let part = LHTTPPart(headers: ["k1": "v1"], body: ByteBuffer(string: "body1"))
        let event = WebhookEvent(kind: .message, id: "n1-1", connection: connection, message: message, parts: [part])
        let object = try json(event.jsonBody())
        #expect(object["event"] as? String == "message")
        #expect(object["id"] as? String == "n1-1")
        #expect(object["command"] as? String == "chat")
        #expect(object["headers"] as? [String: String] == ["publish": "room lobby", "x": "1"])
        #expect(object["body"] as? String == "hello")
        let conn = try #require(object["connection"] as? [String: Any])
        #expect(conn["id"] as? String == "7")
        #expect(conn["remote"] as? String == "127.0.0.1:50312")
        #expect(conn["meta"] as? [String: String] == ["user": "42"])
        let parts = try #require(object["multipart"] as? [[String: Any]])
        #expect(parts.first?["body"] as? String == "body1")
        #expect(parts.first?["headers"] as? [String: String] == ["k1": "v1"])
    }

    @Test func nonUTF8BodiesAreBase64() throws {
        var bytes = ByteBuffer()
        bytes.writeBytes([0xFF, 0x00, 0xFE])
        let event = WebhookEvent(kind: .message, id: "1", connection: connection, message: LHTTPMessage(command: "blob", body: bytes))
        let object = try json(event.jsonBody())
        #expect(object["body"] == nil)
        #expect(object["body_base64"] as? String == "/wD+")
    }

    @Test func connectSubscribeDisconnectEnvelopes() throws {
        let connect = WebhookEvent(
            kind: .connect, id: "1", connection: connection,
            http: .init(path: "/ws", query: "token=abc", headers: ["cookie": "s=1", "origin": "http://app.test"])
        )
        let c = try json(connect.jsonBody())
        #expect(c["event"] as? String == "connect")
        let http = try #require(c["http"] as? [String: Any])
        #expect(http["path"] as? String == "/ws")
        #expect(http["query"] as? String == "token=abc")
        #expect(http["headers"] as? [String: String] == ["cookie": "s=1", "origin": "http://app.test"])
        #expect(c["command"] == nil)

        let subscribe = try json(WebhookEvent(kind: .subscribe, id: "2", connection: connection, channels: ["a", "b"]).jsonBody())
        #expect(subscribe["channels"] as? [String] == ["a", "b"])
        let disconnect = try json(WebhookEvent(kind: .disconnect, id: "3", connection: connection, code: 1001).jsonBody())
        #expect(disconnect["code"] as? Int == 1001)
    }

    // MARK: Answers

    @Test func emptyAnswersAreAccepted() {
        let parser = WebhookAnswerParser()
        for answer in [response(204), response(200), response(200, "application/json")] {
            guard case .accepted(let actions) = parser.outcome(of: .success(answer), command: "chat") else {
                Issue.record("not accepted: \(answer.status)")
                continue
            }
            #expect(actions.isEmpty)
        }
    }

    @Test func jsonAnswerActions() throws {
        let body = """
            {"reply": {"body": "ack", "headers": {"k": "v"}},
             "publish": [{"channels": ["room", "room2"], "command": "say", "body": "42: hi"}, {"channels": "solo", "body": "x"}],
             "subscribe": ["a", "b"], "unsubscribe": "c d",
             "meta": {"user": 42, "name": "ann", "admin": false},
             "close": {"code": 4000, "reason": "bye"}}
            """
        let outcome = WebhookAnswerParser().outcome(of: .success(response(200, "application/json; charset=utf-8", body)), command: "chat")
        guard case .accepted(let actions) = outcome else {
            Issue.record("not accepted: \(outcome)")
            return
        }
        let reply = try LHTTPParser().parse(try #require(actions.reply))
        #expect(reply.command == "chat")
        #expect(reply.headers["k"] == "v")
        #expect(reply.bodyString == "ack")
        #expect(actions.publish.map(\.channels) == [["room", "room2"], ["solo"]])
        let first = try LHTTPParser().parse(actions.publish[0].payload)
        #expect(first.command == "say")
        #expect(first.headers["publish"] == "room room2")
        #expect(first.bodyString == "42: hi")
        #expect(actions.subscribe == ["a", "b"])
        #expect(actions.unsubscribe == ["c", "d"])
        #expect(actions.meta == ["user": "42", "name": "ann", "admin": "false"])
        #expect(actions.close?.code == CloseCode(rawValue: 4000))
        #expect(actions.close?.reason == "bye")
    }

    @Test func plainAnswersGoToTheSender() throws {
        let parser = WebhookAnswerParser()
        guard case .accepted(let plain) = parser.outcome(of: .success(response(200, "text/plain", "thanks")), command: "chat") else {
            Issue.record("not accepted")
            return
        }
        #expect(String(buffer: try #require(plain.reply)) == "LHTTP/1.0 chat\r\n\r\nthanks")
        let lhttp = "LHTTP/1.0 ack\r\nid:9\r\n\r\nok"
        guard case .accepted(let raw) = parser.outcome(of: .success(response(200, "text/html", lhttp)), command: "chat") else {
            Issue.record("not accepted")
            return
        }
        #expect(String(buffer: try #require(raw.reply)) == lhttp)
    }

    @Test func refusalsAndFailures() {
        let parser = WebhookAnswerParser()
        if case .refused(let status, let channels) = parser.outcome(of: .success(response(403)), command: "c") {
            #expect(status == 403)
            #expect(channels == nil)
        } else {
            Issue.record("403 not a refusal")
        }
        if case .refused(401, let channels) = parser.outcome(of: .success(response(401, "application/json", #"{"refused": ["b"]}"#)), command: "c") {
            #expect(channels == ["b"])
        } else {
            Issue.record("401 with refused list")
        }
        let failures: [(Result<UpstreamResponse, UpstreamError>, Int)] = [
            (.success(response(500)), 502),
            (.success(response(404)), 502),
            (.success(response(200, "application/json", "{not json")), 502),
            (.success(response(200, "application/json", #"{"publish": [{"body": "no channels"}]}"#)), 502),
            (.success(response(200, "application/json", #"{"close": {"code": 99}}"#)), 502),
            (.failure(.timeout), 504),
            (.failure(.connectionRefused("refused")), 502),
        ]
        for (result, status) in failures {
            guard case .failed(let got, let reason) = parser.outcome(of: result, command: "c") else {
                Issue.record("not a failure: \(result)")
                continue
            }
            #expect(got == status)
            #expect(!reason.isEmpty)
        }
    }

    // MARK: Calls over real sockets

    @Test func aCallCarriesTheEnvelopeHeadersAndAVerifiableSignature() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        let client = CurlHTTPClient(configuration: .init(timeoutMilliseconds: 30_000))
        let caller = WebhookCaller(client: client, secret: "s3cret", limits: .default, logger: .init(label: "test"))
        let event = WebhookEvent(kind: .message, id: "e1", connection: connection, message: LHTTPMessage(command: "chat", body: "hi"))
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let outcome: WebhookOutcome = await withCheckedContinuation { continuation in
            caller.call(url: "http://127.0.0.1:\(backend.port)/chat.php", event: event, on: loop) { continuation.resume(returning: $0) }
        }
        await client.shutdown()
        let request = try #require(backend.requests.first)
        #expect(request.method == "POST")
        #expect(request.header("content-type") == "application/json")
        #expect(request.header("x-lhttp-event") == "message")
        #expect(request.header("x-lhttp-connection") == "7")
        #expect(request.header("x-lhttp-signature") == WebhookSigner(secret: "s3cret").signature(for: ByteBuffer(string: request.body)))
        #expect(try json(ByteBuffer(string: request.body))["body"] as? String == "hi")
        // The backend answers `ok` as text/plain-less 200: a reply for the sender.
        guard case .accepted(let actions) = outcome else {
            Issue.record("not accepted: \(outcome)")
            return
        }
        #expect(String(buffer: try #require(actions.reply)) == "LHTTP/1.0 chat\r\n\r\nok")
    }

    /// Retries are scheduled on the event loop's clock: in virtual time, the attempts come 100 ms and 400 ms
    /// apart, and no sooner (with wall-clock timers, moving virtual time would never bring them).
    @Test func aRefusedConnectionIsRetriedTwiceOnTheLoopsClockThenFails() async throws {
        // Nothing listens there (``FreePort``: no other test is given it).
        let port = try FreePort.next()
        let loop = NIOAsyncTestingEventLoop()
        let client = CurlHTTPClient(configuration: .init(timeoutMilliseconds: 30_000))
        let caller = WebhookCaller(client: client, secret: "", limits: .default, logger: .init(label: "test"))
        let outcome = NIOLockedValueBox<WebhookOutcome?>(nil)
        caller.call(
            url: "http://127.0.0.1:\(port)/down", event: WebhookEvent(kind: .disconnect, id: "d", connection: connection, code: 1000),
            on: loop
        ) { result in outcome.withLockedValue { $0 = result } }
        /// Moves virtual time 1 ms at a time until a retry was queued: the retry task on the loop raises the
        /// client's pending count synchronously, and the curl thread counts the start before it lowers it.
        /// - Returns: the virtual milliseconds it took.
        func millisecondsToTheNextAttempt() async throws -> Int {
            let before = client.stats.started
            for elapsed in 1...2000 {
                await loop.advanceTime(by: .milliseconds(1))
                if client.pendingCount > 0 || client.stats.started > before { return elapsed }
            }
            throw TestFailure("no retry within 2 s of virtual time")
        }
        for failures in 1...2 {
            try await eventually { client.stats.failed == failures && client.pendingCount == 0 }
            let waited = try await millisecondsToTheNextAttempt()
            let delay = failures == 1 ? 100 : 400
            // Never sooner; a little later only when the failure's completion reached the loop late (real time).
            #expect(waited >= delay && waited < delay + 500, "retry \(failures) after \(waited) ms of virtual time")
        }
        try await eventually { client.stats.failed == 3 && outcome.withLockedValue { $0 } != nil }
        await loop.advanceTime(by: .seconds(10))
        #expect(client.stats.started == 3, "two retries, no more")
        guard case .failed(502, _)? = outcome.withLockedValue({ $0 }) else {
            Issue.record("expected 502, got \(String(describing: outcome.withLockedValue { $0 }))")
            return
        }
        await client.shutdown()
        await loop.shutdownGracefully()
    }
}
