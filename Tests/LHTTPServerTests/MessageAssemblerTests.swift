import NIOCore
import NIOWebSocket
import Testing

@testable import LHTTPServer

@Suite("Message assembler")
struct MessageAssemblerTests {
    func bytes(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    @Test func unfragmentedPassesThrough() throws {
        var assembler = MessageAssembler(maxMessageBytes: 10)
        #expect(try assembler.receive(opcode: .text, fin: true, payload: bytes("hello")) == bytes("hello"))
    }

    @Test func fragmentsAreJoined() throws {
        var assembler = MessageAssembler(maxMessageBytes: 10)
        #expect(try assembler.receive(opcode: .binary, fin: false, payload: bytes("ab")) == nil)
        #expect(try assembler.receive(opcode: .continuation, fin: false, payload: bytes("cd")) == nil)
        #expect(try assembler.receive(opcode: .continuation, fin: true, payload: bytes("ef")) == bytes("abcdef"))
        // And the next message starts clean.
        #expect(try assembler.receive(opcode: .text, fin: true, payload: bytes("x")) == bytes("x"))
    }

    @Test func limits() throws {
        var big = MessageAssembler(maxMessageBytes: 5)
        _ = try big.receive(opcode: .text, fin: false, payload: bytes("abc"))
        #expect(throws: MessageAssembler.Error.messageTooBig) { try big.receive(opcode: .continuation, fin: true, payload: bytes("def")) }
        var many = MessageAssembler(maxMessageBytes: 100, maxFragments: 3)
        _ = try many.receive(opcode: .text, fin: false, payload: bytes("a"))
        _ = try many.receive(opcode: .continuation, fin: false, payload: bytes("b"))
        _ = try many.receive(opcode: .continuation, fin: false, payload: bytes("c"))
        #expect(throws: MessageAssembler.Error.tooManyFragments) { try many.receive(opcode: .continuation, fin: true, payload: bytes("d")) }
    }

    @Test func protocolViolations() throws {
        var orphan = MessageAssembler(maxMessageBytes: 10)
        #expect(throws: MessageAssembler.Error.unexpectedContinuation) { try orphan.receive(opcode: .continuation, fin: true, payload: bytes("x")) }
        var interleaved = MessageAssembler(maxMessageBytes: 10)
        _ = try interleaved.receive(opcode: .text, fin: false, payload: bytes("a"))
        #expect(throws: MessageAssembler.Error.interleavedMessage) { try interleaved.receive(opcode: .text, fin: true, payload: bytes("b")) }
    }
}

@Suite("Unmasking")
struct UnmaskTests {
    @Test(arguments: Array(0...33))
    func wordWiseUnmaskMatchesNIO(length: Int) {
        let key = WebSocketMaskingKey([0x12, 0x9A, 0xFF, 0x01])!
        let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 5) }
        var ours = ByteBuffer(bytes: bytes)
        var theirs = ByteBuffer(bytes: bytes)
        ours.unmask(key)
        theirs.webSocketUnmask(key)
        #expect(ours == theirs)
        if length > 0 { #expect(ours != ByteBuffer(bytes: bytes)) }
    }
}
