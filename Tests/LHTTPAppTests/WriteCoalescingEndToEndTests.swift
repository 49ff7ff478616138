import LHTTPClient
import LHTTPProtocol
import LHTTPTestSupport
import NIOCore
import Testing

@Suite("Write coalescing over real sockets")
struct WriteCoalescingEndToEndTests {
    /// Independent HTTP publishers, each posting and waiting for its answer, to subscribers on one
    /// channel: with coalescing (the default 1 ms) and without, every subscriber gets every message once,
    /// each publisher's messages in the order it sent them.
    @Test(arguments: [0, 1000])
    func independentPublishersReachEverySubscriberOnceAndInOrder(coalescingUs: Int) async throws {
        try await TestServer.with({ $0.websocket.writeCoalescingUs = coalescingUs }) { server in
            let publishers = 4
            let perPublisher = 50
            var subscribers: [LHTTPWebSocketClient] = []
            for _ in 0..<3 {
                let client = try await server.client()
                try await server.subscribe(client, "feed")
                subscribers.append(client)
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for publisher in 0..<publishers {
                    group.addTask {
                        let http = try await server.publisher()
                        for index in 0..<perPublisher {
                            let response = try await http.request(path: "/publish?channel=feed", body: ByteBuffer(string: "\(publisher).\(index)"))
                            guard response.status == 200 else { throw TestFailure("publish answered \(response.status)") }
                        }
                        try await http.close()
                    }
                }
                try await group.waitForAll()
            }
            for subscriber in subscribers {
                var next = [Int](repeating: 0, count: publishers)
                for _ in 0..<(publishers * perPublisher) {
                    let parts = try await subscriber.nextMessage().bodyString.split(separator: ".").compactMap { Int($0) }
                    #expect(parts.count == 2)
                    guard parts.count == 2, parts[0] < publishers else { continue }
                    #expect(parts[1] == next[parts[0]], "publisher \(parts[0]) out of order")
                    next[parts[0]] = parts[1] + 1
                }
                #expect(next == [Int](repeating: perPublisher, count: publishers))
                try await server.roundTrip(subscriber)  // nothing more (a duplicate would come first)
                try await subscriber.close()
            }
        }
    }
}
