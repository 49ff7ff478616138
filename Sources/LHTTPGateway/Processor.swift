/// App logic for one command. Registered with ``Gateway/register(_:for:)``.
///
/// Every call runs on the connection's event loop and must not block it: do slow work elsewhere
/// and reply through ``Session/handle``.
public protocol LHTTPProcessor: Sendable {
    /// Called when a connection opens, for every registered processor.
    func onOpen(_ session: Session)
    /// Called for each message whose command this processor is registered for. Throwing a
    /// ``GatewayError`` (or `LHTTPProtocolError`) sends an error reply and skips the after-filters.
    func onMessage(_ session: Session) throws
    /// Called when the connection closes, for every registered processor, always (also after errors).
    func onClose(_ session: Session)
}

extension LHTTPProcessor {
    public func onOpen(_ session: Session) {}
    public func onMessage(_ session: Session) throws {}
    public func onClose(_ session: Session) {}
}
