/// The channel lists of the `subscribe`, `unsubscribe` and `publish` headers.
public enum LHTTPChannelList {
    /// Header names of the built-in pub/sub filter.
    public static let subscribeHeader = "subscribe"
    public static let unsubscribeHeader = "unsubscribe"
    public static let publishHeader = "publish"

    /// Splits space-separated channel names, ignoring empty names and repeats (first occurrence wins).
    ///
    /// Several occurrences of the header are joined. Throws when the list is longer than
    /// `max_channels_per_message`, a name is longer than `max_channel_name_bytes`, or a name holds a
    /// control character (``LHTTPFieldRules``: a CR or LF in a name could forge a header line).
    public static func parse(_ values: [String], limits: LHTTPLimits = .default) throws(LHTTPProtocolError) -> [String] {
        var channels: [String] = []
        for value in values {
            let utf8 = value.utf8
            var index = utf8.startIndex
            while index != utf8.endIndex {
                // Skip separators, then take one name.
                while index != utf8.endIndex, utf8[index] == 0x20 || utf8[index] == 0x09 { utf8.formIndex(after: &index) }
                guard index != utf8.endIndex else { break }
                let start = index
                var length = 0
                var valid = true  // no control character (``LHTTPFieldRules``), checked in the same pass
                while index != utf8.endIndex, utf8[index] != 0x20, utf8[index] != 0x09 {
                    valid = valid && LHTTPFieldRules.isTokenByte(utf8[index])
                    utf8.formIndex(after: &index)
                    length += 1
                }
                guard length <= limits.maxChannelNameBytes else {
                    throw .channelNameTooLong(limit: limits.maxChannelNameBytes)
                }
                let name = value[start..<index]
                guard valid else { throw .invalidChannelName(String(name)) }
                // Lists are short (64 at most by default): a linear check beats hashing.
                guard !channels.contains(where: { $0 == name }) else { continue }
                guard channels.count < limits.maxChannelsPerMessage else {
                    throw .tooManyChannels(count: channels.count + 1, limit: limits.maxChannelsPerMessage)
                }
                channels.append(String(name))
            }
        }
        return channels
    }
}

extension LHTTPMessage {
    /// The channels of header `name` (`subscribe`, `unsubscribe`, `publish`), parsed with ``LHTTPChannelList``.
    public func channels(_ name: String, limits: LHTTPLimits = .default) throws(LHTTPProtocolError) -> [String] {
        try LHTTPChannelList.parse(self.headers.values(for: name), limits: limits)
    }
}
