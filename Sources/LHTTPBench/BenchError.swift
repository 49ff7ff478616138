/// Why a bench scenario could not run. The one error type of `LHTTPBench`.
public enum BenchError: Error, CustomStringConvertible, Sendable {
    case upgradeRefused(String)
    case connectionClosed(String)
    case timeout(String)
    case serverError(String)
    /// The scenario cannot run against this server (NATS has no HTTP publish).
    case unsupported(String)

    public var description: String {
        switch self {
        case .upgradeRefused(let why): return "websocket upgrade refused: \(why)"
        case .connectionClosed(let what): return "connection closed: \(what)"
        case .timeout(let what): return "timed out: \(what)"
        case .serverError(let why): return "server error: \(why)"
        case .unsupported(let why): return "unsupported: \(why)"
        }
    }
}
