import Foundation
import LHTTPConfig
import LHTTPTestSupport
import Testing

/// RFC 6455 on input, over a real socket: raw frames that no well-behaved client sends, and the close
/// code each one gets (the cases of the standard conformance suite's sections 3, 6 and 7).
@Suite("RFC 6455 conformance over a real socket")
struct ConformanceTests {
    static let cases: [(name: String, frames: [[UInt8]], code: UInt16)] = [
        ("RSV1 set", [RawFrames.client(opcode: 0x1, payload: Array("x".utf8), rsv: 0b100)], 1002),
        ("RSV2 on a ping", [RawFrames.client(opcode: 0x9, rsv: 0b010)], 1002),
        ("unmasked", [RawFrames.client(opcode: 0x1, payload: Array("x".utf8), masked: false)], 1002),
        ("reserved opcode 5", [RawFrames.client(opcode: 0x5)], 1002),
        ("reserved opcode 13", [RawFrames.client(opcode: 0xD)], 1002),
        ("invalid UTF-8", [RawFrames.client(opcode: 0x1, payload: [0xF4, 0x90, 0x80, 0x80])], 1007),
        ("invalid UTF-8 in the 2nd fragment, no fin",
         [RawFrames.client(opcode: 0x1, payload: Array("ok".utf8), fin: false), RawFrames.client(opcode: 0x0, payload: [0xC0, 0xAF], fin: false)], 1007),
        ("a code point left open at the end", [RawFrames.client(opcode: 0x1, payload: [0xE2, 0x82])], 1007),
        ("close with 1 byte", [RawFrames.client(opcode: 0x8, payload: [0x03])], 1002),
        ("close 1005", [RawFrames.close(code: 1005)], 1002),
        ("close 1006", [RawFrames.close(code: 1006)], 1002),
        ("close 1015", [RawFrames.close(code: 1015)], 1002),
        ("close 0", [RawFrames.close(code: 0)], 1002),
        ("close 2000", [RawFrames.close(code: 2000)], 1002),
        ("close reason not UTF-8", [RawFrames.close(code: 1000, reason: [0xCE, 0xBA, 0xED, 0xA0, 0x80])], 1002),
        ("close 3000 echoed", [RawFrames.close(code: 3000, reason: Array("done".utf8))], 3000),
        ("close 1012 echoed", [RawFrames.close(code: 1012)], 1012),
    ]

    @Test(arguments: Self.cases)
    func eachViolationGetsItsCloseCode(name: String, frames: [[UInt8]], code: UInt16) async throws {
        try await TestServer.with { server in
            let raw = try await RawConnection.websocket(port: server.port)
            try await eventually { raw.text.contains("101 Switching Protocols") }
            for frame in frames { try await raw.send(frame) }
            try await eventually { raw.frames.contains { $0.opcode == 0x8 } }
            #expect(raw.frames.first { $0.opcode == 0x8 }?.closeCode == code, "\(name)")
            // The server ends the TCP connection after its close frame (half-close, then close).
            try await eventually { raw.isClosed }
            await raw.close()
        }
    }

    @Test func theDisconnectHookHearsValidatedCodesOnly() async throws {
        let backend = try await TestBackend.start()
        try await TestServer.with({ $0.hooks.disconnect = "http://127.0.0.1:\(backend.port)/disconnect" }) { server in
            for code: UInt16 in [1005, 4000, 999] {
                let raw = try await RawConnection.websocket(port: server.port)
                try await eventually { raw.text.contains("101 Switching Protocols") }
                try await raw.send(RawFrames.close(code: code))
                try await eventually { raw.isClosed }
            }
            let events = try await backend.waitForRequests(3)
            let codes = try events.map { event -> Int in
                let json = try JSONSerialization.jsonObject(with: Data(event.body.utf8)) as? [String: Any]
                return json?["code"] as? Int ?? -1
            }
            // Invalid codes from the client never reach the app: it hears the 1002 the server sent.
            #expect(codes.sorted() == [1002, 1002, 4000])
        }
        await backend.stop()
    }
}
