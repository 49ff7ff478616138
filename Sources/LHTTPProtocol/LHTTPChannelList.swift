/// The channel lists of the `subscribe`, `unsubscribe` and `publish` headers.
public enum LHTTPChannelList {
    /// Header names of the built-in pub/sub filter.
    public static let subscribeHeader = "subscribe"
    public static let unsubscribeHeader = "unsubscribe"
    public static let publishHeader = "publish"

    /// Splits space-separated channel names, ignoring empty names and repeats (first occurrence wins).
    ///
    /// Several occurrences of the header are joined. Throws when the list is longer than
    /// `max_channels_per_message` or a name is longer than `max_channel_name_bytes`.
    public static func parse(_ values: [String], limits: LHTTPLimits = .default) throws(LHTTPProtocolError) -> [String] {
        var channels: [String] = []
        var seen = Set<Substring>()
        for value in values {
            for name in value.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                guard name.utf8.count <= limits.maxChannelNameBytes else {
                    throw .channelNameTooLong(limit: limits.maxChannelNameBytes)
                }
                guard seen.insert(name).inserted else { continue }
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
