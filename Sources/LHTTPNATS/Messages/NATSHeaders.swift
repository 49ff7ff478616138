import NIOCore

/// The header block of an `HPUB`/`HMSG`: `NATS/1.0[ <status>[ <description>]]\r\n`, then `Name: value`
/// lines, then an empty line. Names keep their case on the wire and are matched case-insensitively.
///
/// JetStream speaks through them: `Nats-Msg-Id` (deduplication) on a publication, `Nats-Sequence` and
/// `Nats-Last-Sequence` on a republished message, a `404`/`408`/`503` status on an answer with no body.
public struct NATSHeaders: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    /// The status of the version line (`NATS/1.0 503`), nil when there is none.
    public var status: Int?
    /// The words after the status (`No Responders`).
    public var statusDescription: String
    public private(set) var fields: [(name: String, value: String)]

    public init(status: Int? = nil, statusDescription: String = "", fields: [(name: String, value: String)] = []) {
        self.status = status
        self.statusDescription = statusDescription
        self.fields = fields
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(fields: elements.map { (name: $0.0, value: $0.1) })
    }

    /// The first value of `name`.
    public subscript(name: String) -> String? {
        self.fields.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// Adds a field. Names and values must not hold CR, LF or (names) a colon: the caller's constants and
    /// numbers only, never client input unchecked.
    public mutating func add(name: String, value: String) {
        self.fields.append((name: name, value: value))
    }

    public static func == (lhs: NATSHeaders, rhs: NATSHeaders) -> Bool {
        lhs.status == rhs.status && lhs.statusDescription == rhs.statusDescription
            && lhs.fields.map(\.name) == rhs.fields.map(\.name) && lhs.fields.map(\.value) == rhs.fields.map(\.value)
    }

    /// The block as written on the wire, its empty line included.
    public func encoded() -> ByteBuffer {
        var text = "NATS/1.0"
        if let status { text += " \(status)" + (self.statusDescription.isEmpty ? "" : " \(self.statusDescription)") }
        text += "\r\n"
        for field in self.fields { text += "\(field.name): \(field.value)\r\n" }
        text += "\r\n"
        return ByteBuffer(string: text)
    }

    /// Parses a header block (`bytes` is exactly the block, its empty line included).
    static func parse(_ bytes: ByteBuffer) throws(NATSError) -> NATSHeaders {
        let text = String(decoding: bytes.readableBytesView, as: UTF8.self)
        var lines = text.components(separatedBy: "\r\n")
        guard lines.count >= 3, lines.removeLast().isEmpty, lines.removeLast().isEmpty else {
            throw .protocolViolation("header block not ended by an empty line")
        }
        let version = lines.removeFirst()
        guard version.hasPrefix("NATS/1.0") else { throw .protocolViolation("header block without NATS/1.0") }
        var headers = NATSHeaders(status: nil)
        let statusLine = version.dropFirst("NATS/1.0".count).trimmingCharacters(in: [" "])
        if !statusLine.isEmpty {
            let parts = statusLine.split(separator: " ", maxSplits: 1)
            guard let status = Int(parts[0]) else { throw .protocolViolation("bad header status '\(statusLine.prefix(40))'") }
            headers.status = status
            headers.statusDescription = parts.count > 1 ? String(parts[1]) : ""
        }
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { throw .protocolViolation("header line without a colon") }
            headers.add(
                name: String(line[..<colon]).trimmingCharacters(in: [" "]),
                value: String(line[line.index(after: colon)...]).trimmingCharacters(in: [" "])
            )
        }
        return headers
    }
}
