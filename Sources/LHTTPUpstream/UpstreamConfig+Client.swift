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

extension UpstreamFilter {
    /// The filter and its client for an `upstream:` section. The caller owns the client: call
    /// `await shutdown()` on it when the server has stopped.
    public static func make(_ config: UpstreamConfig, logger: Logger) throws(UpstreamError) -> (UpstreamFilter, CurlHTTPClient) {
        let policy = try UpstreamURLPolicy(allow: config.allow)
        let client = CurlHTTPClient(configuration: CurlHTTPClient.Configuration(config), logger: logger)
        return (UpstreamFilter(client: client, policy: policy, maxInFlightPerConnection: config.maxInFlightPerConnection, logger: logger), client)
    }
}
