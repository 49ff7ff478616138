import Foundation
import LHTTPGateway
import LHTTPProtocol
import NIOCore

/// What the app asked for in a 2xx webhook answer, applied in this order: reply, publish, subscribe,
/// unsubscribe, meta, close.
public struct WebhookActions: Sendable {
    /// A serialized LHTTP message for the sender.
    public var reply: ByteBuffer?
    /// Serialized LHTTP messages to fan out, with their channels.
    public var publish: [(channels: [String], payload: ByteBuffer)] = []
    public var subscribe: [String] = []
    public var unsubscribe: [String] = []
    /// Replaces the connection's meta (sent with its later events) when present.
    public var meta: [String: String]?
    /// A code that may be sent (checked when the answer was read: 1005, 1006, 1015 and unassigned codes
    /// make the answer invalid).
    public var close: (code: CloseCode, reason: String)?
    /// `"relay": true` in a route's answer: publish the sender's message as sent, to its own `publish:`
    /// channels (a routed message's own list is not applied otherwise).
    public var relay = false
    /// `"refused": [...]` in a 2xx answer to a subscribe event: those channels are not joined.
    public var refused: [String]?

    public init() {}

    /// The answer as the gateway carries it out, in the contract's order.
    public var appActions: [AppAction] {
        var actions: [AppAction] = []
        if let reply = self.reply { actions.append(.reply(reply)) }
        for publication in self.publish { actions.append(.publish(publication.payload, channels: publication.channels)) }
        if !self.subscribe.isEmpty { actions.append(.subscribe(self.subscribe)) }
        if !self.unsubscribe.isEmpty { actions.append(.unsubscribe(self.unsubscribe)) }
        if let meta = self.meta { actions.append(.setMeta(meta)) }
        if let close = self.close { actions.append(.close(close.code, reason: close.reason)) }
        return actions
    }

    public var isEmpty: Bool {
        self.reply == nil && self.publish.isEmpty && self.subscribe.isEmpty && self.unsubscribe.isEmpty
            && self.meta == nil && self.close == nil && !self.relay && self.refused == nil
    }
}

/// How a webhook call ended, from the gateway's point of view.
public enum WebhookOutcome: Sendable {
    /// 2xx: carry on, then apply the actions.
    case accepted(WebhookActions)
    /// 401 or 403: refused. `channels` (from `{"refused": [...]}`) limits a subscribe refusal to those.
    case refused(status: Int, channels: [String]?)
    /// Anything else (other status, timeout, unreachable, invalid answer): an error reply with this status.
    case failed(status: Int, reason: String)
}

extension WebhookOutcome {
    /// What the sender gets when the app refused (401/403) or failed (502/504); nil when it accepted.
    /// The one mapping from a webhook's outcome to the gateway's errors.
    public var failure: GatewayError? {
        switch self {
        case .accepted: return nil
        case .refused(let status, _): return .refusedByApp(status: status, channels: nil)
        case .failed(let status, let reason): return .appFailed(status: status, reason: reason)
        }
    }
}

/// Turns a webhook's HTTP answer into a ``WebhookOutcome`` (the contract in `docs/webhooks.md`).
public struct WebhookAnswerParser: Sendable {
    public var limits: LHTTPLimits

    public init(limits: LHTTPLimits = .default) {
        self.limits = limits
    }

    /// - Parameter command: the event's command (the default command of replies and publishes).
    public func outcome(of result: Result<UpstreamResponse, UpstreamError>, command: String) -> WebhookOutcome {
        switch result {
        case .failure(let error):
            return .failed(status: error.status, reason: "webhook: \(error.description)")
        case .success(let response):
            return self.outcome(of: response, command: command)
        }
    }

    func outcome(of response: UpstreamResponse, command: String) -> WebhookOutcome {
        switch response.status {
        case 200..<300:
            do {
                return .accepted(try self.actions(of: response, command: command))
            } catch {
                return .failed(status: 502, reason: "invalid webhook answer: \(error)")
            }
        case 401, 403:
            let refused = self.isJSON(response) ? (try? self.decode(response.body))?.refused : nil
            return .refused(status: response.status, channels: refused.flatMap { try? $0.channels(self.limits) })
        default:
            return .failed(status: 502, reason: "webhook answered \(response.status)")
        }
    }

    private func isJSON(_ response: UpstreamResponse) -> Bool {
        guard let type = response.header("content-type")?.lowercased() else { return false }
        return type.hasPrefix("application/json")
    }

    private func decode(_ body: ByteBuffer) throws -> Answer {
        try JSONDecoder().decode(Answer.self, from: Data(body.readableBytesView))
    }

    private func actions(of response: UpstreamResponse, command: String) throws -> WebhookActions {
        var actions = WebhookActions()
        guard response.body.readableBytes > 0 else { return actions }
        guard self.isJSON(response) else {
            // A plain answer goes to the sender: as is when it is an LHTTP message, else as a body.
            if (try? LHTTPParser(limits: self.limits).parse(response.body)) != nil {
                actions.reply = response.body
            } else {
                actions.reply = try LHTTPMessage(command: command, body: response.body).serialized()
            }
            return actions
        }
        let answer = try self.decode(response.body)
        if let reply = answer.reply {
            actions.reply = try reply.message(defaultCommand: command, channels: []).serialized()
        }
        for entry in answer.publish ?? [] {
            let channels = try entry.channels?.channels(self.limits) ?? []
            guard !channels.isEmpty else { throw AnswerError.publishWithoutChannels }
            actions.publish.append((channels, try entry.message(defaultCommand: command, channels: channels).serialized()))
        }
        actions.subscribe = try answer.subscribe?.channels(self.limits) ?? []
        actions.unsubscribe = try answer.unsubscribe?.channels(self.limits) ?? []
        actions.meta = answer.meta?.mapValues(\.text)
        actions.relay = answer.relay ?? false
        actions.refused = try answer.refused?.channels(self.limits)
        if let close = answer.close {
            let number = close.code ?? 1000
            guard let code = UInt16(exactly: number).flatMap(CloseCode.init(sending:)) else { throw AnswerError.badCloseCode(number) }
            actions.close = (code, close.reason ?? "")
        }
        return actions
    }
}

enum AnswerError: Error, CustomStringConvertible {
    case publishWithoutChannels
    case badCloseCode(Int)

    var description: String {
        switch self {
        case .publishWithoutChannels: return "a publish entry has no channels"
        case .badCloseCode(let code): return "close code \(code) may not be sent (1000-1003, 1007-1014, 3000-4999)"
        }
    }
}

/// The JSON answer, every field optional.
private struct Answer: Decodable {
    struct Message: Decodable {
        var command: String?
        var headers: [String: String]?
        var body: String?
        var channels: ChannelList?

        /// The LHTTP message; a publish gets a `publish` header naming its channels, like any publish.
        func message(defaultCommand: String, channels: [String]) -> LHTTPMessage {
            var headers = LHTTPHeaders()
            if !channels.isEmpty { headers.add(name: LHTTPChannelList.publishHeader, value: channels.joined(separator: " ")) }
            for (name, value) in (self.headers ?? [:]).sorted(by: { $0.key < $1.key })
            where !(channels.count > 0 && name.lowercased() == LHTTPChannelList.publishHeader) {
                headers.add(name: name, value: value)
            }
            return LHTTPMessage(command: self.command ?? defaultCommand, headers: headers, body: self.body ?? "")
        }
    }

    struct Close: Decodable {
        var code: Int?
        var reason: String?
    }

    var reply: Message?
    var publish: [Message]?
    var subscribe: ChannelList?
    var unsubscribe: ChannelList?
    var meta: [String: Scalar]?
    var close: Close?
    var refused: ChannelList?
    var relay: Bool?
}

/// A channel list in JSON: `["a", "b"]` or `"a b"`.
private struct ChannelList: Decodable {
    var values: [String]

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let list = try? container.decode([String].self) {
            self.values = list
        } else {
            self.values = [try container.decode(String.self)]
        }
    }

    func channels(_ limits: LHTTPLimits) throws -> [String] {
        try LHTTPChannelList.parse(self.values, limits: limits)
    }
}

/// A meta value: string, number or boolean, kept as text.
private struct Scalar: Decodable {
    var text: String

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let string = try? container.decode(String.self) {
            self.text = string
        } else if let int = try? container.decode(Int.self) {
            self.text = String(int)
        } else if let double = try? container.decode(Double.self) {
            self.text = String(double)
        } else {
            self.text = String(try container.decode(Bool.self))
        }
    }
}
