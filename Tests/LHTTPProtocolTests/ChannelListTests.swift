import LHTTPProtocol
import Testing

@Suite("Channel lists")
struct ChannelListTests {
    @Test func spaceSeparatedEmptyNamesIgnoredRepeatsDropped() throws {
        #expect(try LHTTPChannelList.parse(["  a  b\tc a  "]) == ["a", "b", "c"])
        #expect(try LHTTPChannelList.parse(["a", "b a"]) == ["a", "b"])
        #expect(try LHTTPChannelList.parse(["   "]) == [])
    }

    @Test func tooManyChannels() {
        let limits = LHTTPLimits(maxChannelsPerMessage: 2)
        #expect(throws: Never.self) { try LHTTPChannelList.parse(["a b a"], limits: limits) }
        #expect(throws: LHTTPProtocolError.tooManyChannels(count: 3, limit: 2)) {
            try LHTTPChannelList.parse(["a b c"], limits: limits)
        }
    }

    @Test func channelNameTooLong() {
        let limits = LHTTPLimits(maxChannelNameBytes: 4)
        #expect(throws: Never.self) { try LHTTPChannelList.parse(["abcd"], limits: limits) }
        #expect(throws: LHTTPProtocolError.channelNameTooLong(limit: 4)) {
            try LHTTPChannelList.parse(["abcde"], limits: limits)
        }
    }
}
