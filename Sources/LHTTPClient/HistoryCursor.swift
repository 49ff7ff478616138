import LHTTPProtocol

/// The client side of history (docs/protocol.md 6.1): the last position seen per channel, the `since:`
/// value to re-subscribe with, and which deliveries were seen already (a replay overlapping live messages).
/// A plain struct (`lhttp subscribe --since` uses one; a reconnecting client keeps one across reconnects).
public struct HistoryCursor: Sendable, Equatable {
    /// What a `subscribed` answer said.
    public struct Answer: Sendable, Equatable {
        public var channel: String
        public var recovered: Bool
        public var missed: Int
        /// Nil: the channel keeps no history.
        public var stream: HistoryPosition?

        public init(channel: String, recovered: Bool, missed: Int, stream: HistoryPosition?) {
            self.channel = channel
            self.recovered = recovered
            self.missed = missed
            self.stream = stream
        }
    }

    public private(set) var positions: [String: HistoryPosition] = [:]

    public init(positions: [String: HistoryPosition] = [:]) {
        self.positions = positions
    }

    /// The `since:` header for `channels`: each one's position, `-` where none is known.
    public func since(for channels: [String]) -> String {
        channels.map { self.positions[$0]?.description ?? "-" }.joined(separator: " ")
    }

    /// Notes a delivery's positions. - Returns: false when each of its channels among `subscribed` had it
    /// already (drop it); true otherwise (messages without positions included).
    public mutating func track(_ message: LHTTPMessage, subscribed: Set<String>) -> Bool {
        guard let seq = message.headers["seq"] else { return true }
        let channels = (message.headers[LHTTPChannelList.publishHeader] ?? "").split(separator: " ").map(String.init)
        var ours = 0
        var fresh = 0
        for (channel, token) in zip(channels, seq.split(separator: " ")) where subscribed.contains(channel) {
            guard let position = HistoryPosition(parsing: token) else { continue }
            ours += 1
            if let known = self.positions[channel], known.epoch == position.epoch, position.offset <= known.offset { continue }
            self.positions[channel] = position
            fresh += 1
        }
        return ours == 0 || fresh > 0
    }

    /// Reads a `LHTTP/1.0 subscribed` answer (nil for any other message) and takes its stream position.
    public mutating func answered(_ message: LHTTPMessage) -> Answer? {
        guard message.command == "subscribed", let channel = message.headers["channel"] else { return nil }
        let stream = message.headers["stream"].flatMap { HistoryPosition(parsing: Substring($0)) }
        if let stream { self.positions[channel] = stream }
        return Answer(
            channel: channel, recovered: message.headers["recovered"] == "true", missed: Int(message.headers["missed"] ?? "") ?? 0, stream: stream
        )
    }
}
