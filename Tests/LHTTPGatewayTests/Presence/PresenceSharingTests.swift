import LHTTPGateway
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing

/// A link between two in-memory ``Presence`` nodes on one embedded loop: what one sends, the other
/// receives, unless the test cuts it. (A unit test of the sharing rules; the cluster tests run them over a
/// real nats-server.)
final class PairedLink: PresenceLink, Sendable {
    private let state = NIOLockedValueBox<(peer: Presence?, cut: Bool, sent: [PresenceUpdate])>((nil, false, []))

    func connect(to peer: Presence) { self.state.withLockedValue { $0.peer = peer } }
    func cut(_ cut: Bool) { self.state.withLockedValue { $0.cut = cut } }
    var sent: [PresenceUpdate] { self.state.withLockedValue { $0.sent } }

    func send(_ update: PresenceUpdate) {
        let peer = self.state.withLockedValue { state -> Presence? in
            state.sent.append(update)
            return state.cut ? nil : state.peer
        }
        peer?.receive(update)
    }
}

@Suite("Presence shared between nodes (in memory)")
struct PresenceSharingTests {
    let loop = EmbeddedEventLoop()
    let access = ChannelAccess(rules: [.init(prefix: "room", publish: .anyone, subscribe: .anyone, presence: .init(joinLeave: true, leaveGraceS: 0))])
    let configuration = Presence.Configuration(heartbeat: .seconds(1), nodeTimeout: .seconds(3), flushDelay: .milliseconds(10))

    func pair() -> (a: Presence, b: Presence, toB: PairedLink, toA: PairedLink) {
        let a = Presence(access: self.access, hub: Hub(), eventLoop: self.loop, node: "a#1", configuration: self.configuration)
        let b = Presence(access: self.access, hub: Hub(), eventLoop: self.loop, node: "b#1", configuration: self.configuration)
        let toB = PairedLink()
        let toA = PairedLink()
        toB.connect(to: b)
        toA.connect(to: a)
        a.attach(toB)
        b.attach(toA)
        self.settle()
        return (a, b, toB, toA)
    }

    /// Runs what is due, then `time` passes in steps (each step's hops run).
    func settle(_ time: TimeAmount = .milliseconds(50)) {
        var passed = TimeAmount.zero
        repeat {
            self.loop.run()
            self.loop.advanceTime(by: .milliseconds(10))
            passed = passed + .milliseconds(10)
        } while passed < time
        self.loop.run()
    }

    func users(_ node: Presence, _ channel: String) throws -> [String] {
        let snapshot = try self.snapshot(node, channel)
        return (snapshot?.members ?? []).map(\.user).sorted()
    }

    /// The snapshot, its hop run on the embedded loop first.
    func snapshot(_ node: Presence, _ channel: String) throws -> PresenceSnapshot? {
        let future = node.snapshot(of: channel)
        self.loop.run()
        return try future.wait()
    }

    static func connection(_ id: UInt64, _ user: String) -> ConnectionInfo {
        ConnectionInfo(id: ConnectionID(rawValue: id), identity: ConnectionIdentity(user: user))
    }

    @Test func eachNodeSeesTheUnion() throws {
        let (a, b, _, _) = self.pair()
        a.joined(Self.connection(1, "alice"), channels: ["room1", "other"])
        b.joined(Self.connection(2, "bob"), channels: ["room1"])
        self.settle()
        #expect(try self.users(a, "room1") == ["alice", "bob"])
        #expect(try self.users(b, "room1") == ["alice", "bob"])
        #expect(try self.snapshot(a, "other") == nil, "no presence there")
        b.left(ConnectionID(rawValue: 2), channels: ["room1"])
        self.settle()
        #expect(try self.users(a, "room1") == ["alice"])
    }

    /// A change lost on the way (a gap in the sender's count) is noticed at the next alive, and the whole
    /// state is asked for: nothing stays wrong for longer than a heartbeat.
    @Test func aLostChangeIsRepairedByASync() throws {
        let (a, b, toB, _) = self.pair()
        a.joined(Self.connection(1, "alice"), channels: ["room1"])
        self.settle()
        toB.cut(true)
        a.joined(Self.connection(3, "carol"), channels: ["room1"])
        a.left(ConnectionID(rawValue: 1), channels: ["room1"])
        self.settle()
        toB.cut(false)
        #expect(try self.users(b, "room1") == ["alice"], "b missed both changes")
        self.settle(.seconds(1))
        #expect(try self.users(b, "room1") == ["carol"])
        #expect(toB.sent.contains { $0.kind == .full }, "repaired by a whole state")
    }

    /// A channel the sender left while the link was down is dropped by the whole state that follows.
    @Test func aWholeStateDropsChannelsItDoesNotList() throws {
        let (a, b, toB, _) = self.pair()
        a.joined(Self.connection(1, "alice"), channels: ["room1", "room2"])
        self.settle()
        #expect(try self.users(b, "room2") == ["alice"])
        toB.cut(true)
        a.left(ConnectionID(rawValue: 1), channels: ["room2"])
        self.settle()
        toB.cut(false)
        a.linkUp()
        self.settle()
        #expect(try self.users(b, "room2") == [])
        #expect(try self.users(b, "room1") == ["alice"])
    }

    /// A node not heard from within the timeout is gone, its members with it; it comes back with its state.
    @Test func aSilentNodeIsForgottenAndComesBack() throws {
        let (a, b, toB, _) = self.pair()
        a.joined(Self.connection(1, "alice"), channels: ["room1"])
        self.settle()
        toB.cut(true)
        self.settle(.seconds(2))
        #expect(try self.users(b, "room1") == ["alice"], "within the timeout")
        self.settle(.seconds(2))
        #expect(try self.users(b, "room1") == [], "past three heartbeats")
        toB.cut(false)
        self.settle(.seconds(1))
        #expect(try self.users(b, "room1") == ["alice"], "its next alive: unknown node, whole state asked for")
    }

    @Test func pastTheMemberCapOnlyCountsAreShared() throws {
        let (a, b, _, _) = self.pair()
        let small = Presence(access: self.access, hub: Hub(), eventLoop: self.loop, node: "c#1", configuration: .init(maxMembers: 2, flushDelay: .milliseconds(10)))
        let toB = PairedLink()
        toB.connect(to: b)
        small.attach(toB)
        for id in 10..<13 { small.joined(Self.connection(UInt64(id), "u\(id)"), channels: ["room1"]) }
        a.joined(Self.connection(1, "alice"), channels: ["room1"])
        self.settle()
        let snapshot = try #require(try self.snapshot(b, "room1"))
        #expect(snapshot.clients == 4)
        #expect(snapshot.users == 4)
        #expect(snapshot.members == nil, "counts only")
        #expect(String(buffer: snapshot.json()).contains("\"truncated\":true"))
    }

    /// A channel crossing the sender's cap keeps its known users (no leave for all of them), and its count.
    @Test func crossingTheCapKeepsTheKnownUsers() throws {
        let (_, b, _, _) = self.pair()
        let small = Presence(access: self.access, hub: Hub(), eventLoop: self.loop, node: "c#1", configuration: .init(maxMembers: 2, flushDelay: .milliseconds(10)))
        let toB = PairedLink()
        toB.connect(to: b)
        small.attach(toB)
        small.joined(Self.connection(10, "u10"), channels: ["room1"])
        small.joined(Self.connection(11, "u11"), channels: ["room1"])
        self.settle()
        #expect(try self.users(b, "room1") == ["u10", "u11"])
        small.joined(Self.connection(12, "u12"), channels: ["room1"])
        self.settle()
        let snapshot = try #require(try self.snapshot(b, "room1"))
        #expect(snapshot.members == nil && snapshot.clients == 3 && snapshot.users == 3)
        small.left(ConnectionID(rawValue: 12), channels: ["room1"])
        self.settle()
        #expect(try self.users(b, "room1") == ["u10", "u11"])
    }
}
