import Foundation
import NIOCore

/// Incremental parser of the NATS server protocol: feed it bytes as they arrive, take ops out.
///
/// A plain value that never sees a socket. Control lines are bounded by `maxControlLine`, payloads by
/// `maxPayload` (the server's `max_payload`): anything larger is an error, never unbounded buffering.
public struct NATSParser: Sendable {
    public var maxControlLine: Int
    public var maxPayload: Int
    private var buffer = ByteBuffer()

    public init(maxControlLine: Int = 4096, maxPayload: Int = 1 << 20) {
        self.maxControlLine = maxControlLine
        self.maxPayload = maxPayload
    }

    /// Appends received bytes.
    public mutating func append(_ bytes: ByteBuffer) {
        var bytes = bytes
        if self.buffer.readableBytes == 0 { self.buffer.clear() }
        self.buffer.writeBuffer(&bytes)
    }

    /// The next complete op, or nil when more bytes are needed.
    public mutating func next() throws(NATSError) -> NATSServerOp? {
        let view = self.buffer.readableBytesView
        guard let lf = view.firstIndex(of: UInt8(ascii: "\n")) else {
            guard view.count <= self.maxControlLine else { throw .tooLarge("control line over \(self.maxControlLine) bytes") }
            return nil
        }
        let lineLength = lf - view.startIndex
        guard lineLength <= self.maxControlLine else { throw .tooLarge("control line over \(self.maxControlLine) bytes") }
        guard lineLength > 0, view[lf - 1] == UInt8(ascii: "\r") else { throw .protocolViolation("line not ended by CRLF") }
        let line = String(decoding: view[view.startIndex..<(lf - 1)], as: UTF8.self)
        let (verb, rest) = Self.split(line)
        switch verb.uppercased() {
        case "MSG", "HMSG":
            // MSG <subject> <sid> [reply-to] <#bytes>; HMSG <subject> <sid> [reply-to] <#header bytes> <#total bytes>
            let withHeaders = verb.count == 4
            let fields = rest.split(separator: " ", omittingEmptySubsequences: true)
            let sizes = withHeaders ? 2 : 1
            guard fields.count == 2 + sizes || fields.count == 3 + sizes, let sid = UInt64(fields[1]),
                let size = Int(fields.last!), size >= 0
            else {
                throw .protocolViolation("bad \(verb) line '\(line.prefix(100))'")
            }
            let headerSize = withHeaders ? Int(fields[fields.count - 2]) ?? -1 : 0
            guard headerSize >= 0, headerSize <= size else { throw .protocolViolation("bad HMSG sizes '\(line.prefix(100))'") }
            guard size <= self.maxPayload + (withHeaders ? self.maxControlLine : 0) else {
                throw .tooLarge("payload of \(size) bytes over \(self.maxPayload)")
            }
            let total = lineLength + 1 + size + 2
            guard self.buffer.readableBytes >= total else { return nil }
            let payloadStart = self.buffer.readerIndex + lineLength + 1
            guard self.buffer.getInteger(at: payloadStart + size, as: UInt16.self) == 0x0D0A else {
                throw .protocolViolation("payload not followed by CRLF")
            }
            let headers = withHeaders ? try NATSHeaders.parse(self.buffer.getSlice(at: payloadStart, length: headerSize)!) : nil
            let payload = self.buffer.getSlice(at: payloadStart + headerSize, length: size - headerSize)!
            self.buffer.moveReaderIndex(forwardBy: total)
            let replyTo = fields.count == 3 + sizes ? String(fields[2]) : nil
            return .message(NATSMessage(subject: String(fields[0]), sid: sid, replyTo: replyTo, headers: headers, payload: payload))
        case "PING":
            self.consume(lineLength)
            return .ping
        case "PONG":
            self.consume(lineLength)
            return .pong
        case "+OK":
            self.consume(lineLength)
            return .ok
        case "-ERR":
            self.consume(lineLength)
            return .error(rest.trimmingCharacters(in: [" ", "'"]))
        case "INFO":
            self.consume(lineLength)
            return .info(rest)
        default:
            throw .protocolViolation("unknown op '\(verb.prefix(20))'")
        }
    }

    private mutating func consume(_ lineLength: Int) {
        self.buffer.moveReaderIndex(forwardBy: lineLength + 1)
    }

    private static func split(_ line: String) -> (Substring, String) {
        guard let space = line.firstIndex(where: { $0 == " " || $0 == "\t" }) else { return (line[...], "") }
        return (line[..<space], String(line[line.index(after: space)...]).trimmingCharacters(in: [" ", "\t"]))
    }
}
