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

    /// Checks the command and every header against ``LHTTPFieldRules``: what the serializer refuses to write.
    public func validateFields() throws(LHTTPProtocolError) {
        guard LHTTPFieldRules.isValidCommand(self.command) else { throw .invalidCommand(self.command) }
        for header in self.headers {
            guard LHTTPFieldRules.isValidHeaderName(header.name) else { throw .invalidHeaderName(header.name) }
            guard LHTTPFieldRules.isValidHeaderValue(header.value) else { throw .invalidHeaderValue(name: header.name) }
        }
    }

    /// Appends the wire form to `buffer`: start line, `key:value` lines in order, a blank line, the body.
    ///
    /// The blank line is always written, so the output parses back to an equal message.
    /// - Throws: when the command, a header name or a header value could change the message's structure
    ///   (a line end, NUL, a `:` or a space in a name: ``LHTTPFieldRules``); nothing is written then.
    public func write(to buffer: inout ByteBuffer) throws(LHTTPProtocolError) {
        try self.validateFields()
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

    /// The wire form in a new buffer from `allocator`. - Throws: as ``write(to:)``.
    public func serialized(allocator: ByteBufferAllocator = ByteBufferAllocator()) throws(LHTTPProtocolError) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: self.serializedByteCount)
        try self.write(to: &buffer)
        return buffer
    }
}
