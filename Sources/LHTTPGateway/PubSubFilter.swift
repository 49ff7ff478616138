import LHTTPProtocol

/// Built-in filter: the `subscribe`, `publish` and `unsubscribe` headers, applied in that order
/// after the processor, to the message as the processor left it.
///
/// All three lists are checked before any takes effect, so a bad list changes nothing.
public struct PubSubFilter: HeaderFilter {
    public init() {}

    public func afterMessage(_ session: Session) throws {
        guard let message = session.message else { return }
        let limits = session.gateway.limits
        let subscribe = try message.channels(LHTTPChannelList.subscribeHeader, limits: limits)
        let publish = try message.channels(LHTTPChannelList.publishHeader, limits: limits)
        let unsubscribe = try message.channels(LHTTPChannelList.unsubscribeHeader, limits: limits)
        try session.subscribe(subscribe)
        if !publish.isEmpty {
            try session.gateway.publish(message.serialized(), to: publish)
        }
        session.unsubscribe(unsubscribe)
    }
}
