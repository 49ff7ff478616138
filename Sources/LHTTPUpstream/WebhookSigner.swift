import Crypto
import NIOCore

/// `X-LHTTP-Signature: sha256=<lowercase hex HMAC-SHA256 of the body>` with the shared `webhook.secret`.
public struct WebhookSigner: Sendable {
    public static let header = "X-LHTTP-Signature"
    private let key: SymmetricKey

    public init(secret: String) {
        self.key = SymmetricKey(data: Array(secret.utf8))
    }

    /// The header value for `body`.
    public func signature(for body: ByteBuffer) -> String {
        let mac = body.withUnsafeReadableBytes { HMAC<SHA256>.authenticationCode(for: $0, using: self.key) }
        let hex = Array("0123456789abcdef".utf8)
        var text: [UInt8] = Array("sha256=".utf8)
        for byte in mac {
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
