import NIOCore

/// What travels on a channel subject between nodes: a one-line header, then the LHTTP message as
/// published, byte for byte.
///
/// - `LHC1 <origin> <sequence> <channel> [<channel>...]\r\n<message>`: unsigned (no `cluster.secret`).
/// - `LHC2 <mac> <origin> <sequence> <timestamp-ms> <channel> [<channel>...]\r\n<message>`: signed. `mac` is
///   the HMAC-SHA256 with `cluster.secret`, in 64 lowercase hex digits, of every byte after `LHC2 <mac> `
///   to the end of the payload (the other header fields, the channel list and the message);
///   `timestamp-ms` is the publishing node's wall clock in milliseconds since 1970.
///
/// `origin` is the publishing node's id plus a per-start nonce (`node-a#3f9c2e1a`), so a node recognises
/// its own messages even when two nodes share a configured id. `sequence` counts the origin's
/// publications (nodes before issue 13 used it to drop the other copies of a multi-channel publication;
/// it is still sent, and means nothing to the receiver now). Channel names are encoded as in
/// ``NATSSubject`` (no spaces, ASCII). A receiver trusts none of it: see ``NATSInboundFilter``.
struct NATSEnvelope: Equatable {
    static let unsignedMagic = "LHC1"
    static let signedMagic = "LHC2"

    /// The signature of an `LHC2` envelope, as read (checked by ``NATSInboundFilter``).
    struct Signature: Equatable {
        /// The MAC field, hex as sent.
        var hexMAC: ByteBuffer
        var timestampMs: Int64
        /// The bytes the MAC covers.
        var signed: ByteBuffer
    }

    var origin: String
    var sequence: UInt64
    var channels: [String]
    var message: ByteBuffer
    /// Nil for `LHC1`.
    var signature: Signature?

    /// The envelope of `message` as one buffer: signed (`LHC2`, stamped `timestampMs`) with `signer`,
    /// else `LHC1`.
    static func encode(
        origin: String, sequence: UInt64, channels: [String], message: ByteBuffer,
        signer: NATSEnvelopeSigner? = nil, timestampMs: Int64 = 0, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var header = "\(origin) \(sequence)"
        if signer != nil { header += " \(timestampMs)" }
        for channel in channels {
            header += " "
            header += NATSSubject.encode(channel)
        }
        header += "\r\n"
        let prefixLength = signer == nil ? 5 : 6 + NATSEnvelopeSigner.hexLength
        var buffer = allocator.buffer(capacity: prefixLength + header.utf8.count + message.readableBytes)
        guard let signer else {
            buffer.writeString(Self.unsignedMagic + " ")
            buffer.writeString(header)
            var message = message
            buffer.writeBuffer(&message)
            return buffer
        }
        buffer.writeString(Self.signedMagic + " ")
        let macIndex = buffer.writerIndex
        buffer.writeRepeatingByte(UInt8(ascii: "0"), count: NATSEnvelopeSigner.hexLength)
        buffer.writeString(" ")
        let signedIndex = buffer.writerIndex
        buffer.writeString(header)
        var message = message
        buffer.writeBuffer(&message)
        let mac = buffer.withUnsafeReadableBytes { raw in
            signer.hexMAC(of: UnsafeRawBufferPointer(rebasing: raw[(signedIndex - buffer.readerIndex)...]))
        }
        buffer.setBytes(mac, at: macIndex)
        return buffer
    }

    /// Parses an envelope; nil for anything else (a foreign publisher on our subjects, a newer format).
    /// Nothing is checked beyond the format: the signature, the subject and the message are
    /// ``NATSInboundFilter``'s.
    init?(decoding payload: ByteBuffer) {
        let view = payload.readableBytesView
        // The header is bounded by the channel limits; 64 KiB is far beyond any valid one.
        guard let cr = view.prefix(65_536).firstIndex(of: UInt8(ascii: "\r")), cr + 1 < view.endIndex, view[cr + 1] == UInt8(ascii: "\n") else {
            return nil
        }
        let fields = view[view.startIndex..<cr].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard let magic = fields.first else { return nil }
        let signed: Bool
        if magic.elementsEqual(Self.unsignedMagic.utf8) {
            signed = false
        } else if magic.elementsEqual(Self.signedMagic.utf8) {
            signed = true
        } else {
            return nil
        }
        // LHC2: magic, mac, origin, sequence, timestamp, channels...; LHC1: magic, origin, sequence, channels...
        let originField = signed ? 2 : 1
        let firstChannel = signed ? 5 : 3
        guard fields.count > firstChannel, !fields[originField].isEmpty,
            let sequence = UInt64(String(decoding: fields[originField + 1], as: UTF8.self))
        else { return nil }
        var channels: [String] = []
        channels.reserveCapacity(fields.count - firstChannel)
        for field in fields.dropFirst(firstChannel) {
            guard let channel = NATSSubject.decode(Substring(String(decoding: field, as: UTF8.self))) else { return nil }
            channels.append(channel)
        }
        if signed {
            let mac = fields[1]
            guard mac.count == NATSEnvelopeSigner.hexLength, let timestamp = Int64(String(decoding: fields[4], as: UTF8.self)) else {
                return nil
            }
            let signedStart = mac.endIndex + 1 - view.startIndex
            self.signature = Signature(
                hexMAC: payload.getSlice(at: payload.readerIndex + mac.startIndex - view.startIndex, length: mac.count)!,
                timestampMs: timestamp,
                signed: payload.getSlice(at: payload.readerIndex + signedStart, length: payload.readableBytes - signedStart)!
            )
        } else {
            self.signature = nil
        }
        let headerLength = cr + 2 - view.startIndex
        self.origin = String(decoding: fields[originField], as: UTF8.self)
        self.sequence = sequence
        self.channels = channels
        self.message = payload.getSlice(at: payload.readerIndex + headerLength, length: payload.readableBytes - headerLength)!
    }

    init(origin: String, sequence: UInt64, channels: [String], message: ByteBuffer, signature: Signature? = nil) {
        self.origin = origin
        self.sequence = sequence
        self.channels = channels
        self.message = message
        self.signature = signature
    }
}
