import NIOCore

/// Told when a connection ends (the `disconnect` webhook).
public protocol ConnectionObserver: Sendable {
    /// Called once per connection, on its event loop, after its subscriptions were released.
    /// `code` is the close code sent or received (1006 when the connection just vanished).
    func connectionClosed(_ connection: ConnectionInfo, code: CloseCode, on eventLoop: any EventLoop)
}
