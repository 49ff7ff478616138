import LHTTPGateway
import LHTTPProtocol
import NIOCore

/// An in-memory transport for unit tests of the gateway (the socket path has its own end-to-end tests).
final class RecordingTransport: SessionTransport {
    var written: [ByteBuffer] = []
    var flushed: [ByteBuffer] = []
    var flushCount = 0
    var closedWith: (code: UInt16, reason: String)?

    func writeFrame(_ frame: ByteBuffer) { self.written.append(frame) }

    func flush() {
        self.flushCount += 1
        self.flushed.append(contentsOf: self.written)
        self.written.removeAll()
    }

    func close(code: UInt16, reason: String) { self.closedWith = (code, reason) }

    /// The LHTTP messages of the flushed frames (frames are short: 2- or 4-byte headers here).
    func messages() throws -> [LHTTPMessage] {
        try self.flushed.map { frame in
            var frame = frame
            _ = frame.readInteger(as: UInt8.self)
            let length = frame.readInteger(as: UInt8.self)!
            if length == 126 { _ = frame.readInteger(as: UInt16.self) }
            return try LHTTPParser().parse(frame)
        }
    }
}
