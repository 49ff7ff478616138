import LHTTPTestSupport
import LHTTPUpstream
import NIOCore
import Testing

/// The libcurl client against a real HTTP backend: admission as slots free, and connection reuse.
@Suite("Curl client admission and reuse")
struct CurlAdmissionTests {
    /// With an idle poll of an hour, a waiting call that is not admitted the moment a slot frees would sit
    /// in `curl_multi_poll` for that hour: the test's time limit fails it (no wall-clock assertion).
    @Test(.timeLimit(.minutes(1)))
    func aQueuedCallStartsAsSoonAsASlotFrees() async throws {
        let backend = try await TestBackend.start()
        defer { Task { await backend.stop() } }
        var configuration = CurlHTTPClient.Configuration(maxInFlight: 1)
        configuration.idlePollMilliseconds = 3_600_000
        configuration.timeoutMilliseconds = 30_000
        let client = CurlHTTPClient(configuration: configuration)
        let url = "http://127.0.0.1:\(backend.port)/chain"
        // Two at a time with one slot: the second always waits for the first to finish.
        for index in 0..<20 {
            async let first = client.send(UpstreamRequest(method: "POST", url: url, body: ByteBuffer(string: "a\(index)")))
            async let second = client.send(UpstreamRequest(method: "POST", url: url, body: ByteBuffer(string: "b\(index)")))
            #expect(try await first.status == 200)
            #expect(try await second.status == 200)
        }
        await client.shutdown()
        #expect(backend.requests.count == 40)
    }

    @Test func connectionsAreReused() async throws {
        let backend = try await TestBackend.start()
        let client = CurlHTTPClient(configuration: .init(timeoutMilliseconds: 30_000))
        do {
            let url = "http://127.0.0.1:\(backend.port)/reuse"
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        for index in 0..<125 {
                            let response = try await client.send(UpstreamRequest(method: "POST", url: url, body: ByteBuffer(string: "\(worker)-\(index)")))
                            #expect(response.status == 200)
                            #expect(String(buffer: response.body) == "ok")
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(backend.requests.count == 1000)
            #expect(backend.connections <= 16, "1000 requests opened \(backend.connections) connections")
            print("upstream reuse: 1000 requests over \(backend.connections) TCP connections")
        }
        await client.shutdown()
        await backend.stop()
    }
}
