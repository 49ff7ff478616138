import LHTTPGateway
import LHTTPProtocol
import NIOCore
import NIOHTTP1

/// The small JSON bodies of the HTTP routes, written straight into a `ByteBuffer`.
///
/// Written by hand because `POST /publish` answers on the hot path: Foundation's `JSONEncoder` costs
/// several microseconds and allocations per response (measured with `perf`), for three fixed shapes.
protocol JSONBody {
    func write(to buffer: inout ByteBuffer)
}

/// `{"channels":[...],"deliveries":N}`, and `"seq":["<epoch>:<offset>"|null,...]` in `channels` order when a
/// channel keeps history (null: that channel does not).
struct PublishResult: JSONBody {
    var channels: [String]
    var deliveries: Int
    /// Empty: no channel keeps history (the answer has no `seq`).
    var positions: [HistoryPosition?] = []

    func write(to buffer: inout ByteBuffer) {
        buffer.writeStaticString("{\"channels\":[")
        for (index, channel) in self.channels.enumerated() {
            if index > 0 { buffer.writeStaticString(",") }
            buffer.writeJSONString(channel)
        }
        buffer.writeStaticString("],\"deliveries\":")
        buffer.writeString(String(self.deliveries))
        if !self.positions.isEmpty {
            buffer.writeStaticString(",\"seq\":[")
            for (index, position) in self.positions.enumerated() {
                if index > 0 { buffer.writeStaticString(",") }
                if let position { buffer.writeJSONString(position.description) } else { buffer.writeStaticString("null") }
            }
            buffer.writeStaticString("]")
        }
        buffer.writeStaticString("}")
    }
}

/// A JSON body already written (a stored `Idempotency-Key` answer).
struct RawJSON: JSONBody {
    var bytes: ByteBuffer

    func write(to buffer: inout ByteBuffer) {
        var bytes = self.bytes
        buffer.writeBuffer(&bytes)
    }
}

/// `GET /history`: `{"channel":...,"stream":"<epoch>:<top>","recovered":B,"messages":[{"seq":...,"prev":N,
/// "command":...,"headers":{...},"body":...}]}`, oldest first. A header named twice has its values joined
/// by ", " (as HTTP does); the body is UTF-8 (invalid bytes replaced).
struct HistoryAnswer: JSONBody {
    var channel: String
    var read: HistoryRead
    var messages: [(entry: HistoryEntry, message: LHTTPMessage)]

    func write(to buffer: inout ByteBuffer) {
        buffer.writeStaticString("{\"channel\":")
        buffer.writeJSONString(self.channel)
        buffer.writeStaticString(",\"stream\":")
        buffer.writeJSONString(self.read.top.description)
        buffer.writeStaticString(self.read.recovered ? ",\"recovered\":true" : ",\"recovered\":false")
        buffer.writeStaticString(",\"messages\":[")
        for (index, (entry, message)) in self.messages.enumerated() {
            if index > 0 { buffer.writeStaticString(",") }
            buffer.writeStaticString("{\"seq\":")
            buffer.writeJSONString(HistoryPosition(epoch: self.read.top.epoch, offset: entry.offset).description)
            buffer.writeString(",\"prev\":\(entry.prev),\"command\":")
            buffer.writeJSONString(message.command)
            buffer.writeStaticString(",\"headers\":{")
            var names: [String] = []
            var values: [String: [String]] = [:]
            for header in message.headers {
                if values[header.name] == nil { names.append(header.name) }
                values[header.name, default: []].append(header.value)
            }
            for (position, name) in names.enumerated() {
                if position > 0 { buffer.writeStaticString(",") }
                buffer.writeJSONString(name)
                buffer.writeStaticString(":")
                buffer.writeJSONString(values[name]!.joined(separator: ", "))
            }
            buffer.writeStaticString("},\"body\":")
            buffer.writeJSONString(message.bodyString)
            buffer.writeStaticString("}")
        }
        buffer.writeStaticString("]}")
    }
}

/// `{"status":"ok","connections":N,"channels":N,"subscriptions":N}`, plus one object per reported
/// section (`"cluster":{...}` on a clustered node); the status is `"degraded"` while a section says so
/// (the node still serves its own clients, so the HTTP status stays 200).
struct Health: JSONBody {
    var connections: Int
    var channels: Int
    var subscriptions: Int
    var sections: [HealthReport]

    func write(to buffer: inout ByteBuffer) {
        let status = self.sections.contains(where: \.isDegraded) ? "degraded" : "ok"
        buffer.writeString(
            "{\"status\":\"\(status)\",\"connections\":\(self.connections),\"channels\":\(self.channels),\"subscriptions\":\(self.subscriptions)"
        )
        for section in self.sections {
            buffer.writeStaticString(",")
            buffer.writeJSONString(section.name)
            buffer.writeStaticString(":{")
            for (index, field) in section.fields.enumerated() {
                if index > 0 { buffer.writeStaticString(",") }
                buffer.writeJSONString(field.name)
                buffer.writeStaticString(":")
                switch field.value {
                case .string(let text): buffer.writeJSONString(text)
                case .int(let number): buffer.writeString(String(number))
                }
            }
            buffer.writeStaticString("}")
        }
        buffer.writeStaticString("}")
    }
}

/// `{"status":N,"error":"..."}`
struct Failure: JSONBody {
    var status: Int
    var error: String

    init(_ error: ServerError) {
        self.status = error.httpStatus
        self.error = error.description
    }

    /// A whole `connection: close` HTTP/1.1 response for `error`, as bytes, for a handler below the HTTP
    /// encoder (the request timeout).
    static func rawResponse(for error: ServerError, allocator: ByteBufferAllocator) -> ByteBuffer {
        var body = allocator.buffer(capacity: 128)
        Failure(error).write(to: &body)
        body.writeStaticString("\n")
        let status = HTTPResponseStatus(statusCode: error.httpStatus)
        var response = allocator.buffer(capacity: 160 + body.readableBytes)
        response.writeString("HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\ncontent-type: application/json\r\n")
        response.writeString("content-length: \(body.readableBytes)\r\nconnection: close\r\n\r\n")
        response.writeBuffer(&body)
        return response
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeString("{\"status\":\(self.status),\"error\":")
        buffer.writeJSONString(self.error)
        buffer.writeStaticString("}")
    }
}
