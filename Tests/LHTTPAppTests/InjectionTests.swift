import Foundation
import LHTTPClient
import LHTTPConfig
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import Testing

/// Issue 13, finding 2: no input (a publish query, a webhook's answer, a client's message) can put a line
/// end into a message other clients parse. Each attack is made over real sockets, with the legitimate
/// request next to it.
@Suite("Header and frame injection")
struct InjectionTests {
    @Test func aLineEndInAPublishQueryIs400AndReachesNobody() async throws {
        try await TestServer.with { server in
            let listener = try await server.client()
            try await server.subscribe(listener, "x")
            let publisher = try await server.publisher()
            for path in [
                "/publish?channel=x%0D%0Afrom:admin%0D%0A%0D%0AFORGED",
                "/publish?channel=x%0Afrom:admin",
                "/publish?channel=x%00",
                "/publish?channel=x&command=chat%0D%0Afrom:admin",
            ] {
                let response = try await publisher.request(path: path, body: ByteBuffer(string: "body"))
                #expect(response.status == 400, "\(path)")
                let error = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                #expect(error?["status"] as? Int == 400)
            }
            // A raw LHTTP body naming a forged channel is refused the same way.
            let raw = try await publisher.request(path: "/publish", body: ByteBuffer(string: "LHTTP/1.0 chat\r\npublish:x\u{0}y\r\n\r\nhi"))
            #expect(raw.status == 400)
            try await server.roundTrip(listener)  // nothing was delivered

            let fine = try await publisher.request(path: "/publish?channel=x&command=chat", body: ByteBuffer(string: "from:admin\r\n\r\nbody"))
            #expect(fine.status == 200)
            let message = try await listener.nextMessage()
            #expect(message.command == "chat")
            #expect(message.headers.map(\.name) == ["publish"])
            #expect(message.bodyString == "from:admin\r\n\r\nbody")  // a body is a body
            try await publisher.close()
            try await listener.close()
        }
    }

    @Test func aWebhookAnswerThatWouldForgeLinesIs502AndPublishesNothing() async throws {
        let forged = [
            #"{"publish": [{"channels": ["room"], "headers": {"from": "app\r\nfrom:admin"}, "body": "x"}]}"#,
            #"{"publish": [{"channels": ["room"], "headers": {"from:admin\r\nx": "1"}, "body": "x"}]}"#,
            #"{"publish": [{"channels": ["room"], "headers": {"a b": "1"}, "body": "x"}]}"#,
            #"{"publish": [{"channels": ["room"], "command": "say\r\nfrom:admin", "body": "x"}]}"#,
            #"{"publish": [{"channels": ["room\r\nfrom:admin"], "body": "x"}]}"#,
            #"{"reply": {"command": "ack", "headers": {"x": "1\n\nFORGED"}}}"#,
            #"{"subscribe": ["room\u0000"]}"#,
        ]
        let backend = try await TestBackend.start { request in
            let body = (try? JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any])?["body"] as? String ?? ""
            guard let index = Int(body), index < forged.count else {
                return .init(contentType: "application/json", body: #"{"publish": [{"channels": ["room"], "headers": {"from": "app"}, "body": "fine"}]}"#)
            }
            return .init(contentType: "application/json", body: forged[index])
        }
        defer { Task { await backend.stop() } }
        try await TestServer.with({ config in
            config.routes = ["chat": RouteConfig(url: "http://127.0.0.1:\(backend.port)/chat.php")]
        }) { server in
            let listener = try await server.client()
            try await server.subscribe(listener, "room")
            let sender = try await server.client()
            for index in forged.indices {
                try await sender.send(LHTTPMessage(command: "chat", body: "\(index)"))
                let reply = try await sender.nextMessage()
                #expect(reply.command == "error", "answer \(index)")
                #expect(reply.headers["status"] == "502", "answer \(index)")
                #expect(reply.headers["reason"]?.hasPrefix("invalid webhook answer") == true, "answer \(index): \(reply.headers["reason"] ?? "")")
            }
            try await server.roundTrip(listener)  // none of them published anything

            try await sender.send(LHTTPMessage(command: "chat", body: "legit"))
            let message = try await listener.nextMessage()
            #expect(message.headers["from"] == "app")
            #expect(message.bodyString == "fine")
            try await sender.close()
            try await listener.close()
        }
    }

    @Test func aClientsHeaderWithAControlCharacterIsRefused() async throws {
        try await TestServer.with { server in
            let listener = try await server.client()
            try await server.subscribe(listener, "room")
            let sender = try await server.client()
            try await sender.sendText("LHTTP/1.0 chat\r\npublish:room\r\nfrom:ann\rx:forged\r\n\r\nhi")
            let reply = try await sender.nextMessage()
            #expect(reply.command == "error")
            #expect(reply.headers["status"] == "400")
            try await sender.sendText("LHTTP/1.0 chat\r\nsubscribe:a\u{1B}[31m\r\n\r\n")
            #expect(try await sender.nextMessage().headers["status"] == "400")
            try await server.roundTrip(listener)
            try await sender.close()
            try await listener.close()
        }
    }
}
