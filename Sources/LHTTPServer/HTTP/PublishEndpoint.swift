import LHTTPProtocol
import NIOCore

/// The logic of `POST /publish`, apart from sockets: authorization and turning a body into a publication.
struct PublishEndpoint: Sendable {
    /// When non-empty, requests must carry `Authorization: Bearer <token>`.
    var token: String
    var limits: LHTTPLimits
    /// Command of messages built from the query when `command=` is absent.
    static let defaultCommand = "publish"

    /// Whether the `Authorization` header values carry the configured token (constant-time compare).
    func isAuthorized(_ authorization: [String]) -> Bool {
        BearerToken(self.token).isAuthorized(authorization)
    }

    /// The bytes to publish and the channels, from a raw LHTTP body (query without `channel`) or from any
    /// body wrapped into an LHTTP message (`?channel=a&channel=b&command=chat`).
    func publication(body: ByteBuffer, query: [(name: String, value: String)]) throws(ServerError) -> (payload: ByteBuffer, channels: [String]) {
        let channelValues = query.filter { $0.name == "channel" }.map(\.value)
        guard channelValues.isEmpty else {
            return try self.wrap(body: body, channelValues: channelValues, query: query)
        }
        // Form (a): the body is an LHTTP message; it is relayed byte for byte.
        let message: LHTTPMessage
        let channels: [String]
        do {
            message = try LHTTPParser(limits: self.limits).parse(body)
            channels = try message.channels(LHTTPChannelList.publishHeader, limits: self.limits)
        } catch {
            throw .protocolError(error)
        }
        guard !channels.isEmpty else { throw .noChannel }
        return (body, channels)
    }

    private func wrap(
        body: ByteBuffer,
        channelValues: [String],
        query: [(name: String, value: String)]
    ) throws(ServerError) -> (payload: ByteBuffer, channels: [String]) {
        let command = query.last { $0.name == "command" }?.value ?? Self.defaultCommand
        guard LHTTPFieldRules.isValidCommand(command) else {
            throw .badQuery("command must be one token without spaces")
        }
        let channels: [String]
        do {
            channels = try LHTTPChannelList.parse(channelValues, limits: self.limits)
        } catch {
            throw .protocolError(error)
        }
        guard !channels.isEmpty else { throw .noChannel }
        let message = LHTTPMessage(
            command: command,
            headers: [LHTTPChannelList.publishHeader: channels.joined(separator: " ")],
            body: body
        )
        guard message.serializedByteCount <= self.limits.maxMessageBytes else {
            throw .protocolError(.messageTooLarge(size: message.serializedByteCount, limit: self.limits.maxMessageBytes))
        }
        do {
            return (try message.serialized(), channels)
        } catch {
            throw .protocolError(error)
        }
    }
}
