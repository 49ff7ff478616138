import LHTTPProtocol
import NIOCore

/// Decides what becomes of a message that arrived on a channel's subject. A plain value: the broker
/// hands it the payload and the channel its subscription is for, and does what the verdict says.
///
/// Nothing on a subject is trusted. A copy is delivered only when
/// - it is an envelope (``NATSEnvelope``), signed with `cluster.secret` when one is set (`LHC1` is
///   refused then) and stamped within `cluster.max_envelope_age_ms` of this node's clock;
/// - the subject's channel is in the envelope's channel list;
/// - the message is an LHTTP message within this node's limits whose `publish` header names exactly
///   the envelope's channels (so no other bytes ever reach a client);
///
/// and then only to the subscribers of the subject's channel (NATS subject permissions confine it),
/// minus those subscribed to a channel listed before it: they get the copy of that earlier channel. So a
/// connection on several channels of one publication gets it once without any state a stranger could
/// poison.
struct NATSInboundFilter: Sendable {
    /// This process's origin: its own echoes are ignored.
    var origin: String
    /// `cluster.secret`; nil: envelopes are not checked (both versions are read, `LHC2` unverified).
    var signer: NATSEnvelopeSigner?
    /// `cluster.max_envelope_age_ms` (0: no check); signed envelopes only.
    var maxAgeMs: Int64
    var parser: LHTTPParser
    /// Which channels keep history in the cluster's stream (nil: none). Their connections get a
    /// publication from its stored copy, so a plain copy skips them: the exclusion order puts the
    /// channels with history first, in list order, then the others.
    var keepsHistory: (@Sendable (String) -> Bool)?

    enum Verdict: Equatable {
        /// Deliver `message` to the subscribers of the subject's channel that are not on any of `excluded`.
        case deliver(ByteBuffer, excluding: ArraySlice<String>)
        /// Our own publication came back.
        case ownEcho
        case reject(NATSRejection)
    }

    /// - Parameter nowMs: this node's wall clock, asked only for a signed envelope.
    func verdict(for payload: ByteBuffer, on channel: String, nowMs: () -> Int64) -> Verdict {
        guard let envelope = NATSEnvelope(decoding: payload) else { return .reject(.malformed) }
        // Cheap checks first: a flood of strangers' messages costs no HMAC.
        guard let position = envelope.channels.firstIndex(of: channel) else { return .reject(.wrongSubject) }
        if let signer = self.signer {
            guard let signature = envelope.signature else { return .reject(.unsigned) }
            let valid = signature.signed.withUnsafeReadableBytes { signer.isValid(hex: signature.hexMAC.readableBytesView, for: $0) }
            guard valid else { return .reject(.badSignature) }
            if self.maxAgeMs > 0 {
                let (age, overflow) = nowMs().subtractingReportingOverflow(signature.timestampMs)
                guard !overflow, age.magnitude <= self.maxAgeMs.magnitude else { return .reject(.stale) }
            }
        }
        guard envelope.origin != self.origin else { return .ownEcho }
        do {
            let message = try self.parser.parse(envelope.message)
            guard try message.channels(LHTTPChannelList.publishHeader, limits: self.parser.limits) == envelope.channels else {
                return .reject(.invalidMessage)
            }
        } catch {
            return .reject(.invalidMessage)
        }
        guard let keepsHistory = self.keepsHistory else { return .deliver(envelope.message, excluding: envelope.channels[..<position]) }
        let before = envelope.channels[..<position]
        if keepsHistory(channel) { return .deliver(envelope.message, excluding: ArraySlice(before.filter(keepsHistory))) }
        return .deliver(envelope.message, excluding: ArraySlice(envelope.channels.filter(keepsHistory) + before.filter { !keepsHistory($0) }))
    }

    enum StoredVerdict {
        case accepted(NATSEnvelope, LHTTPMessage)
        case rejected(NATSRejection)
    }

    /// A publication read from the cluster's history stream (republished live, or read back for a
    /// recovery): the same checks as a live copy, except that our own publications count (the stream is
    /// the order every node delivers in, this one included) and, for a read-back one, the age (it may be
    /// hours old). - Returns: the envelope and its parsed message, or why it is refused.
    func stored(_ payload: ByteBuffer, on channel: String, live: Bool, nowMs: () -> Int64) -> StoredVerdict {
        guard let envelope = NATSEnvelope(decoding: payload) else { return .rejected(.malformed) }
        guard envelope.channels.contains(channel) else { return .rejected(.wrongSubject) }
        if let signer = self.signer {
            guard let signature = envelope.signature else { return .rejected(.unsigned) }
            let valid = signature.signed.withUnsafeReadableBytes { signer.isValid(hex: signature.hexMAC.readableBytesView, for: $0) }
            guard valid else { return .rejected(.badSignature) }
            if live, self.maxAgeMs > 0 {
                let (age, overflow) = nowMs().subtractingReportingOverflow(signature.timestampMs)
                guard !overflow, age.magnitude <= self.maxAgeMs.magnitude else { return .rejected(.stale) }
            }
        }
        do {
            let message = try self.parser.parse(envelope.message)
            guard try message.channels(LHTTPChannelList.publishHeader, limits: self.parser.limits) == envelope.channels else {
                return .rejected(.invalidMessage)
            }
            return .accepted(envelope, message)
        } catch {
            return .rejected(.invalidMessage)
        }
    }
}
