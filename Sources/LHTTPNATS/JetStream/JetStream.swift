import Foundation
import NIOCore

/// The JetStream API lhttpd uses, spoken over a ``NATSClient``'s requests: make sure a stream exists as
/// configured, store a message (acknowledged, deduplicated by `Nats-Msg-Id`), and read stored messages
/// back one at a time by subject and sequence (direct get: nats-server 2.9 has no batched form).
///
/// Every call fails fast while the link is down (``NATSError/notConnected``) and is bounded by `timeout`:
/// a JetStream that is unreachable never holds a caller.
public struct JetStream: Sendable {
    public let client: NATSClient
    public let timeout: TimeAmount

    public init(client: NATSClient, timeout: TimeAmount = .seconds(2)) {
        self.client = client
        self.timeout = timeout
    }

    /// The stream's configuration and state; nil when there is no such stream.
    public func streamInfo(_ name: String) async throws(NATSError) -> JetStreamStreamInfo? {
        let answer = try await self.client.request(ByteBuffer(), to: "$JS.API.STREAM.INFO.\(name)", timeout: self.timeout)
        switch try Self.decode(JetStreamStreamInfo.self, from: answer) {
        case .success(let info): return info
        case .failure(.jetStream(_, Self.streamNotFound, _)): return nil
        case .failure(let error): throw error
        }
    }

    /// Creates the stream, or updates it when its configuration differs from `config`; returns it as it is now.
    public func ensureStream(_ config: JetStreamStreamConfig) async throws(NATSError) -> JetStreamStreamInfo {
        let body: ByteBuffer
        do {
            body = ByteBuffer(bytes: try JSONEncoder().encode(config))
        } catch {
            throw .protocolViolation("stream configuration does not encode: \(error)")
        }
        let verb: String
        if let existing = try await self.streamInfo(config.name) {
            if config.isSatisfied(by: existing.config) { return existing }
            verb = "UPDATE"
        } else {
            verb = "CREATE"
        }
        let answer = try await self.client.request(body, to: "$JS.API.STREAM.\(verb).\(config.name)", timeout: self.timeout)
        switch try Self.decode(JetStreamStreamInfo.self, from: answer) {
        case .success(let info): return info
        case .failure(let error): throw error
        }
    }

    /// Stores `payload` on `subject` (a subject of a stream). `messageID` makes a repeat within the stream's
    /// duplicate window a no-op that is answered with the first one's sequence.
    public func publish(_ payload: ByteBuffer, to subject: String, messageID: String? = nil, headers: NATSHeaders = NATSHeaders(status: nil)) -> EventLoopFuture<JetStreamPubAck> {
        var headers = headers
        if let messageID { headers.add(name: "Nats-Msg-Id", value: messageID) }
        return self.client.requestFuture(payload, to: subject, headers: headers.fields.isEmpty ? nil : headers, timeout: self.timeout)
            .flatMapThrowing { answer in
                switch try Self.decode(JetStreamPubAck.self, from: answer) {
                case .success(let ack): return ack
                case .failure(let error): throw error
                }
            }
    }

    /// The first message stored on `subject` at sequence `sequence` or later; nil when there is none.
    public func message(on subject: String, from sequence: UInt64, stream: String) -> EventLoopFuture<JetStreamStoredMessage?> {
        self.directGet(#"{"seq":\#(max(1, sequence)),"next_by_subj":"\#(subject)"}"#, stream: stream)
    }

    /// The newest message stored on `subject`; nil when there is none.
    public func lastMessage(on subject: String, stream: String) -> EventLoopFuture<JetStreamStoredMessage?> {
        self.directGet(#"{"last_by_subj":"\#(subject)"}"#, stream: stream)
    }

    private func directGet(_ request: String, stream: String) -> EventLoopFuture<JetStreamStoredMessage?> {
        self.client.requestFuture(ByteBuffer(string: request), to: "$JS.API.DIRECT.GET.\(stream)", timeout: self.timeout)
            .flatMapThrowing { answer -> JetStreamStoredMessage? in
                guard let headers = answer.headers else {
                    // Errors of the API come as JSON; a message always has headers.
                    if case .failure(let error) = try Self.decode(JetStreamPubAck.self, from: answer) { throw error }
                    throw NATSError.protocolViolation("direct get answered without headers")
                }
                if headers.status == 404 { return nil }
                if let status = headers.status { throw NATSError.jetStream(code: status, errCode: 0, description: headers.statusDescription) }
                guard let subject = headers["Nats-Subject"], let sequence = headers["Nats-Sequence"].flatMap(UInt64.init) else {
                    throw NATSError.protocolViolation("direct get answer without Nats-Subject and Nats-Sequence")
                }
                return JetStreamStoredMessage(subject: subject, sequence: sequence, headers: headers, payload: answer.payload)
            }
    }

    /// `stream not found`.
    static let streamNotFound = 10059

    /// An API error (`{"error":{"code":404,"err_code":10059,"description":"stream not found"}}`).
    struct APIError: Decodable {
        var code: Int
        var errCode: Int?
        var description: String
        enum CodingKeys: String, CodingKey {
            case code, description
            case errCode = "err_code"
        }
        var natsError: NATSError { .jetStream(code: self.code, errCode: self.errCode ?? 0, description: self.description) }
    }

    private struct ErrorEnvelope: Decodable {
        var error: APIError?
    }

    /// The answer as `T`, or the API error it holds.
    static func decode<T: Decodable>(_ type: T.Type, from answer: NATSMessage) throws(NATSError) -> Result<T, NATSError> {
        let data = Data(answer.payload.readableBytesView)
        if let status = answer.headers?.status, answer.payload.readableBytes == 0 {
            throw .jetStream(code: status, errCode: 0, description: answer.headers?.statusDescription ?? "")
        }
        do {
            if let error = try JSONDecoder().decode(ErrorEnvelope.self, from: data).error { return .failure(error.natsError) }
            return .success(try JSONDecoder().decode(T.self, from: data))
        } catch {
            throw .protocolViolation("JetStream answer does not decode as \(T.self): \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
    }
}
