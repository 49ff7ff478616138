import Foundation
import LHTTPClient
import LHTTPConfig
import LHTTPTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// Plain HTTP against a hostile client over real sockets: pipelining without ever reading, a malformed
/// request, symlinks out of `static_dir`; and next to each, the legitimate case still served.
/// Serialized: one test measures this process's resident memory.
@Suite("HTTP pipelining bounds", .serialized)
struct HTTPPipeliningBoundsTests {
    // MARK: A client that pipelines and never reads

    @Test func pipelinedRequestsAreNotAnsweredFasterThanTheClientReads() async throws {
        try await TestServer.with({
            $0.limits.socketSendBufferBytes = 64 << 10
            $0.http.requestTimeoutS = 600  // the attacker reads only at the end: no 408 meanwhile
        }) { server in
            let count = 32_000
            let attacker = try await RawConnection.connect(port: server.port, reading: false, receiveBuffer: 4096)
            // 1.15 MB of requests, more than one read cycle of the server (16 reads of at most 64 KiB). Not
            // awaited: the server may stop reading them.
            let requests = String(repeating: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", count: count)
            attacker.channel.writeAndFlush(ByteBuffer(string: requests), promise: nil)
            try await Self.waitFor { try await Self.answered(server, route: "healthz") >= 1 }

            // A well-behaved client pipelines 100 requests meanwhile and reads: all answered.
            let polite = try await RawConnection.connect(port: server.port)
            try await polite.send((0..<100).map { "GET /healthz?n=\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined())
            try await server.eventually(timeout: .seconds(20)) { Self.responses(in: polite.received).count == 100 }
            #expect(Self.responses(in: polite.received).allSatisfy { $0.status == 200 })
            let answerSize = polite.receivedCount / 100
            await polite.close()

            // What the attacker got answered is what fits in its buffers, not what it sent: NIO holds at most
            // 64 KiB + one answer, the server's kernel buffer 2 × 64 KiB (Linux doubles SO_SNDBUF), the
            // attacker's 2 × 4 KiB; at ~135 bytes an answer that is ~1,500 answers. Unbounded, all 32,000.
            let queued = try await Self.answered(server, route: "healthz") - 100
            #expect(queued < 5_000, "\(queued) answers queued for a client that reads nothing")

            // Once it reads, answering resumes at its pace: 2,000 answers, each the same 200 (not all 32,000:
            // this test client's debug-build pace would take seconds).
            try await attacker.startReading()
            let resumed = 2_000
            try await server.eventually(timeout: .seconds(60)) { attacker.receivedCount >= resumed * answerSize }
            await attacker.close()
            // Every /healthz answer is the same bytes (no websocket is open): compared as whole buffers.
            let received = attacker.received
            let first = received.prefix(answerSize)
            #expect(String(decoding: first, as: UTF8.self).hasPrefix("HTTP/1.1 200 "))
            var expected = ByteBuffer()
            for _ in 0..<resumed { expected.writeBytes(first) }
            #expect(ByteBuffer(bytes: received.prefix(resumed * answerSize)) == expected)
        }
    }

    @Test func aStaticFilePipelinedToAClientThatNeverReadsIsSentFromTheFileOneAtATime() async throws {
        let dir = try Self.staticDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let content = Self.randomBytes(4 << 20)
        let path = dir.appendingPathComponent("big.bin").path
        try Data(content).write(to: URL(fileURLWithPath: path))
        try await TestServer.with({
            $0.staticDir = dir.path
            $0.limits.socketSendBufferBytes = 64 << 10
            $0.http.requestTimeoutS = 600
        }) { server in
            // Another client downloads it whole, and HEAD gives its length without a body.
            let http = try await server.publisher()
            try await Self.download(content, with: http)
            let head = try await http.request(method: .HEAD, path: "/big.bin")
            #expect(head.status == 200)
            #expect(head.header("content-length") == String(content.count))
            #expect(head.body.readableBytes == 0)

            let before = try Self.residentBytes()
            let attacker = try await RawConnection.connect(port: server.port, reading: false, receiveBuffer: 4096)
            try await attacker.send(String(repeating: "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n", count: 100))
            try await Self.waitFor { try await Self.answered(server, route: "static") >= 3 }
            // Meanwhile the other client is served as before.
            try await Self.download(content, with: http)
            try await http.close()

            // 4 MiB does not fit in the attacker's buffers: its first answer is still being sent, and nothing
            // after it was read from the file. Unbounded, all 100 were read into memory (400 MB).
            let queued = try await Self.answered(server, route: "static") - 3
            #expect((1...2).contains(queued), "\(queued) files queued for a client that reads nothing")
            let growth = try Self.residentBytes() - before
            #expect(growth < 64 << 20, "resident memory grew by \(growth >> 20) MiB")

            // Its close releases the file it was being sent.
            let opened = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            #expect(Self.openDescriptors(on: opened) == 1)
            await attacker.close()
            try await server.eventually(timeout: .seconds(20)) { Self.openDescriptors(on: opened) == 0 }
        }
    }

    /// The pipelining reader that never reads is not kept forever: the request held behind its unread
    /// answers runs out of `http.request_timeout_s`, its 408 cannot go out either, and after
    /// `websocket.close_timeout_s` the connection is reset, so the server keeps no socket for it.
    @Test func aPipeliningClientThatNeverReadsIsResetAfterTheRequestTimeout() async throws {
        try await TestServer.with({
            $0.limits.socketSendBufferBytes = 64 << 10
            $0.http.requestTimeoutS = 0.5
            $0.websocket.closeTimeoutS = 0.5
        }) { server in
            let attacker = try await RawConnection.connect(port: server.port, reading: false, receiveBuffer: 4096)
            let clientPort = try #require(attacker.channel.localAddress?.port)
            attacker.channel.writeAndFlush(
                ByteBuffer(string: String(repeating: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", count: 32_000)), promise: nil
            )
            try await Self.waitFor { try await Self.answered(server, route: "healthz") >= 1 }
            // Established, then gone (awaited, and gone in two reads in a row: one read of /proc/net/tcp can
            // skip or repeat a row while other sockets come and go).
            try await server.eventually { (try? SlowConsumerTests.serverSockets(port: server.port, clientPort: clientPort)) == ["01"] }
            try await server.eventually(timeout: .seconds(20)) {
                (try? SlowConsumerTests.serverSockets(port: server.port, clientPort: clientPort))?.isEmpty == true
                    && (try? SlowConsumerTests.serverSockets(port: server.port, clientPort: clientPort))?.isEmpty == true
            }
            await attacker.close()
        }
    }

    @Test func pipelinedRequestsReadProperlyAreAllAnsweredInOrder() async throws {
        let dir = try Self.staticDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        for index in 0..<100 {
            try Data("file \(index)\n".utf8).write(to: dir.appendingPathComponent("f\(index).txt"))
        }
        try await TestServer.with({ $0.staticDir = dir.path }) { server in
            let client = try await RawConnection.connect(port: server.port)
            // Static files (answered off the loop) with /healthz (answered at once) in between.
            let paths = (0..<100).map { $0 % 10 == 5 ? "/healthz" : "/f\($0).txt" }
            try await client.send(paths.map { "GET \($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined())
            try await server.eventually(timeout: .seconds(20)) { Self.responses(in: client.received).count == 100 }
            let answers = Self.responses(in: client.received)
            for (index, answer) in answers.enumerated() {
                #expect(answer.status == 200)
                let body = String(decoding: answer.body, as: UTF8.self)
                if index % 10 == 5 {
                    #expect(body.contains("\"status\":\"ok\""), "answer \(index)")
                } else {
                    #expect(body == "file \(index)\n", "answer \(index)")
                }
            }
            #expect(!client.isClosed)
            await client.close()
        }
    }

    // MARK: A malformed request

    @Test func aMalformedRequestGets400AndTheConnectionClosesAtOnce() async throws {
        try await TestServer.with({ $0.http.requestTimeoutS = 600 }) { server in
            let raw = try await RawConnection.connect(port: server.port)
            try await raw.send("GET /healthz HTTP/1.1\r\nHost: x\r\nno colon in this line\r\n\r\n")
            // Closed right after the 400, not at the request timeout (600 s) with a second answer.
            try await server.eventually(timeout: .seconds(20)) { raw.isClosed }
            #expect(raw.text.hasPrefix("HTTP/1.1 400"))
            #expect(raw.text.lowercased().contains("connection: close"))
            #expect(raw.text.components(separatedBy: "HTTP/1.1 ").count == 2, "one answer: \(raw.text)")

            // A well-formed request on another connection stays keep-alive.
            let good = try await RawConnection.connect(port: server.port)
            try await good.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            try await server.eventually(timeout: .seconds(20)) { good.text.contains("\"status\":\"ok\"") }
            try await good.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            try await server.eventually(timeout: .seconds(20)) { Self.responses(in: good.received).count == 2 }
            #expect(!good.isClosed)
            await good.close()
            await raw.close()
        }
    }

    // MARK: Symlinks in static_dir

    @Test func symlinksAreServedOnlyWhenTheyResolveInsideStaticDir() async throws {
        let dir = try Self.staticDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = FileManager.default
        try Data("inside\n".utf8).write(to: dir.appendingPathComponent("inside.txt"))
        try files.createDirectory(at: dir.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try Data("sub\n".utf8).write(to: dir.appendingPathComponent("sub/a.txt"))
        try files.createSymbolicLink(atPath: dir.appendingPathComponent("link.txt").path, withDestinationPath: "inside.txt")
        try files.createSymbolicLink(atPath: dir.appendingPathComponent("sublink").path, withDestinationPath: "sub")
        try files.createSymbolicLink(atPath: dir.appendingPathComponent("etc").path, withDestinationPath: "/etc")
        try files.createSymbolicLink(atPath: dir.appendingPathComponent("passwd").path, withDestinationPath: "/etc/passwd")
        // static_dir itself may be a symlink: what counts is where it resolves.
        let rootLink = dir.path + "-link"
        try files.createSymbolicLink(atPath: rootLink, withDestinationPath: dir.path)
        defer { try? files.removeItem(atPath: rootLink) }

        for root in [dir.path, rootLink] {
            try await TestServer.with({ $0.staticDir = root }) { server in
                let http = try await server.publisher()
                for (path, body) in [("/inside.txt", "inside\n"), ("/link.txt", "inside\n"), ("/sub/a.txt", "sub\n"), ("/sublink/a.txt", "sub\n")] {
                    let response = try await http.request(method: .GET, path: path)
                    #expect(response.status == 200, "\(path) in \(root)")
                    #expect(response.bodyString == body, "\(path) in \(root)")
                }
                for path in ["/etc/passwd", "/etc/hostname", "/passwd", "/etc/"] {
                    #expect(try await http.request(method: .GET, path: path).status == 404, "\(path) in \(root)")
                    #expect(try await http.request(method: .HEAD, path: path).status == 404, "HEAD \(path) in \(root)")
                }
                try await http.close()
            }
        }
    }

    // MARK: Helpers

    static func download(_ content: [UInt8], with http: HTTPPublisher) async throws {
        let response = try await http.request(method: .GET, path: "/big.bin")
        #expect(response.status == 200)
        #expect(response.header("content-length") == String(content.count))
        #expect(response.body == ByteBuffer(bytes: content), "the download is intact")
    }

    /// `lhttp_http_requests_total` of one route and status, as the server counts answers: when a response is
    /// queued, not when it is read.
    static func answered(_ server: TestServer, route: String, status: Int = 200) async throws -> Int {
        let scrape = try await MetricsTests.scrape(server)
        return Int(scrape.values["lhttp_http_requests_total{route=\"\(route)\",status=\"\(status)\"}"] ?? 0)
    }

    /// Polls an async `condition` every 10 ms for up to `timeout`.
    static func waitFor(timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw TestFailure("condition not met within \(timeout)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// This process's resident memory (the server runs in it), from `/proc/self/status`.
    static func residentBytes() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { throw TestFailure("no VmRSS in /proc/self/status") }
        return kilobytes * 1024
    }

    /// Descriptors this process holds open on `path` (the server's static file handles).
    static func openDescriptors(on path: String) -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.count { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) == path }
    }

    /// A fresh `static_dir`; the caller removes it.
    static func staticDir() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lhttpd-static-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        let words = (0..<(count + 7) / 8).map { _ in generator.next() as UInt64 }
        return words.withUnsafeBytes { Array($0.prefix(count)) }
    }

    /// The responses in `bytes`, split by their `Content-Length` (every answer here has one, and none is to
    /// a HEAD); a trailing incomplete response is left out.
    static func responses(in bytes: [UInt8]) -> [(status: Int, body: ArraySlice<UInt8>)] {
        var result: [(status: Int, body: ArraySlice<UInt8>)] = []
        let separator = Array("\r\n\r\n".utf8)
        var index = 0
        while index < bytes.count, let end = bytes[index...].firstRange(of: separator)?.upperBound {
            let head = String(decoding: bytes[index..<end], as: UTF8.self)
            let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
            let lengthLine = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            let length = lengthLine.flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
            guard end + length <= bytes.count else { break }
            result.append((status, bytes[end..<(end + length)]))
            index = end + length
        }
        return result
    }
}
