import Foundation
import LHTTPConfig
import NIOCore

/// Client → server frames, written straight into a buffer.
public enum NATSClientOp {
    /// `CONNECT {json}`.
    static func connect(_ json: String, into buffer: inout ByteBuffer) {
        buffer.writeString("CONNECT \(json)\r\n")
    }

    /// The JSON of our CONNECT to `server`: its credentials (user and password, or token) come from its URL.
    static func connectJSON(for server: NATSServerURL, name: String, echo: Bool) -> String {
        var fields: [String: Any] = [
            "verbose": false, "pedantic": false, "lang": "swift", "version": "1.0", "protocol": 1,
            "name": name, "echo": echo, "headers": true, "no_responders": true,
        ]
        if let user = server.user { fields["user"] = user }
        if let password = server.password { fields["pass"] = password }
        if let token = server.token { fields["auth_token"] = token }
        let data = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// `PUB <subject> <#bytes>` and the payload.
    static func publish(subject: String, payload: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeString("PUB \(subject) \(payload.readableBytes)\r\n")
        var payload = payload
        buffer.writeBuffer(&payload)
        buffer.writeStaticString("\r\n")
    }

    /// `PUB <subject> [reply-to] <#bytes>`, or with headers `HPUB <subject> [reply-to] <#header bytes> <#total bytes>`,
    /// and the payload.
    static func publish(subject: String, replyTo: String?, headers: NATSHeaders?, payload: ByteBuffer, into buffer: inout ByteBuffer) {
        let reply = replyTo.map { " \($0)" } ?? ""
        var payload = payload
        if var block = headers?.encoded() {
            buffer.writeString("HPUB \(subject)\(reply) \(block.readableBytes) \(block.readableBytes + payload.readableBytes)\r\n")
            buffer.writeBuffer(&block)
        } else {
            buffer.writeString("PUB \(subject)\(reply) \(payload.readableBytes)\r\n")
        }
        buffer.writeBuffer(&payload)
        buffer.writeStaticString("\r\n")
    }

    /// `SUB <subject> <sid>`.
    static func subscribe(subject: String, sid: UInt64, into buffer: inout ByteBuffer) {
        buffer.writeString("SUB \(subject) \(sid)\r\n")
    }

    /// `UNSUB <sid>`.
    static func unsubscribe(sid: UInt64, into buffer: inout ByteBuffer) {
        buffer.writeString("UNSUB \(sid)\r\n")
    }

    static func ping(into buffer: inout ByteBuffer) { buffer.writeStaticString("PING\r\n") }
    static func pong(into buffer: inout ByteBuffer) { buffer.writeStaticString("PONG\r\n") }
}
