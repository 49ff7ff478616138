@testable import LHTTPNATS
import NIOCore
import Testing

/// The pure parts of the client: the connection state machine, the backoff, the outbox (the envelope: `NATSTrustTests`).
@Suite("NATS client state")
struct NATSStateTests {
    @Test func handshakeThenPingsThenMessages() {
        var machine = NATSConnectionStateMachine()
        #expect(machine.received(.ping) == .fail(.protocolViolation("the server did not start with INFO")))

        machine = NATSConnectionStateMachine()
        #expect(machine.received(.info(#"{"server_id":"x","max_payload":4096}"#)) == .sendConnect(maxPayload: 4096))
        #expect(machine.received(.ok) == .none)
        #expect(machine.received(.ping) == .answerPing)
        #expect(machine.received(.message(NATSMessage(subject: "a", sid: 1, replyTo: nil, payload: ByteBuffer()))) == .fail(.protocolViolation("MSG before the handshake completed")))

        machine = NATSConnectionStateMachine()
        _ = machine.received(.info("{}"))
        #expect(machine.received(.pong) == .becomeReady(maxPayload: 1 << 20))
        #expect(machine.state == .ready)
        // A PONG nobody asked for is ignored; ours complete in order.
        #expect(machine.received(.pong) == .none)
        machine.pingSent()
        machine.pingSent()
        #expect(machine.outstandingPings == 2)
        #expect(machine.received(.pong) == .completePing)
        #expect(machine.outstandingPings == 1)
        #expect(machine.received(.info(#"{"connect_urls":["x"]}"#)) == .none)
        let payload = ByteBuffer(string: "hi")
        #expect(machine.received(.message(NATSMessage(subject: "a", sid: 7, replyTo: nil, payload: payload))) == .deliver(NATSMessage(subject: "a", sid: 7, payload: payload)))
        #expect(machine.received(.error("Permissions Violation for Subscription to \"lhttp.x\"")) == .report(.server("Permissions Violation for Subscription to \"lhttp.x\"")))
        #expect(machine.state == .ready)
        #expect(machine.received(.error("Authorization Violation")) == .fail(.server("Authorization Violation")))
        #expect(machine.state == .failed)
        #expect(machine.received(.ping) == .none)
    }

    @Test func authorizationErrorDuringTheHandshakeFails() {
        var machine = NATSConnectionStateMachine()
        _ = machine.received(.info(#"{"auth_required":true}"#))
        #expect(machine.received(.error("Authorization Violation")) == .fail(.server("Authorization Violation")))
    }

    @Test func backoffGrowsWithJitterUpToTheMaximumAndResets() {
        var backoff = NATSBackoff(minimumMs: 100, maximumMs: 1000)
        var delays: [Int] = []
        for _ in 0..<40 { delays.append(backoff.nextDelayMs()) }
        // Attempt n waits in [ceiling/2, ceiling], ceiling = min(1000, 100 * 2^n).
        for (attempt, delay) in delays.enumerated() {
            let ceiling = min(1000, 100 << min(attempt, 20))
            #expect(delay >= ceiling / 2 && delay <= ceiling, "attempt \(attempt): \(delay)")
        }
        #expect(Set(delays.suffix(30)).count > 1, "jittered")
        backoff.reset()
        #expect(backoff.nextDelayMs() <= 100)
    }

    @Test func outboxQueuesUntilOpenDrainsOncePerTickAndDropsPastItsLimit() {
        var outbox = NATSOutbox(limit: 200)
        let payload = ByteBuffer(string: String(repeating: "x", count: 40))
        #expect(outbox.append(subjects: ["s.a"], payload: payload) == .queued)
        #expect(outbox.take() == nil, "closed: nothing leaves")
        let mustDrain = outbox.setOpen(true)
        #expect(mustDrain, "opening with bytes waiting asks for a drain")
        #expect(outbox.append(subjects: ["s.b"], payload: payload) == .queued, "a drain is already scheduled")
        let taken = outbox.take()
        #expect(taken.map { String(buffer: $0) } == "PUB s.a 40\r\n\(String(buffer: payload))\r\nPUB s.b 40\r\n\(String(buffer: payload))\r\n")
        #expect(outbox.append(subjects: ["s.c"], payload: payload) == .scheduleDrain)
        _ = outbox.take()
        _ = outbox.setOpen(false)
        // All or none: three copies do not fit together after two single ones.
        #expect(outbox.append(subjects: ["s.a"], payload: payload) == .queued)
        #expect(outbox.append(subjects: ["s.a"], payload: payload) == .queued)
        #expect(outbox.append(subjects: ["s.a", "s.b", "s.c"], payload: payload) == .dropped(first: true))
        #expect(outbox.append(subjects: ["s.a", "s.b", "s.c"], payload: payload) == .dropped(first: false))
        #expect(outbox.droppedMessages == 6)
        #expect(outbox.pendingBytes <= 200)
        #expect(outbox.publishedMessages == 5)
    }
}
