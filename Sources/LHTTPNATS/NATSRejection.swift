/// Why a message on the cluster's subjects was not delivered (the `reason` label of
/// `lhttp_cluster_rejected_total`). Nothing on a subject is trusted: the subject is NATS's, the
/// payload anyone's who may publish there.
public enum NATSRejection: String, Sendable, CaseIterable {
    /// Not an lhttpd envelope (no header line, unknown version, a field that does not parse).
    case malformed
    /// An unsigned (`LHC1`) envelope while `cluster.secret` is set.
    case unsigned
    /// A signed envelope whose HMAC does not match (another secret, or forged).
    case badSignature = "bad_signature"
    /// A signed envelope whose timestamp is further than `cluster.max_envelope_age_ms` from this node's clock.
    case stale
    /// The channel of the subject it arrived on is not in the envelope's channel list.
    case wrongSubject = "wrong_subject"
    /// The message is not an LHTTP message within this node's limits, or its `publish` header does not
    /// name exactly the envelope's channels.
    case invalidMessage = "invalid_message"

    /// What the log line says.
    var explanation: String {
        switch self {
        case .malformed: return "not an lhttpd envelope (another publisher on the subject prefix?)"
        case .unsigned: return "unsigned envelope while cluster.secret is set (a node without the secret, or a stranger)"
        case .badSignature: return "envelope signature does not match (a node with another cluster.secret, or forged)"
        case .stale: return "signed envelope older or newer than cluster.max_envelope_age_ms (a replay, or clocks apart)"
        case .wrongSubject: return "envelope does not list the channel of the subject it came on"
        case .invalidMessage: return "not a valid LHTTP publication to the envelope's channels"
        }
    }
}
