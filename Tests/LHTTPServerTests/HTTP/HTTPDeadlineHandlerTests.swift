import Logging
import NIOCore
import NIOEmbedded
@testable import LHTTPServer
import Testing

/// The HTTP request clock on an `EmbeddedChannel`, in virtual time: no test waits for a real second.
@Suite("HTTP deadlines on EmbeddedChannel")
struct HTTPDeadlineHandlerTests {
    final class Harness {
        let loop = EmbeddedEventLoop()
        let channel: EmbeddedChannel
        let handler: HTTPDeadlineHandler

        init(request: TimeAmount = .seconds(1), keepalive: TimeAmount = .seconds(5)) throws {
            self.channel = EmbeddedChannel(loop: self.loop)
            self.handler = HTTPDeadlineHandler(requestTimeout: request, keepaliveTimeout: keepalive, logger: Logger(label: "test"))
            try self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try self.channel.pipeline.syncOperations.addHandler(self.handler)
        }

        func send(_ text: String) throws {
            try self.channel.writeInbound(ByteBuffer(string: text))
            _ = try self.channel.readInbound(as: ByteBuffer.self)  // passed on to the HTTP decoder
        }

        var written: String {
            var text = ""
            while let buffer = try? self.channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
            return text
        }
    }

    @Test func aConnectionThatSendsNothingGets408AtTheRequestTimeout() throws {
        let harness = try Harness()
        harness.loop.advanceTime(by: .milliseconds(999))
        #expect(harness.channel.isActive)
        harness.loop.advanceTime(by: .milliseconds(1))
        #expect(harness.written.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        #expect(!harness.channel.isActive)
    }

    @Test func tricklingBytesDoesNotExtendTheRequestsTime() throws {
        let harness = try Harness()
        harness.loop.advanceTime(by: .milliseconds(500))
        for byte in "GET / HTTP/1.1\r\nX-Slow: aaaa".utf8 {
            guard harness.channel.isActive else { break }
            try harness.send(String(UnicodeScalar(byte)))
            harness.loop.advanceTime(by: .milliseconds(20))
        }
        // The clock started with the connection: the head was not complete 1 s later.
        #expect(!harness.channel.isActive)
        let response = harness.written
        #expect(response.hasPrefix("HTTP/1.1 408"))
        #expect(response.contains("\"status\":408"))
        #expect(response.contains("connection: close"))
    }

    @Test func aCompleteRequestStopsTheClockAndAnIdleKeepAliveConnectionIsClosedQuietly() throws {
        let harness = try Harness(request: .seconds(1), keepalive: .seconds(5))
        try harness.send("GET /healthz HTTP/1.1\r\n\r\n")
        harness.handler.requestComplete()
        // Answering takes as long as it takes: no timer runs.
        harness.loop.advanceTime(by: .seconds(30))
        #expect(harness.channel.isActive)
        harness.handler.responseComplete()
        harness.loop.advanceTime(by: .milliseconds(4999))
        #expect(harness.channel.isActive)
        harness.loop.advanceTime(by: .milliseconds(1))
        #expect(!harness.channel.isActive)
        #expect(harness.written.isEmpty, "an idle close writes nothing")
    }

    @Test func aPipelinedRequestGetsItsOwnClockWhenThePreviousAnswerIsOut() throws {
        let harness = try Harness(request: .seconds(1), keepalive: .seconds(5))
        try harness.send("GET /a HTTP/1.1\r\n\r\n")
        harness.handler.requestComplete()
        try harness.send("GET /b HTTP/1.1\r\n")  // the next one starts arriving while /a is answered
        harness.loop.advanceTime(by: .seconds(3))
        harness.handler.responseComplete()
        harness.loop.advanceTime(by: .milliseconds(999))
        #expect(harness.channel.isActive)
        harness.loop.advanceTime(by: .milliseconds(1))
        #expect(harness.written.hasPrefix("HTTP/1.1 408"))
    }
}
