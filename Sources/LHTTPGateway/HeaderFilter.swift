/// A hook around every message, whatever its command (the original's "header filter").
///
/// Filters run in registration order: `beforeMessage` before the processor, `afterMessage` after it.
/// The built-in multipart and pub/sub handling are filters too. Every call runs on the connection's loop.
public protocol HeaderFilter: Sendable {
    /// Called when a connection opens.
    func onOpen(_ session: Session)
    /// Called before the processor. Throwing stops the message with an error reply.
    func beforeMessage(_ session: Session) throws
    /// Called after the processor. Throwing stops the message with an error reply.
    func afterMessage(_ session: Session) throws
    /// Called when the connection closes, always.
    func onClose(_ session: Session)
}

extension HeaderFilter {
    public func onOpen(_ session: Session) {}
    public func beforeMessage(_ session: Session) throws {}
    public func afterMessage(_ session: Session) throws {}
    public func onClose(_ session: Session) {}
}
