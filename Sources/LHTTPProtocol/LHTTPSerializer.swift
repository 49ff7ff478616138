import NIOCore

extension LHTTPMessage {
    /// Exact size in bytes of the serialized message.
    public var serializedByteCount: Int {
        var size = Self.version.utf8.count + 1 + self.command.utf8.count + 2
        for header in self.headers {
            size += header.name.utf8.count + 1 + header.value.utf8.count + 2
        }
        return size + 2 + self.body.readableBytes
    }

    /// Appends the wire form to `buffer`: start line, `key:value` lines in order, a blank line, the body.
    ///
    /// The blank line is always written, so the output parses back to an equal message.
    public func write(to buffer: inout ByteBuffer) {
        buffer.reserveCapacity(minimumWritableBytes: self.serializedByteCount)
        buffer.writeString(Self.version)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(self.command)
        buffer.writeStaticString("\r\n")
        for header in self.headers {
            buffer.writeString(header.name)
            buffer.writeInteger(UInt8(ascii: ":"))
            buffer.writeString(header.value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
        var body = self.body
        buffer.writeBuffer(&body)
    }

    /// The wire form in a new buffer from `allocator`.
    public func serialized(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: self.serializedByteCount)
        self.write(to: &buffer)
        return buffer
    }
}
