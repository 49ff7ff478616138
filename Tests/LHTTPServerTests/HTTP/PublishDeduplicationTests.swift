@testable import LHTTPServer
import NIOCore
import Testing

@Suite("Publish deduplication")
struct PublishDeduplicationTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func once(_ table: PublishDeduplication, _ key: String, at time: NIODeadline, counter: inout Int) throws(ServerError) -> (String, Bool) {
        var calls = counter
        let (answer, replayed) = try table.publishOnce(key: key, now: time) { () throws(ServerError) -> ByteBuffer in
            calls += 1
            return ByteBuffer(string: "answer \(calls)")
        }
        counter = calls
        return (String(buffer: answer), replayed)
    }

    @Test func aKeyPublishesOnceWithinTheWindowAndAgainAfterIt() throws {
        let table = PublishDeduplication(window: .seconds(60), maxKeys: 100)
        var calls = 0
        #expect(try once(table, "k", at: start, counter: &calls) == ("answer 1", false))
        #expect(try once(table, "k", at: start + .seconds(59), counter: &calls) == ("answer 1", true))
        #expect(try once(table, "other", at: start + .seconds(59), counter: &calls) == ("answer 2", false))
        #expect(try once(table, "k", at: start + .seconds(61), counter: &calls) == ("answer 3", false), "the window is over")
        #expect(calls == 3)
    }

    @Test func aRefusedPublicationIsNotRemembered() throws {
        let table = PublishDeduplication(window: .seconds(60), maxKeys: 100)
        #expect(throws: ServerError.noChannel) {
            try table.publishOnce(key: "k", now: start) { () throws(ServerError) -> ByteBuffer in throw .noChannel }
        }
        var calls = 0
        #expect(try once(table, "k", at: start, counter: &calls) == ("answer 1", false))
    }

    @Test func theTableForgetsTheOldestKeyPastItsCap() throws {
        let table = PublishDeduplication(window: .seconds(3600), maxKeys: 3)
        var calls = 0
        for (index, key) in ["a", "b", "c", "d"].enumerated() {
            _ = try once(table, key, at: start + .seconds(Int64(index)), counter: &calls)
        }
        #expect(table.count == 3)
        #expect(try once(table, "d", at: start + .seconds(5), counter: &calls).1, "kept")
        #expect(try !once(table, "a", at: start + .seconds(5), counter: &calls).1, "forgotten: published again")
        for index in 0..<1_000 { _ = try once(table, "flood-\(index)", at: start + .seconds(10), counter: &calls) }
        #expect(table.count <= 3)
    }
}
