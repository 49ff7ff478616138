import LHTTPConfig
import Logging

extension CurlHTTPClient.Configuration {
    /// The client bounds of an `upstream:` config section.
    public init(_ config: UpstreamConfig) {
        self.init(
            maxInFlight: config.maxInFlight,
            maxQueued: config.maxQueued,
            maxQueuedBytes: config.maxQueuedBytes,
            maxResponseBytes: config.maxResponseBytes,
            timeoutMilliseconds: config.timeoutMs,
            connectTimeoutMilliseconds: config.connectTimeoutMs
        )
    }
}
