import NIOCore

/// What travels on a channel subject between nodes: a one-line header, then the LHTTP message as
/// published, byte for byte.
///
/// `LHC1 <origin> <sequence> <channel> [<channel>...]\r\n<message>`
///
/// `origin` is the publishing node's id plus a per-start nonce (`node-a#3f9c2e1a`), so a node recognises
/// its own messages even when two nodes share a configured id. `sequence` counts the origin's
/// publications; a publication to several channels goes once per channel subject with the same
/// sequence, and a receiver delivers the first copy (to all its channels, each connection once) and
/// drops the others. Channel names are encoded as in ``NATSSubject`` (no spaces, ASCII).
struct NATSEnvelope: Equatable {
    static let magic = "LHC1"

    var origin: String
    var sequence: UInt64
    var channels: [String]
    var message: ByteBuffer

    /// The envelope of `message` as one buffer.
    static func encode(origin: String, sequence: UInt64, channels: [String], message: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var header = "\(Self.magic) \(origin) \(sequence)"
        for channel in channels {
            header += " "
            header += NATSSubject.encode(channel)
        }
        header += "\r\n"
        var buffer = allocator.buffer(capacity: header.utf8.count + message.readableBytes)
        buffer.writeString(header)
        var message = message
        buffer.writeBuffer(&message)
        return buffer
    }

    /// Parses an envelope; nil for anything else (a foreign publisher on our subjects, a newer format).
    init?(decoding payload: ByteBuffer) {
        let view = payload.readableBytesView
        // The header is bounded by the channel limits; 64 KiB is far beyond any valid one.
        guard let cr = view.prefix(65_536).firstIndex(of: UInt8(ascii: "\r")), cr + 1 < view.endIndex, view[cr + 1] == UInt8(ascii: "\n") else {
            return nil
        }
        let fields = view[view.startIndex..<cr].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard fields.count >= 4, fields[0].elementsEqual(Self.magic.utf8),
            let sequence = UInt64(String(decoding: fields[2], as: UTF8.self))
        else { return nil }
        var channels: [String] = []
        channels.reserveCapacity(fields.count - 3)
        for field in fields.dropFirst(3) {
            guard let channel = NATSSubject.decode(Substring(String(decoding: field, as: UTF8.self))) else { return nil }
            channels.append(channel)
        }
        let headerLength = cr + 2 - view.startIndex
        self.origin = String(decoding: fields[1], as: UTF8.self)
        self.sequence = sequence
        self.channels = channels
        self.message = payload.getSlice(at: payload.readerIndex + headerLength, length: payload.readableBytes - headerLength)!
    }

    init(origin: String, sequence: UInt64, channels: [String], message: ByteBuffer) {
        self.origin = origin
        self.sequence = sequence
        self.channels = channels
        self.message = message
    }
}
