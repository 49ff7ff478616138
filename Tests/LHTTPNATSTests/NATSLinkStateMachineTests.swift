import LHTTPConfig
@testable import LHTTPNATS
import Testing

/// The link's life without sockets or clocks: events in, actions out.
@Suite("NATS link state machine")
struct NATSLinkStateMachineTests {
    typealias Machine = NATSLinkStateMachine

    static let servers = [1, 2, 3].map { NATSServerURL(host: "10.0.0.\($0)", port: 4222) }

    static func machine(servers: [NATSServerURL] = servers) -> Machine {
        Machine(servers: servers, backoff: NATSBackoff(minimumMs: 100, maximumMs: 1000), handshakeTimeoutMs: 2000, pingIntervalMs: 20_000)
    }

    /// The delay of the reconnect `actions` end with (every failure ends with one).
    static func reconnectDelay(_ actions: [Machine.Action]) -> Int? {
        guard case .schedule(.reconnect, let milliseconds)? = actions.last else { return nil }
        return milliseconds
    }

    /// TCP up and handshake done for `attempt`.
    static func bringUp(_ machine: inout Machine, attempt: Int) -> [Machine.Action] {
        _ = machine.connected(attempt: attempt)
        return machine.handshakeCompleted(attempt: attempt, maxPayload: 4096)
    }

    @Test func serversAreTriedInTurnAndTheRotationContinuesAfterALostLink() {
        var machine = Self.machine()
        #expect(machine.start() == [.connect(serverIndex: 0, attempt: 1)])
        #expect(machine.start() == [], "started once")
        #expect(machine.snapshot.state == .connecting)
        var targets = [0]
        for attempt in 1...4 {
            #expect(Self.reconnectDelay(machine.connectFailed(attempt: attempt, reason: "refused \(attempt)")) != nil)
            #expect(machine.snapshot.lastError == "refused \(attempt)")
            #expect(machine.snapshot.state == .connecting, "no handshake yet")
            guard case .connect(let index, let next)? = machine.reconnectTimerFired().first else {
                Issue.record("no connect after the reconnect delay")
                return
            }
            #expect(next == attempt + 1)
            targets.append(index)
        }
        #expect(targets == [0, 1, 2, 0, 1])
        _ = Self.bringUp(&machine, attempt: 5)
        #expect(machine.snapshot.server == "nats://10.0.0.2:4222")
        _ = machine.linkClosed(attempt: 5, reason: "reset")
        #expect(machine.reconnectTimerFired() == [.connect(serverIndex: 2, attempt: 6)])
    }

    @Test func backoffGrowsUntilAHandshakeThenStartsOver() {
        var machine = Self.machine(servers: [Self.servers[0]])
        _ = machine.start()
        var delays: [Int] = []
        for attempt in 1...5 {
            delays.append(Self.reconnectDelay(machine.connectFailed(attempt: attempt, reason: "refused")) ?? -1)
            #expect(machine.reconnectTimerFired() == [.connect(serverIndex: 0, attempt: attempt + 1)])
        }
        // Equal jitter: failure n waits in [c/2, c], c = min(1000, 100 * 2^n).
        for (failure, delay) in delays.enumerated() {
            let ceiling = min(1000, 100 << failure)
            #expect((ceiling / 2...ceiling).contains(delay), "failure \(failure): \(delay) ms")
        }
        #expect(machine.failures == 5)
        _ = Self.bringUp(&machine, attempt: 6)
        #expect(machine.failures == 0)
        #expect(machine.snapshot.state == .connected)
        #expect(machine.snapshot.connections == 1)
        let lost = machine.linkClosed(attempt: 6, reason: "reset")
        #expect((50...100).contains(Self.reconnectDelay(lost) ?? -1), "a successful handshake resets the backoff")
        #expect(machine.snapshot.state == .disconnected, "after a first connection, a gap is a disconnection")
        #expect(machine.snapshot.lastError == "reset")
    }

    @Test func subscriptionsAreSentFirstOnEveryLinkAndLiveWhileUp() {
        var machine = Self.machine()
        #expect(machine.subscribe(sid: 2, subject: "s.b") == [], "not started: the table only")
        #expect(machine.subscribe(sid: 1, subject: "s.a") == [])
        _ = machine.start()
        #expect(machine.connected(attempt: 1) == [.schedule(.handshake, milliseconds: 2000)])
        #expect(machine.subscribe(sid: 3, subject: "s.c") == [], "handshaking: nothing written before the handshake")
        #expect(
            machine.handshakeCompleted(attempt: 1, maxPayload: 4096) == [
                .cancel(.handshake),
                .subscribe([.init(sid: 1, subject: "s.a"), .init(sid: 2, subject: "s.b"), .init(sid: 3, subject: "s.c")]),
                .linkUp(maxPayload: 4096),
                .schedule(.keepAlive, milliseconds: 20_000),
            ]
        )
        #expect(machine.subscribe(sid: 4, subject: "s.d") == [.subscribe([.init(sid: 4, subject: "s.d")])])
        #expect(machine.unsubscribe(sid: 1) == [.unsubscribe(sid: 1)])
        #expect(machine.unsubscribe(sid: 1) == [], "unknown sid")
        #expect(machine.isSubscribed(4) && !machine.isSubscribed(1))

        let lost = machine.linkClosed(attempt: 1, reason: "closed")
        #expect(Array(lost.dropLast()) == [.cancel(.keepAlive), .linkDown])
        #expect(machine.unsubscribe(sid: 2) == [], "down: the table is enough")
        #expect(machine.subscribe(sid: 5, subject: "s.e") == [])
        _ = machine.reconnectTimerFired()
        let up = Self.bringUp(&machine, attempt: 2)
        #expect(up.prefix(2) == [.cancel(.handshake), .subscribe([.init(sid: 3, subject: "s.c"), .init(sid: 4, subject: "s.d"), .init(sid: 5, subject: "s.e")])])
        #expect(machine.snapshot.connections == 2)
        #expect(machine.snapshot.subscriptions == 3)
    }

    @Test func closeDuringAPendingReconnectCancelsIt() {
        var machine = Self.machine()
        _ = machine.start()
        _ = machine.connectFailed(attempt: 1, reason: "refused")
        #expect(machine.state == .waiting)
        #expect(machine.closeRequested() == [.cancel(.reconnect)])
        #expect(machine.reconnectTimerFired() == [], "a timer that fired anyway connects nowhere")
        #expect(machine.start() == [])
        #expect(machine.snapshot.state == .closed)
    }

    @Test func closeFromEveryOtherState() {
        var idle = Self.machine()
        #expect(idle.closeRequested() == [])
        #expect(idle.start() == [], "closed before it started: never connects")

        var connecting = Self.machine()
        _ = connecting.start()
        #expect(connecting.closeRequested() == [.close(nil)])
        #expect(connecting.connected(attempt: 1) == [.close(nil)], "a socket that comes up after the close is closed")
        #expect(connecting.connectFailed(attempt: 1, reason: "cancelled") == [])

        var handshaking = Self.machine()
        _ = handshaking.start()
        _ = handshaking.connected(attempt: 1)
        #expect(handshaking.closeRequested() == [.cancel(.handshake), .close(nil)])
        #expect(handshaking.handshakeCompleted(attempt: 1, maxPayload: 1) == [])
        #expect(handshaking.linkClosed(attempt: 1, reason: "closed") == [], "no reconnect after close")

        var ready = Self.machine()
        _ = ready.start()
        _ = Self.bringUp(&ready, attempt: 1)
        #expect(ready.closeRequested() == [.cancel(.keepAlive), .linkDown, .close(nil)])
        #expect(ready.linkClosed(attempt: 1, reason: "closed") == [])
        #expect(ready.keepAliveTimerFired(outstandingPings: 0) == [])
        #expect(ready.snapshot.state == .closed)
    }

    @Test func aHandshakeThatDoesNotCompleteInTimeClosesTheLink() {
        var machine = Self.machine()
        _ = machine.start()
        _ = machine.connected(attempt: 1)
        let timeout = NATSError.io("no NATS handshake within 2000 ms")
        #expect(machine.handshakeTimerFired() == [.close(timeout)])
        let lost = machine.linkClosed(attempt: 1, reason: "\(timeout)")
        #expect(lost.first == .cancel(.handshake))
        #expect(Self.reconnectDelay(lost) != nil)
        #expect(machine.snapshot.lastError == "\(timeout)")
        #expect(machine.handshakeTimerFired() == [], "no connection, nothing to time out")
    }

    @Test func twoUnansweredKeepAlivePingsCloseTheLink() {
        var machine = Self.machine()
        _ = machine.start()
        _ = Self.bringUp(&machine, attempt: 1)
        #expect(machine.keepAliveTimerFired(outstandingPings: 0) == [.ping, .schedule(.keepAlive, milliseconds: 20_000)])
        #expect(machine.keepAliveTimerFired(outstandingPings: 1) == [.ping, .schedule(.keepAlive, milliseconds: 20_000)])
        #expect(machine.keepAliveTimerFired(outstandingPings: 2) == [.close(.stale)])
    }

    @Test func eventsOfAnOlderAttemptAreIgnored() {
        var machine = Self.machine()
        _ = machine.start()
        _ = Self.bringUp(&machine, attempt: 1)
        _ = machine.linkClosed(attempt: 1, reason: "reset")
        _ = machine.reconnectTimerFired()
        #expect(machine.state == .connecting(attempt: 2))
        #expect(machine.linkClosed(attempt: 1, reason: "late") == [])
        #expect(machine.connected(attempt: 1) == [])
        #expect(machine.connectFailed(attempt: 1, reason: "late") == [])
        #expect(machine.handshakeCompleted(attempt: 1, maxPayload: 1) == [])
        #expect(machine.state == .connecting(attempt: 2))
        #expect(machine.snapshot.lastError == "reset")
    }

    @Test func aRefusedOperationIsKeptAsTheLastErrorAndTheLinkStays() {
        var machine = Self.machine()
        _ = machine.start()
        _ = Self.bringUp(&machine, attempt: 1)
        machine.serverRefused(.server("Permissions Violation for Subscription to \"s.x\""))
        #expect(machine.snapshot.lastError?.contains("Permissions Violation") == true)
        #expect(machine.snapshot.state == .connected)
    }
}
