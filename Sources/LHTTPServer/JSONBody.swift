import LHTTPGateway
import NIOCore

/// The small JSON bodies of the HTTP routes, written straight into a `ByteBuffer`.
///
/// Written by hand because `POST /publish` answers on the hot path: Foundation's `JSONEncoder` costs
/// several microseconds and allocations per response (measured with `perf`), for three fixed shapes.
protocol JSONBody {
    func write(to buffer: inout ByteBuffer)
}

/// `{"channels":[...],"deliveries":N}`
struct PublishResult: JSONBody {
    var channels: [String]
    var deliveries: Int

    func write(to buffer: inout ByteBuffer) {
        buffer.writeStaticString("{\"channels\":[")
        for (index, channel) in self.channels.enumerated() {
            if index > 0 { buffer.writeStaticString(",") }
            buffer.writeJSONString(channel)
        }
        buffer.writeStaticString("],\"deliveries\":")
        buffer.writeString(String(self.deliveries))
        buffer.writeStaticString("}")
    }
}

/// `{"status":"ok","connections":N,"channels":N,"subscriptions":N}`, plus `"cluster":{...}` on a
/// clustered node, whose status is `"degraded"` while its NATS link is down (it still serves its own
/// clients, so the HTTP status stays 200).
struct Health: JSONBody {
    var connections: Int
    var channels: Int
    var subscriptions: Int
    var cluster: BrokerHealth?

    func write(to buffer: inout ByteBuffer) {
        let status = self.cluster.map { $0.isConnected ? "ok" : "degraded" } ?? "ok"
        buffer.writeString(
            "{\"status\":\"\(status)\",\"connections\":\(self.connections),\"channels\":\(self.channels),\"subscriptions\":\(self.subscriptions)"
        )
        if let cluster = self.cluster {
            buffer.writeStaticString(",\"cluster\":{\"state\":")
            buffer.writeJSONString(cluster.state)
            buffer.writeStaticString(",\"server\":")
            buffer.writeJSONString(cluster.server)
            buffer.writeStaticString(",\"node_id\":")
            buffer.writeJSONString(cluster.nodeID)
            buffer.writeString(
                ",\"channels\":\(cluster.channels),\"reconnects\":\(max(0, cluster.connections - 1)),\"dropped\":\(cluster.droppedMessages),\"pending_bytes\":\(cluster.pendingBytes)}"
            )
        }
        buffer.writeStaticString("}")
    }
}

/// `{"status":N,"error":"..."}`
struct Failure: JSONBody {
    var status: Int
    var error: String

    func write(to buffer: inout ByteBuffer) {
        buffer.writeString("{\"status\":\(self.status),\"error\":")
        buffer.writeJSONString(self.error)
        buffer.writeStaticString("}")
    }
}

extension ByteBuffer {
    /// Writes `text` as a JSON string literal (RFC 8259 escaping).
    mutating func writeJSONString(_ text: String) {
        self.writeStaticString("\"")
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): self.writeStaticString("\\\"")
            case UInt8(ascii: "\\"): self.writeStaticString("\\\\")
            case UInt8(ascii: "\n"): self.writeStaticString("\\n")
            case UInt8(ascii: "\r"): self.writeStaticString("\\r")
            case UInt8(ascii: "\t"): self.writeStaticString("\\t")
            case 0..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                self.writeStaticString("\\u00")
                self.writeInteger(hex[Int(byte >> 4)])
                self.writeInteger(hex[Int(byte & 0xF)])
            default:
                self.writeInteger(byte)
            }
        }
        self.writeStaticString("\"")
    }
}
