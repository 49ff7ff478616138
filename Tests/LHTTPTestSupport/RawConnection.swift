import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A plain TCP connection for tests that must misbehave on purpose (trickle bytes, never answer pings):
/// it records everything received and whether the server closed.
public final class RawConnection: Sendable {
    public let channel: any Channel
    private let state: NIOLockedValueBox<Record>

    struct Record {
        var bytes: [UInt8] = []
        var closed = false
        /// The first error the connection saw (a reset shows up as `ECONNRESET`).
        var error: String?
    }

    private init(channel: any Channel, state: NIOLockedValueBox<Record>) {
        self.channel = channel
        self.state = state
    }

    /// - Parameter reading: false makes a client that never reads (until ``startReading()``): the server's
    /// writes pile up in the kernel buffers, as with a client that stopped reading.
    public static func connect(port: Int, reading: Bool = true, receiveBuffer: Int? = nil) async throws -> RawConnection {
        let state = NIOLockedValueBox<Record>(Record())
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).channelOption(.autoRead, value: reading)
        if let receiveBuffer { bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBuffer)) }
        let channel = try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Recorder(state: state)) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawConnection(channel: channel, state: state)
    }

    public func send(_ text: String) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(string: text))
    }

    public func send(_ bytes: [UInt8]) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    public var received: [UInt8] { self.state.withLockedValue { $0.bytes } }
    /// How many bytes were received (without copying them).
    public var receivedCount: Int { self.state.withLockedValue { $0.bytes.count } }
    public var text: String { String(decoding: self.received, as: UTF8.self) }
    public var isClosed: Bool { self.state.withLockedValue { $0.closed } }
    /// The first error seen, if any.
    public var error: String? { self.state.withLockedValue { $0.error } }

    /// Reads from now on (a client made with `reading: false`).
    public func startReading() async throws {
        try await self.channel.setOption(.autoRead, value: true).get()
        self.channel.read()
    }

    /// The frames the server sent after its 101 response.
    public var frames: [RawFrames.ServerFrame] {
        let bytes = self.received
        guard let end = self.text.range(of: "\r\n\r\n")?.upperBound else { return [] }
        return RawFrames.serverFrames(Array(bytes[self.text.utf8.distance(from: self.text.startIndex, to: end)...]))
    }

    /// Upgrades to a websocket on `path` (no extension, no pong ever sent by this client).
    public static func websocket(port: Int, path: String = "/ws", extraHeaders: String = "", reading: Bool = true, receiveBuffer: Int? = nil) async throws -> RawConnection {
        let connection = try await RawConnection.connect(port: port, reading: reading, receiveBuffer: receiveBuffer)
        try await connection.send(
            "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\(extraHeaders)\r\n"
        )
        return connection
    }

    /// Sends one masked text frame (mask key 0: the payload goes as is).
    public func sendTextFrame(_ text: String) async throws {
        let payload = Array(text.utf8)
        precondition(payload.count < 126)
        try await self.send([0x81, 0x80 | UInt8(payload.count), 0, 0, 0, 0] + payload)
    }

    /// The status code of the first close frame the server sent, if any (frames after the 101 response).
    public var closeCode: UInt16? {
        let bytes = self.received
        guard let end = self.text.range(of: "\r\n\r\n")?.upperBound else { return nil }
        var index = self.text.utf8.distance(from: self.text.startIndex, to: end)
        while index + 2 <= bytes.count {
            let opcode = bytes[index] & 0x0F
            var length = Int(bytes[index + 1] & 0x7F)
            var header = 2
            if length == 126 {
                guard index + 4 <= bytes.count else { return nil }
                length = Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
                header = 4
            } else if length == 127 {
                return nil
            }
            if opcode == 0x8 {
                guard length >= 2, index + header + 2 <= bytes.count else { return nil }
                return UInt16(bytes[index + header]) << 8 | UInt16(bytes[index + header + 1])
            }
            index += header + length
        }
        return nil
    }

    /// Opcodes of the frames received after the 101 response.
    public var opcodes: [UInt8] {
        let bytes = self.received
        guard let end = self.text.range(of: "\r\n\r\n")?.upperBound else { return [] }
        var index = self.text.utf8.distance(from: self.text.startIndex, to: end)
        var opcodes: [UInt8] = []
        while index + 2 <= bytes.count {
            let length = Int(bytes[index + 1] & 0x7F)
            guard length < 126 else { break }
            opcodes.append(bytes[index] & 0x0F)
            index += 2 + length
        }
        return opcodes
    }

    public func close() async {
        try? await self.channel.close()
    }

    private final class Recorder: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let state: NIOLockedValueBox<Record>
        init(state: NIOLockedValueBox<Record>) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = Self.unwrapInboundIn(data)
            self.state.withLockedValue { $0.bytes.append(contentsOf: bytes.readableBytesView) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.state.withLockedValue { $0.closed = true }
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            self.state.withLockedValue { if $0.error == nil { $0.error = "\(error)" } }
            context.close(promise: nil)
        }
    }
}
