import LHTTPClient
import LHTTPProtocol
import Testing

@Suite("History cursor")
struct HistoryCursorTests {
    func delivery(_ channels: String, seq: String) -> LHTTPMessage {
        LHTTPMessage(command: "chat", headers: ["publish": channels, "seq": seq, "prev": "0"], body: "x")
    }

    @Test func positionsMoveOnDeliveriesAndRepeatsAreDropped() throws {
        var cursor = HistoryCursor()
        #expect(cursor.since(for: ["a", "b"]) == "- -")
        let shown1 = cursor.track(delivery("a", seq: "e:1"), subscribed: ["a"])
        #expect(shown1)
        let shown2 = cursor.track(delivery("a", seq: "e:1"), subscribed: ["a"])
        #expect(!shown2, "seen")
        let shown3 = cursor.track(delivery("a b", seq: "e:1 f:7"), subscribed: ["a", "b"])
        #expect(shown3, "new on b")
        let shown4 = cursor.track(delivery("a b", seq: "e:1 f:7"), subscribed: ["a", "b"])
        #expect(!shown4)
        #expect(cursor.since(for: ["a", "b"]) == "e:1 f:7")
        let shown5 = cursor.track(delivery("a", seq: "other:1"), subscribed: ["a"])
        #expect(shown5, "a new epoch")
        let shown6 = cursor.track(LHTTPMessage(command: "chat", headers: ["publish": "a"]), subscribed: ["a"])
        #expect(shown6, "no positions: shown")
        let shown7 = cursor.track(delivery("z", seq: "e:1"), subscribed: ["a"])
        #expect(shown7, "not ours: shown as before")
    }

    @Test func aSubscribedAnswerSetsThePosition() throws {
        var cursor = HistoryCursor()
        let answer = cursor.answered(LHTTPMessage(command: "subscribed", headers: ["channel": "a", "stream": "e:9", "recovered": "false", "missed": "3"]))
        #expect(answer == HistoryCursor.Answer(channel: "a", recovered: false, missed: 3, stream: HistoryPosition(epoch: "e", offset: 9)))
        #expect(cursor.since(for: ["a"]) == "e:9")
        let notAnAnswer = cursor.answered(LHTTPMessage(command: "chat", headers: ["channel": "a"]))
        #expect(notAnAnswer == nil)
    }
}
