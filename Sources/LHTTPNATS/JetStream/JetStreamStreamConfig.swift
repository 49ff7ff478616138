import NIOCore

/// The configuration of a JetStream stream, as `$JS.API.STREAM.CREATE` takes it (the fields lhttpd sets;
/// the server fills in the rest with its defaults).
///
/// Written for nats-server 2.9 (Debian's): `allow_direct` is set explicitly (direct get is off by default
/// there) and `republish` exists; per-message TTLs and batched direct get do not.
public struct JetStreamStreamConfig: Codable, Sendable, Equatable {
    /// A republished copy of every stored message: `src` is a subject filter of the stream, `dest` where it goes.
    public struct RePublish: Codable, Sendable, Equatable {
        public var src: String
        public var dest: String
        public init(src: String, dest: String) {
            self.src = src
            self.dest = dest
        }
    }

    public var name: String
    public var subjects: [String]
    public var retention = "limits"
    /// Messages kept per subject (-1: no limit).
    public var maxMsgsPerSubject: Int
    /// Nanoseconds a message is kept (0: no limit).
    public var maxAge: Int64
    /// Bytes the whole stream keeps (-1: no limit); the oldest messages go first.
    public var maxBytes: Int64
    /// `file` or `memory`.
    public var storage: String
    public var numReplicas: Int
    public var discard = "old"
    /// Nanoseconds within which a repeated `Nats-Msg-Id` is stored once.
    public var duplicateWindow: Int64
    public var allowDirect = true
    public var republish: RePublish?

    public init(
        name: String, subjects: [String], maxMsgsPerSubject: Int, maxAge: Int64, maxBytes: Int64, storage: String,
        numReplicas: Int, duplicateWindow: Int64, republish: RePublish?
    ) {
        self.name = name
        self.subjects = subjects
        self.maxMsgsPerSubject = maxMsgsPerSubject
        self.maxAge = maxAge
        self.maxBytes = maxBytes
        self.storage = storage
        self.numReplicas = numReplicas
        self.duplicateWindow = duplicateWindow
        self.republish = republish
    }

    enum CodingKeys: String, CodingKey {
        case name, subjects, retention, storage, discard, republish
        case maxMsgsPerSubject = "max_msgs_per_subject"
        case maxAge = "max_age"
        case maxBytes = "max_bytes"
        case numReplicas = "num_replicas"
        case duplicateWindow = "duplicate_window"
        case allowDirect = "allow_direct"
    }

    /// Whether a stream configured as `other` (what the server reports) already is what this asks for.
    public func isSatisfied(by other: JetStreamStreamConfig) -> Bool {
        self.subjects == other.subjects && self.maxMsgsPerSubject == other.maxMsgsPerSubject && self.maxAge == other.maxAge
            && self.maxBytes == other.maxBytes && self.storage == other.storage && self.numReplicas == other.numReplicas
            && self.duplicateWindow == other.duplicateWindow && self.allowDirect == other.allowDirect && self.republish == other.republish
    }
}

/// What `$JS.API.STREAM.INFO` (and CREATE, UPDATE) answer.
public struct JetStreamStreamInfo: Decodable, Sendable, Equatable {
    public struct State: Decodable, Sendable, Equatable {
        public var messages: UInt64
        public var bytes: UInt64
        public var firstSeq: UInt64
        public var lastSeq: UInt64
        enum CodingKeys: String, CodingKey {
            case messages, bytes
            case firstSeq = "first_seq"
            case lastSeq = "last_seq"
        }
    }

    public var config: JetStreamStreamConfig
    /// When the stream was made (RFC 3339): a stream deleted and made again has another.
    public var created: String
    public var state: State
}

/// A stored message's acknowledgement (`{"stream":"LHTTP","seq":12}`).
public struct JetStreamPubAck: Decodable, Sendable, Equatable {
    public var stream: String
    public var seq: UInt64
    /// The `Nats-Msg-Id` was seen within the duplicate window: nothing new was stored, `seq` is the first one's.
    public var duplicate: Bool?
}

/// A message read back from a stream (direct get).
public struct JetStreamStoredMessage: Sendable, Equatable {
    public var subject: String
    public var sequence: UInt64
    /// The message's own headers (JetStream's `Nats-*` answer headers included).
    public var headers: NATSHeaders
    public var payload: ByteBuffer
}
