import LHTTPProtocol

/// Built-in filter: cuts a `multipart` message into ``Session/parts`` before the processor runs.
public struct MultipartFilter: HeaderFilter {
    public init() {}

    public func beforeMessage(_ session: Session) throws {
        guard let message = session.message else { return }
        session.parts = try message.multipartParts(limits: session.gateway.limits)
    }
}
