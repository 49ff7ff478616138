import LHTTPProtocol
import NIOCore

/// What the core makes of one message before anything takes effect: parse it, cut its multipart parts,
/// run its command's processor, read its channel lists (once), and decide whether it goes to the app.
///
/// Shared, read-only, by every connection (a class: each connection holds one reference, not a copy). A bad
/// message fails here as a whole: nothing of it is applied.
public final class MessagePipeline: Sendable {
    public let limits: LHTTPLimits
    /// The per-connection bounds every session keeps (here, not in each session: one copy for all).
    public let session: SessionStateMachine.Configuration
    private let parser: LHTTPParser
    private let processors: [String: any LHTTPProcessor]
    private let router: (any MessageRouter)?
    /// Whether an `upstream` header is carried out (an upstream adapter is configured).
    private let forwardsUpstream: Bool
    /// Who may publish and subscribe where.
    public let access: ChannelAccess
    /// Whether tokens are verified (a `refresh` message carries a new one).
    let verifiesTokens: Bool

    public init(
        limits: LHTTPLimits,
        session: SessionStateMachine.Configuration = .init(),
        processors: [String: any LHTTPProcessor],
        router: (any MessageRouter)?,
        forwardsUpstream: Bool,
        access: ChannelAccess = .open,
        verifiesTokens: Bool = false
    ) {
        self.access = access
        self.verifiesTokens = verifiesTokens
        self.limits = limits
        self.session = session
        self.parser = LHTTPParser(limits: limits)
        self.processors = processors
        self.router = router
        self.forwardsUpstream = forwardsUpstream
    }

    /// The `upstream` header (`upstream:METHOD URL`).
    public static let upstreamHeader = "upstream"

    /// The header asking who is on a channel (`presence:<channel>`).
    public static let presenceHeader = "presence"

    /// Plans `payload`. `connection` is asked only when a processor or the router needs it; `identity` is the
    /// connection's token (its grants decide `token` and user-limited channels).
    func plan(_ payload: ByteBuffer, identity: ConnectionIdentity?, connection: () -> ConnectionInfo) throws(GatewayError) -> PlannedMessage {
        do {
            var message = try self.parser.parse(payload)
            if self.verifiesTokens, message.command == Authentication.refreshCommand {
                guard let token = message.headers[Authentication.tokenHeader], !token.isEmpty else {
                    throw GatewayError.rejected(status: 400, reason: "refresh needs a token header")
                }
                var planned = PlannedMessage(message: message, parts: [], replies: [], subscribe: [], since: nil, needingHook: [], publish: [], unsubscribe: [], upstream: nil, isRouted: false)
                planned.refreshToken = token
                return planned
            }
            let parts = try message.multipartParts(limits: self.limits)
            var replies: [LHTTPMessage] = []
            if let processor = self.processors[message.command] {
                replies = try processor.onMessage(&message, parts: parts, connection: connection())
            }
            // Every list is checked before any takes effect, so a bad list changes nothing.
            let subscribe = try message.channels(LHTTPChannelList.subscribeHeader, limits: self.limits)
            let publish = try message.channels(LHTTPChannelList.publishHeader, limits: self.limits)
            let unsubscribe = try message.channels(LHTTPChannelList.unsubscribeHeader, limits: self.limits)
            let since = try Self.since(of: message, subscribe: subscribe)
            let forbidden = subscribe.isEmpty ? [] : self.access.unsubscribable(subscribe, identity: identity)
            let needingHook = self.access.needingHook(forbidden.isEmpty ? subscribe : subscribe.filter { !forbidden.contains($0) })
            let routed = self.router?.routes(command: message.command, subscribing: needingHook) ?? false
            var planned = PlannedMessage(
                message: message, parts: parts, replies: replies,
                subscribe: subscribe, since: since, needingHook: needingHook, publish: publish, unsubscribe: unsubscribe,
                upstream: self.forwardsUpstream ? message.headers[Self.upstreamHeader] : nil,
                isRouted: routed
            )
            if !forbidden.isEmpty {
                planned.forbiddenSubscribe = forbidden
                planned.narrowSubscriptions(to: subscribe.filter { !forbidden.contains($0) }, keepingHook: true)
            }
            if message.headers[Self.presenceHeader] != nil {
                let channels = try message.channels(Self.presenceHeader, limits: self.limits)
                guard channels.count == 1 else { throw GatewayError.rejected(status: 400, reason: "presence: names one channel") }
                planned.presence = channels[0]
            }
            return planned
        } catch let error as GatewayError {
            throw error
        } catch let error as LHTTPProtocolError {
            throw .protocolError(error)
        } catch {
            throw GatewayError(error)
        }
    }
}

extension MessagePipeline {
    /// The `since:` list: one position (`<epoch>:<offset>`) or `-` per channel of the `subscribe:` list, in
    /// its order. - Returns: channel → position (nil: `-`), or nil without the header.
    static func since(of message: LHTTPMessage, subscribe: [String]) throws(GatewayError) -> [String: HistoryPosition?]? {
        let values = message.headers.values(for: ChannelHistory.sinceHeader)
        guard !values.isEmpty else { return nil }
        let tokens = values.flatMap { $0.split(separator: " ", omittingEmptySubsequences: true) }
        guard tokens.count == subscribe.count else {
            throw .rejected(status: 400, reason: "since: needs one position or - per channel of subscribe: (\(subscribe.count), got \(tokens.count))")
        }
        var since: [String: HistoryPosition?] = [:]
        for (channel, token) in zip(subscribe, tokens) {
            if token == "-" {
                since[channel] = .some(nil)
            } else if let position = HistoryPosition(parsing: token) {
                since[channel] = position
            } else {
                throw .rejected(status: 400, reason: "since: \"\(token.prefix(80))\" is not <epoch>:<offset> or -")
            }
        }
        return since
    }
}

/// One message, parsed and processed, with what it asks for.
struct PlannedMessage: Sendable {
    var message: LHTTPMessage
    var parts: [LHTTPPart]
    /// The processor's replies, sent before the message's effects.
    var replies: [LHTTPMessage]
    var subscribe: [String]
    /// The `since:` positions of `subscribe`'s channels (nil: no `since:` header).
    var since: [String: HistoryPosition?]?
    /// The channels of `subscribe` that only the subscribe hook may allow.
    var needingHook: [String]
    var publish: [String]
    var unsubscribe: [String]
    /// The `upstream` header's value when upstream calls are carried out.
    var upstream: String?
    /// Goes to the app first.
    var isRouted: Bool
    /// Channels of the subscribe list the connection may never join (refused with 403 before anything).
    var forbiddenSubscribe: [String] = []
    /// The channel of a `presence:` header.
    var presence: String?
    /// The new token of a `refresh` message.
    var refreshToken: String?

    /// The message with its `subscribe` headers replaced by one naming `channels` (none: removed), as
    /// the subscribe hook or the channel options allowed them: the published copy and the upstream body
    /// show what was applied.
    mutating func narrowSubscriptions(to channels: [String], keepingHook: Bool = false) {
        if !keepingHook { self.needingHook = [] }
        guard channels != self.subscribe else { return }
        self.subscribe = channels
        self.message.narrow(LHTTPChannelList.subscribeHeader, to: channels)
    }

    /// The message with its `publish` headers replaced by one naming `channels` (none: removed), as the
    /// channel options allowed them: every copy names exactly the channels it was published to (what the
    /// cluster's receivers check).
    mutating func narrowPublication(to channels: [String]) {
        guard channels != self.publish else { return }
        self.publish = channels
        self.message.narrow(LHTTPChannelList.publishHeader, to: channels)
    }
}

extension LHTTPMessage {
    /// Replaces the channel-list headers `name` by one naming `channels` (none: removed).
    fileprivate mutating func narrow(_ name: String, to channels: [String]) {
        self.headers.remove(name: name)
        if !channels.isEmpty { self.headers.add(name: name, value: channels.joined(separator: " ")) }
    }
}
