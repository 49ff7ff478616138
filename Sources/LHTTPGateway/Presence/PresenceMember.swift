import LHTTPProtocol
import NIOCore

/// One connection on a channel with presence: who it is and what may be shown of it.
public struct PresenceMember: Sendable, Equatable, Codable {
    /// The connection id (unique per node; nodes' ids are told apart by the node).
    public var conn: String
    /// The token's user; empty: anonymous (a client, not a user).
    public var user: String
    /// Public JSON (the token's `info`, or the connect hook's meta); nil: none.
    public var info: String?

    public init(conn: String, user: String, info: String?) {
        self.conn = conn
        self.user = user
        self.info = info
    }

    /// The member a connection is: the token's `info`, else the app's meta value `info` (a JSON string; the
    /// rest of the meta stays private).
    public init(_ connection: ConnectionInfo) {
        var info = connection.identity?.info
        if info == nil, let text = connection.meta["info"] {
            var buffer = ByteBuffer()
            buffer.writeJSONString(text)
            info = String(buffer: buffer)
        }
        self.init(conn: connection.id.description, user: connection.user, info: info)
    }
}

/// Who is on a channel now, across the cluster: what the `presence` header and `GET /presence` answer.
public struct PresenceSnapshot: Sendable, Equatable {
    public var channel: String
    /// Connections.
    public var clients: Int
    /// Distinct users (anonymous connections are not users).
    public var users: Int
    /// Every connection, or nil past the member cap (counts only).
    public var members: [PresenceMember]?

    public init(channel: String, clients: Int, users: Int, members: [PresenceMember]?) {
        self.channel = channel
        self.clients = clients
        self.users = users
        self.members = members
    }

    /// `{"channel":...,"clients":N,"users":M,"members":[{"conn":...,"user":...,"info":...}]}`; `stats`: without
    /// `members`; past the cap `"truncated":true` instead of `members`.
    public func json(stats: Bool = false) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"channel\":")
        buffer.writeJSONString(self.channel)
        buffer.writeString(",\"clients\":\(self.clients),\"users\":\(self.users)")
        if !stats {
            if let members = self.members {
                buffer.writeStaticString(",\"members\":[")
                for (index, member) in members.enumerated() {
                    if index > 0 { buffer.writeStaticString(",") }
                    buffer.writeStaticString("{\"conn\":")
                    buffer.writeJSONString(member.conn)
                    buffer.writeStaticString(",\"user\":")
                    buffer.writeJSONString(member.user)
                    buffer.writeStaticString(",\"info\":")
                    buffer.writeString(member.info ?? "null")
                    buffer.writeStaticString("}")
                }
                buffer.writeStaticString("]")
            } else {
                buffer.writeStaticString(",\"truncated\":true")
            }
        }
        buffer.writeStaticString("}")
        return buffer
    }

    /// The `LHTTP/1.0 presence` answer: headers `channel`, `clients`, `users`, the JSON as body.
    public func message() -> LHTTPMessage {
        var headers = LHTTPHeaders()
        headers.add(name: "channel", value: self.channel)
        headers.add(name: "clients", value: String(self.clients))
        headers.add(name: "users", value: String(self.users))
        return LHTTPMessage(command: Presence.presenceCommand, headers: headers, body: self.json())
    }
}
