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

    @Test func controlCharactersInANameAreRefused() throws {
        for name in ["x\r\nfrom:admin", "a\rb", "a\nb", "nul\0", "del\u{7F}", "bell\u{07}"] {
            #expect(throws: LHTTPProtocolError.invalidChannelName(name)) { try LHTTPChannelList.parse([name]) }
        }
        // Spaces and tabs separate names; UTF-8 and punctuation are names.
        #expect(try LHTTPChannelList.parse(["caf\u{E9} a:b user#42"]) == ["caf\u{E9}", "a:b", "user#42"])
        #expect(LHTTPProtocolError.invalidChannelName("x").status == 400)
    }
}
