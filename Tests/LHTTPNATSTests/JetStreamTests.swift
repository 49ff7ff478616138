import LHTTPConfig
@testable import LHTTPNATS
import LHTTPTestSupport
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// The JetStream API over requests with headers, against a real `nats-server -js` (2.9: RePublish and
/// direct get by subject exist, batched direct get does not).
@Suite("JetStream against nats-server")
struct JetStreamTests {
    static func stream(_ name: String = "T", perSubject: Int = 3, republish: Bool = true) -> JetStreamStreamConfig {
        JetStreamStreamConfig(
            name: name, subjects: ["t.h.>"], maxMsgsPerSubject: perSubject, maxAge: 0, maxBytes: -1, storage: "file",
            numReplicas: 1, duplicateWindow: 60_000_000_000, republish: republish ? .init(src: "t.h.>", dest: "t.r.>") : nil
        )
    }

    /// Republished copies, with the headers they came with.
    final class Copies: Sendable {
        let messages = NIOLockedValueBox<[NATSMessage]>([])
        var all: [NATSMessage] { self.messages.withLockedValue { $0 } }
    }

    static func connected(_ server: NATSServerProcess, copies: Copies? = nil) async throws -> NATSClient {
        let client = try NATSClientTests.client([server.url])
        client.start { message in copies?.messages.withLockedValue { $0.append(message) } }
        try await eventually { client.currentStatus.state == .connected }
        return client
    }

    @Test func aStreamIsMadeOnceAndUpdatedWhenItsConfigurationChanges() async throws {
        let server = try await NATSServerProcess(jetStream: true)
        let client = try await Self.connected(server)
        let js = JetStream(client: client)
        #expect(try await js.streamInfo("T") == nil)
        let made = try await js.ensureStream(Self.stream())
        #expect(made.config.maxMsgsPerSubject == 3 && made.config.allowDirect && made.config.republish?.dest == "t.r.>")
        // Asked again as is: the same stream (same creation time), not a new one.
        #expect(try await js.ensureStream(Self.stream()).created == made.created)
        // A configuration the server refuses is its error, not a crash or a silent success.
        var impossible = Self.stream(perSubject: 5)
        impossible.storage = "memory"  // a stream's storage cannot change by an update
        await #expect(throws: NATSError.self) { _ = try await js.ensureStream(impossible) }
        let updated = try await js.ensureStream(Self.stream(perSubject: 5))
        #expect(updated.config.maxMsgsPerSubject == 5)
        #expect(updated.created == made.created, "an update keeps the stream and what it holds")
        await client.shutdown()
    }

    /// The stream assigns offsets: the acknowledgement has the sequence, the republished copy also the
    /// subject's previous one (`Nats-Last-Sequence`), and a repeated `Nats-Msg-Id` is stored once.
    @Test func storedMessagesAreAcknowledgedRepublishedAndDeduplicated() async throws {
        let server = try await NATSServerProcess(jetStream: true)
        let copies = Copies()
        let client = try await Self.connected(server, copies: copies)
        _ = try client.subscribe("t.r.>")
        let js = JetStream(client: client)
        _ = try await js.ensureStream(Self.stream())
        var acks: [UInt64] = []
        for (index, subject) in ["t.h.a", "t.h.b", "t.h.a"].enumerated() {
            acks.append(try await js.publish(ByteBuffer(string: "m\(index)"), to: subject, messageID: "id-\(index)").get().seq)
        }
        #expect(acks == [1, 2, 3])
        let retry = try await js.publish(ByteBuffer(string: "m0 again"), to: "t.h.a", messageID: "id-0").get()
        #expect(retry.seq == 1 && retry.duplicate == true)
        try await eventually { copies.all.count == 3 }
        #expect(copies.all.map(\.subject) == ["t.r.a", "t.r.b", "t.r.a"])
        #expect(copies.all.map { $0.headers?["Nats-Sequence"] } == ["1", "2", "3"])
        #expect(copies.all.map { $0.headers?["Nats-Last-Sequence"] } == ["0", "0", "1"])
        #expect(copies.all.map { String(buffer: $0.payload) } == ["m0", "m1", "m2"], "the duplicate is not republished")
        await client.shutdown()
    }

    /// Reading back: the next message of a subject from a sequence on, the newest, and none (404).
    @Test func directGetReadsBySubjectAndSequence() async throws {
        let server = try await NATSServerProcess(jetStream: true)
        let client = try await Self.connected(server)
        let js = JetStream(client: client)
        _ = try await js.ensureStream(Self.stream(republish: false))
        for (index, subject) in ["t.h.a", "t.h.b", "t.h.a", "t.h.a", "t.h.a"].enumerated() {
            _ = try await js.publish(ByteBuffer(string: "m\(index)"), to: subject).get()
        }
        // Three kept per subject: a's first (1) is gone; from 1 on the first kept is 3.
        let first = try await js.message(on: "t.h.a", from: 1, stream: "T").get()
        #expect(first?.sequence == 3 && first.map { String(buffer: $0.payload) } == "m2")
        #expect(try await js.message(on: "t.h.a", from: 4, stream: "T").get()?.sequence == 4)
        #expect(try await js.lastMessage(on: "t.h.a", stream: "T").get()?.sequence == 5)
        #expect(try await js.message(on: "t.h.a", from: 6, stream: "T").get() == nil)
        #expect(try await js.lastMessage(on: "t.h.nobody", stream: "T").get() == nil)
        await client.shutdown()
    }

    /// Nothing waits on a JetStream that is not there: no JetStream is "no responders" at once, a link
    /// that is down fails at once, and an unanswered request times out.
    @Test func anUnreachableJetStreamFailsFast() async throws {
        let plain = try await NATSServerProcess()
        let client = try await Self.connected(plain)
        let js = JetStream(client: client, timeout: .seconds(5))
        await #expect(throws: NATSError.noResponders("$JS.API.STREAM.INFO.T")) { _ = try await js.streamInfo("T") }
        let silent = JetStream(client: client, timeout: .milliseconds(100))
        _ = try client.subscribe("nobody.answers")
        await #expect(throws: NATSError.requestTimeout) {
            _ = try await client.request(ByteBuffer(string: "?"), to: "nobody.answers", timeout: silent.timeout)
        }
        // A request in flight when the link goes fails then, not at its (long) timeout.
        let inFlight = Task { try await client.request(ByteBuffer(string: "?"), to: "nobody.answers", timeout: .seconds(600)) }
        try await eventually { client.currentStatus.receivedMessages >= 2 }  // our own copy: it was sent
        plain.kill()
        await #expect(throws: NATSError.notConnected) { _ = try await inFlight.value }
        try await eventually { client.currentStatus.state != .connected }
        await #expect(throws: NATSError.notConnected) { _ = try await js.publish(ByteBuffer(string: "x"), to: "t.h.a").get() }
        await client.shutdown()
    }
}

/// JetStream's `Nats-Time-Stamp` (RFC 3339 with nanoseconds), read for a channel's own TTL.
@Suite("JetStream timestamps")
struct JetStreamTimestampTests {
    @Test func nanosecondTimestampsParseToTheirInstant() throws {
        let stamp = try #require(JetStreamHistory.parseTimestamp("2026-12-04T01:33:18.497595076Z"))
        let whole = try #require(JetStreamHistory.parseTimestamp("2026-12-04T01:33:18Z"))
        #expect(abs(stamp.timeIntervalSince(whole) - 0.497595076) < 1e-6)
        #expect(whole.timeIntervalSince1970 == 1_796_347_998)
        #expect(JetStreamHistory.parseTimestamp("yesterday") == nil)
    }
}
