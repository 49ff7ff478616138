import Foundation
import LHTTPGateway
import LHTTPProtocol
import NIOCore

/// One event the gateway reports to the app's webhook: the JSON body of a webhook call.
///
/// The contract (`docs/webhooks.md`): `{"event", "id", "connection": {"id", "remote", "meta"}, ...}` plus,
/// per kind, the message (`command`, `headers`, `body` or `body_base64`, `multipart`), the upgrade request
/// (`http`), the channels of a subscribe, or the close code of a disconnect.
public struct WebhookEvent: Sendable {
    public enum Kind: String, Sendable, Codable {
        case connect, message, subscribe, disconnect, presence
    }

    /// The connection the event is about: `user`, `info` and `token_meta` come from its token (left out
    /// without one, `user` also for an anonymous token).
    public struct Connection: Sendable, Codable, Equatable {
        public var id: String
        public var remote: String
        public var meta: [String: String]
        public var user: String?
        public var info: JSONValue?
        public var token_meta: JSONValue?

        public init(id: String, remote: String, meta: [String: String] = [:], identity: ConnectionIdentity? = nil) {
            self.id = id
            self.remote = remote
            self.meta = meta
            if let identity {
                self.user = identity.user.isEmpty ? nil : identity.user
                self.info = identity.info.flatMap(JSONValue.parse)
                self.token_meta = identity.meta.flatMap(JSONValue.parse)
            }
        }

        /// The connection as the gateway sees it.
        public init(_ connection: ConnectionInfo) {
            self.init(id: connection.id.description, remote: connection.remoteAddress, meta: connection.meta, identity: connection.identity)
        }
    }

    /// The websocket upgrade request (connect events).
    public struct HTTPInfo: Sendable, Codable, Equatable {
        /// The request path, without the query.
        public var path: String
        /// The raw query string, without `?`.
        public var query: String
        /// `cookie`, `authorization`, `origin`, `user-agent` when present (lowercase names).
        public var headers: [String: String]

        public init(path: String, query: String, headers: [String: String]) {
            self.path = path
            self.query = query
            self.headers = headers
        }
    }

    public var kind: Kind
    /// Unique per event (node prefix + counter): lets the app ignore a retried delivery.
    public var id: String
    public var connection: Connection
    /// The message (message events).
    public var message: LHTTPMessage?
    /// Its multipart parts, if any.
    public var parts: [LHTTPPart]
    public var http: HTTPInfo?
    /// All channels of one subscribe header (subscribe events).
    public var channels: [String]?
    /// The websocket close code (disconnect events).
    public var code: Int?
    /// The whole verified token payload (connect events with a token).
    public var claims: JSONValue?
    /// What changed (presence events): `channel_occupied`, `channel_vacated`, `member_added`, `member_removed`.
    public var action: String?
    /// The channel of a presence event.
    public var channel: String?

    public init(
        kind: Kind,
        id: String,
        connection: Connection,
        message: LHTTPMessage? = nil,
        parts: [LHTTPPart] = [],
        http: HTTPInfo? = nil,
        channels: [String]? = nil,
        code: Int? = nil,
        claims: JSONValue? = nil
    ) {
        self.claims = claims
        self.kind = kind
        self.id = id
        self.connection = connection
        self.message = message
        self.parts = parts
        self.http = http
        self.channels = channels
        self.code = code
    }

    /// The JSON body of the webhook call.
    public func jsonBody() -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(Envelope(self))) ?? Data("{}".utf8)
        return ByteBuffer(bytes: data)
    }
}

/// The wire shape of a ``WebhookEvent``.
private struct Envelope: Encodable {
    struct Part: Encodable {
        var headers: [String: String]
        var body: String?
        var body_base64: String?
    }

    var event: WebhookEvent.Kind
    var id: String
    var connection: WebhookEvent.Connection
    var command: String?
    var headers: [String: String]?
    var body: String?
    var body_base64: String?
    var multipart: [Part]?
    var http: WebhookEvent.HTTPInfo?
    var channels: [String]?
    var code: Int?
    var claims: JSONValue?
    var action: String?
    var channel: String?

    init(_ event: WebhookEvent) {
        self.claims = event.claims
        self.action = event.action
        self.channel = event.channel
        self.event = event.kind
        self.id = event.id
        self.connection = event.connection
        self.http = event.http
        self.channels = event.channels
        self.code = event.code
        if let message = event.message {
            self.command = message.command
            self.headers = Self.headers(message.headers)
            (self.body, self.body_base64) = Self.body(message.body)
            if !event.parts.isEmpty {
                self.multipart = event.parts.map { part in
                    let (text, base64) = Self.body(part.body)
                    return Part(headers: Self.headers(part.headers), body: text, body_base64: base64)
                }
            }
        }
    }

    /// Header names lowercased (keys match case-insensitively); a repeated name's values joined with a space,
    /// as channel lists are.
    static func headers(_ headers: LHTTPHeaders) -> [String: String] {
        var result: [String: String] = [:]
        for header in headers {
            let name = header.name.lowercased()
            if let existing = result[name] {
                result[name] = existing + " " + header.value
            } else {
                result[name] = header.value
            }
        }
        return result
    }

    /// UTF-8 bodies as `body`, anything else as `body_base64`.
    static func body(_ bytes: ByteBuffer) -> (String?, String?) {
        if let text = String(validating: bytes.readableBytesView, as: UTF8.self) { return (text, nil) }
        return (nil, Data(bytes.readableBytesView).base64EncodedString())
    }
}

extension JSONValue {
    /// `text` parsed as JSON (nil when it is not).
    static func parse(_ text: String) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }
}
