@testable import LHTTPGateway
import LHTTPProtocol
import NIOCore
import Testing

@Suite("Memory history")
struct MemoryHistoryTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    let policy = HistoryPolicy(size: 3)

    /// Publishes `body` to `channels` (all with `policy`) and returns the positions, the payload being
    /// `body` followed by the positions it was built from (so a test sees what `build` was given).
    @discardableResult
    func publish(_ history: MemoryHistory, _ body: String, to channels: [String], policy: HistoryPolicy? = nil, at time: NIODeadline? = nil) -> [(position: HistoryPosition, prev: UInt64)] {
        let policy = policy ?? self.policy
        return history.append(to: channels.map { ($0, policy) }, now: time ?? self.start) { positions in
            (ByteBuffer(string: body + "|" + positions.map { "\($0.position) \($0.prev)" }.joined(separator: ",")), ())
        }.positions
    }

    func bodies(_ read: HistoryRead) -> [String] {
        read.entries.map { String(buffer: $0.payload).split(separator: "|")[0].description }
    }

    @Test func offsetsGrowByOnePerPublicationAndPrevIsTheOneBefore() {
        let history = MemoryHistory(maxBytes: 1 << 20)
        let first = publish(history, "a", to: ["c"])[0]
        let second = publish(history, "b", to: ["c"])[0]
        #expect(first.position.offset == 1 && first.prev == 0)
        #expect(second.position.offset == 2 && second.prev == 1)
        #expect(first.position.epoch == second.position.epoch)
        #expect(history.top(of: "c", policy: policy, now: start) == second.position)
    }

    @Test func aMultiChannelPublicationGetsEachChannelsOwnPositionInListOrderAndIsKeptOnce() {
        let history = MemoryHistory(maxBytes: 1 << 20)
        publish(history, "x", to: ["one"])
        let positions = publish(history, "both", to: ["two", "one"])
        #expect(positions.map(\.position.offset) == [1, 2])
        #expect(positions.map(\.prev) == [0, 1])
        #expect(positions[0].position.epoch != positions[1].position.epoch, "each channel is its own stream")
        // The payload the closure built carries both positions, and each channel keeps that same payload.
        let one = history.read("one", after: HistoryPosition(epoch: positions[1].position.epoch, offset: 1), policy: policy, now: start)
        let two = history.read("two", after: HistoryPosition(epoch: positions[0].position.epoch, offset: 0), policy: policy, now: start)
        #expect(one.entries.map(\.payload) == two.entries.map(\.payload))
        #expect(String(buffer: one.entries[0].payload) == "both|\(positions[0].position) 0,\(positions[1].position) 1")
        #expect(history.stats.messages == 3)
    }

    @Test func aPositionGetsExactlyWhatFollowsItInOrderAndRecovered() {
        let history = MemoryHistory(maxBytes: 1 << 20)
        let seen = publish(history, "a", to: ["c"])[0].position
        publish(history, "b", to: ["c"])
        publish(history, "c", to: ["c"])
        let read = history.read("c", after: seen, policy: policy, now: start)
        #expect(bodies(read) == ["b", "c"])
        #expect(read.entries.map(\.offset) == [2, 3])
        #expect(read.entries.map(\.prev) == [1, 2])
        #expect(read.recovered)
        #expect(read.top.offset == 3)
        // At the top: nothing to send, nothing missing.
        let atTop = history.read("c", after: read.top, policy: policy, now: start)
        #expect(atTop.entries.isEmpty && atTop.recovered)
    }

    @Test func moreMissedThanTheSizeGivesWhatIsRetainedAndNotRecovered() {
        let history = MemoryHistory(maxBytes: 1 << 20)
        let seen = publish(history, "a", to: ["c"])[0].position
        for body in ["b", "c", "d", "e"] { publish(history, body, to: ["c"]) }
        let read = history.read("c", after: seen, policy: policy, now: start)
        #expect(bodies(read) == ["c", "d", "e"], "size 3: b was pushed out")
        #expect(!read.recovered)
        // One message later the client would have needed only what is still there.
        let fromB = history.read("c", after: HistoryPosition(epoch: seen.epoch, offset: 2), policy: policy, now: start)
        #expect(bodies(fromB) == ["c", "d", "e"] && fromB.recovered)
    }

    @Test func aWrongEpochOrAnOffsetAboveTheTopGetsEverythingRetainedAndNotRecovered() {
        let history = MemoryHistory(maxBytes: 1 << 20)
        let top = publish(history, "a", to: ["c"])[0].position
        publish(history, "b", to: ["c"])
        for position in [HistoryPosition(epoch: "other", offset: 1), HistoryPosition(epoch: top.epoch, offset: 99)] {
            let read = history.read("c", after: position, policy: policy, now: start)
            #expect(bodies(read) == ["a", "b"])
            #expect(!read.recovered)
        }
    }

    @Test func offsetZeroAsksForEverythingRetained() {
        let history = MemoryHistory(maxBytes: 1 << 20)
        let epoch = history.top(of: "c", policy: policy, now: start).epoch
        let empty = history.read("c", after: HistoryPosition(epoch: epoch, offset: 0), policy: policy, now: start)
        #expect(empty.entries.isEmpty && empty.recovered && empty.top.offset == 0)
        publish(history, "a", to: ["c"])
        let all = history.read("c", after: HistoryPosition(epoch: epoch, offset: 0), policy: policy, now: start)
        #expect(bodies(all) == ["a"] && all.recovered)
        for body in ["b", "c", "d"] { publish(history, body, to: ["c"]) }
        let trimmed = history.read("c", after: HistoryPosition(epoch: epoch, offset: 0), policy: policy, now: start)
        #expect(bodies(trimmed) == ["b", "c", "d"] && !trimmed.recovered, "a was pushed out: not everything since 0")
    }

    @Test func aLimitStopsTheReadAndNewestGivesTheLastOnes() {
        let history = MemoryHistory(maxBytes: 1 << 20)
        let wide = HistoryPolicy(size: 10)
        let epoch = history.top(of: "c", policy: wide, now: start).epoch
        for body in ["a", "b", "c", "d"] { publish(history, body, to: ["c"], policy: wide) }
        let firstTwo = history.read("c", after: HistoryPosition(epoch: epoch, offset: 1), limit: 2, policy: wide, now: start)
        #expect(bodies(firstTwo) == ["b", "c"] && firstTwo.recovered)
        #expect(bodies(history.newest("c", limit: 2, policy: wide, now: start)) == ["c", "d"])
        #expect(bodies(history.newest("c", limit: 99, policy: wide, now: start)) == ["a", "b", "c", "d"])
        #expect(history.newest("c", limit: 0, policy: wide, now: start).entries.isEmpty)
    }

    @Test func messagesOlderThanTheTTLAreGoneAndTheOffsetsGoOn() {
        let history = MemoryHistory(maxBytes: 1 << 20)
        let ttl = HistoryPolicy(size: 10, ttl: .seconds(60))
        let seen = publish(history, "a", to: ["c"], policy: ttl, at: start)[0].position
        publish(history, "b", to: ["c"], policy: ttl, at: start + .seconds(30))
        let later = start + .seconds(70)
        let read = history.read("c", after: HistoryPosition(epoch: seen.epoch, offset: 0), policy: ttl, now: later)
        #expect(bodies(read) == ["b"], "a is 70 s old")
        #expect(!read.recovered)
        #expect(history.read("c", after: seen, policy: ttl, now: later).recovered, "b, the one after a, is still here")
        history.sweep(now: start + .seconds(100))
        #expect(history.stats.messages == 0)
        #expect(history.stats.channels == 1, "the record stays (meta TTL): offsets only grow")
        #expect(publish(history, "c", to: ["c"], policy: ttl, at: start + .seconds(100))[0].position == HistoryPosition(epoch: seen.epoch, offset: 3))
    }

    @Test func anEmptyRecordIdleForTheMetaTTLIsDroppedAndTheChannelStartsANewEpoch() {
        let history = MemoryHistory(maxBytes: 1 << 20, metaTTL: .seconds(300))
        let ttl = HistoryPolicy(size: 10, ttl: .seconds(60))
        let old = publish(history, "a", to: ["c"], policy: ttl, at: start)[0].position
        history.sweep(now: start + .seconds(200))
        #expect(history.stats.channels == 1, "empty, but idle for less than the meta TTL")
        history.sweep(now: start + .seconds(301))
        #expect(history.stats == MemoryHistoryStats(channels: 0, messages: 0, bytes: 0))
        let new = publish(history, "b", to: ["c"], policy: ttl, at: start + .seconds(302))[0].position
        #expect(new.epoch != old.epoch)
        #expect(new.offset == 1)
        let read = history.read("c", after: old, policy: ttl, now: start + .seconds(302))
        #expect(bodies(read) == ["b"] && !read.recovered, "a position of the lost stream is never taken for the new one")
    }

    @Test func theByteCapDropsTheNodesOldestPublicationsFirst() {
        let payload = 100
        let body = String(repeating: "x", count: payload - 9)  // + "|" + "e:o p" of the positions ≈ 100 bytes
        let cap = 2 * (MemoryHistory.recordBytes + 1) + 5 * 110
        let history = MemoryHistory(maxBytes: cap)
        let wide = HistoryPolicy(size: 100)
        let a = history.top(of: "a", policy: wide, now: start).epoch
        let b = history.top(of: "b", policy: wide, now: start).epoch
        for index in 0..<4 {
            publish(history, "\(index)" + body, to: ["a"], policy: wide)
            publish(history, "\(index)" + body, to: ["b"], policy: wide)
        }
        let stats = history.stats
        #expect(stats.bytes <= cap)
        #expect(stats.messages < 8)
        let fromA = history.read("a", after: HistoryPosition(epoch: a, offset: 0), policy: wide, now: start)
        let fromB = history.read("b", after: HistoryPosition(epoch: b, offset: 0), policy: wide, now: start)
        // What is left is the newest publications of the node, both channels alike: the oldest went first.
        let kept = fromA.entries.map(\.offset) + fromB.entries.map(\.offset)
        #expect(kept.count == stats.messages)
        #expect(fromA.entries.last?.offset == 4 && fromB.entries.last?.offset == 4)
        #expect(abs(fromA.entries.count - fromB.entries.count) <= 1)
        #expect(!fromA.recovered && !fromB.recovered)
    }

    @Test func aFloodOfChannelsStaysWithinTheByteCap() {
        // Small counts: a synchronous test holds one of the few threads every async test of the process shares.
        let cap = 16 * 1024
        let history = MemoryHistory(maxBytes: cap)
        for index in 0..<2_000 {
            publish(history, "m", to: ["flood-\(index)"], policy: HistoryPolicy(size: 1))
            if index % 100 == 0 { #expect(history.stats.bytes <= cap) }
        }
        let stats = history.stats
        #expect(stats.bytes <= cap)
        #expect(stats.channels < 2_000)
        #expect(stats.channels * MemoryHistory.recordBytes <= cap)
    }

    @Test func theAgeRecordsStayBoundedWhenTheSizeTrimsEveryAppend() {
        let history = MemoryHistory(maxBytes: 1 << 30)
        for _ in 0..<4_000 { publish(history, "m", to: ["c"], policy: HistoryPolicy(size: 1)) }
        #expect(history.stats.messages == 1)
        #expect(history.ageRecordCount <= 2 * 1 + 1024 + 1)
    }

    @Test func aFailedBuildStoresNothingAndUsesNoOffset() {
        struct Refused: Error {}
        let history = MemoryHistory(maxBytes: 1 << 20)
        publish(history, "a", to: ["c"])
        #expect(throws: Refused.self) {
            try history.append(to: [("c", policy)], now: start) { (_: [(position: HistoryPosition, prev: UInt64)]) throws(Refused) -> (payload: ByteBuffer, delivered: Int) in throw Refused() }
        }
        #expect(history.stats.messages == 1)
        #expect(publish(history, "b", to: ["c"])[0].position.offset == 2)
    }

    @Test func positionsParseAndPrintAsEpochColonOffset() {
        let position = HistoryPosition(parsing: "k3x9a0:42")
        #expect(position == HistoryPosition(epoch: "k3x9a0", offset: 42))
        #expect(position?.description == "k3x9a0:42")
        for bad in ["", "-", "abc", ":5", "abc:", "a b:1", "a:b:1", "abc:-1", "abc:+1", "abc:1x", "abc:99999999999999999999999"] {
            #expect(HistoryPosition(parsing: Substring(bad)) == nil, "\(bad)")
        }
        var generator = SystemRandomNumberGenerator()
        let epochs = (0..<100).map { _ in HistoryPosition.newEpoch(using: &generator) }
        #expect(Set(epochs).count == 100)
        #expect(epochs.allSatisfy { HistoryPosition.isValidEpoch($0) && $0.count == 12 })
    }
}
