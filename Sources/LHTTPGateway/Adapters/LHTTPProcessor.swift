import LHTTPProtocol

/// App logic for one command, in Swift (the original lhttp's processors). Registered with
/// `Gateway(processors:)`.
///
/// Every call runs on the connection's event loop and must not block it. A processor sees a message
/// after parsing and before anything else (routing, subscribe, publish, upstream); what it changes is
/// what subscribers receive.
public protocol LHTTPProcessor: Sendable {
    /// Called when a connection opens, for every registered processor.
    func onOpen(_ connection: ConnectionInfo)
    /// Called for each message whose command this processor is registered for. May change `message`;
    /// returns replies for the sender (serialized in order, before the message's effects). Throwing
    /// refuses the message: the sender gets the error reply and nothing of the message is applied.
    func onMessage(_ message: inout LHTTPMessage, parts: [LHTTPPart], connection: ConnectionInfo) throws(GatewayError) -> [LHTTPMessage]
    /// Called when the connection closes, for every registered processor, always.
    func onClose(_ connection: ConnectionInfo, code: CloseCode)
}

extension LHTTPProcessor {
    public func onOpen(_ connection: ConnectionInfo) {}
    public func onMessage(_ message: inout LHTTPMessage, parts: [LHTTPPart], connection: ConnectionInfo) throws(GatewayError) -> [LHTTPMessage] { [] }
    public func onClose(_ connection: ConnectionInfo, code: CloseCode) {}
}
