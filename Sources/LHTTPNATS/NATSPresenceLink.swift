import Foundation
import LHTTPGateway
import Logging
import NIOCore

/// Presence between nodes over NATS: every node publishes its ``PresenceUpdate``s on `<prefix>.p.all`
/// and hears everyone's there (one subject: a node answers `GET /presence` for any channel, and computes
/// join/leave for its own subscribers from the union).
///
/// A message is `<mac> <json>`: the JSON's HMAC-SHA256 with `cluster.secret` in hex (`-` without a secret).
/// With a secret a message is refused unless its MAC checks and its `ts` is within `cluster.max_envelope_age_ms`
/// (a replay of an old state cannot bring members back).
struct NATSPresenceLink: PresenceLink {
    let client: NATSClient
    let subject: String
    let signer: NATSEnvelopeSigner?
    let maxAgeMs: Int64
    let logger: Logger

    func send(_ update: PresenceUpdate) {
        var update = update
        update.ts = NATSBroker.wallClockMs()
        guard let json = try? JSONEncoder().encode(update) else { return }
        var buffer = ByteBuffer()
        if let signer = self.signer {
            buffer.writeBytes(json.withUnsafeBytes { signer.hexMAC(of: $0) })
        } else {
            buffer.writeStaticString("-")
        }
        buffer.writeStaticString(" ")
        buffer.writeBytes(json)
        do {
            try self.client.publish(buffer, to: self.subject)
        } catch {
            self.logger.warning("presence update not sent to NATS", metadata: ["lhttp.error": "\(error)"])
        }
    }

    enum Decoded {
        case update(PresenceUpdate)
        case rejected(NATSRejection)
    }

    /// A message heard on ``subject``: the update, or why it is refused.
    func decode(_ payload: ByteBuffer) -> Decoded {
        let bytes = Array(payload.readableBytesView)
        guard let space = bytes.firstIndex(of: UInt8(ascii: " ")) else { return .rejected(.malformed) }
        let mac = bytes[..<space]
        let json = Array(bytes[(space + 1)...])
        if let signer = self.signer {
            guard mac.count != 1 || mac.first != UInt8(ascii: "-") else { return .rejected(.unsigned) }
            guard json.withUnsafeBytes({ signer.isValid(hex: mac, for: $0) }) else { return .rejected(.badSignature) }
        }
        guard let update = try? JSONDecoder().decode(PresenceUpdate.self, from: Data(json)) else { return .rejected(.malformed) }
        if self.signer != nil, self.maxAgeMs > 0, abs(NATSBroker.wallClockMs() - update.ts) > self.maxAgeMs { return .rejected(.stale) }
        return .update(update)
    }
}
