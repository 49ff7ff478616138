import LHTTPAuth
import LHTTPConfig
import LHTTPNATS
import LHTTPProtocol
import LHTTPServer
import LHTTPUpstream

/// Everything start-up checks about a configuration, done once, without starting anything: the config's
/// own validation, the `upstream.allow` prefixes through libcurl's URL parser (the one that makes the
/// requests), and the cluster's server URLs. `lhttpd --check-config` runs exactly this, so it cannot
/// approve a config that start-up then refuses.
public struct ApplicationPlan: Sendable {
    public let configuration: GatewayConfig
    public let limits: LHTTPLimits
    let upstreamPolicy: UpstreamURLPolicy
    /// `cluster.nats`, parsed (empty: one node).
    let clusterServers: [NATSServerURL]
    /// `auth.jwt`'s verifier, its keys read (nil: no tokens).
    let tokenVerifier: JWTVerifier?
    /// `tls:`'s certificate and key, read (nil: plain HTTP).
    let certificates: TLSCertificates?

    /// - Throws: every problem found, not the first.
    public init(_ configuration: GatewayConfig) throws(ConfigError) {
        var problems = configuration.validate()
        var policy: UpstreamURLPolicy?
        var servers: [NATSServerURL] = []
        do {
            policy = try UpstreamURLPolicy(allow: configuration.upstream.allow)
        } catch {
            problems.append(ConfigProblem(keyPath: "upstream.allow", message: "\(error)"))
        }
        if configuration.cluster.isEnabled {
            do {
                servers = try configuration.cluster.servers()
            } catch {
                problems += error.problems
            }
        }
        var verifier: JWTVerifier?
        if configuration.auth.jwt.isEnabled, problems.isEmpty {
            do {
                verifier = try JWTVerifier(configuration: configuration.auth.jwt)
            } catch {
                problems.append(ConfigProblem(keyPath: "auth.jwt.public_key_files", message: "\(error)"))
            }
        }
        var certificates: TLSCertificates?
        if configuration.tls.isEnabled, problems.isEmpty {
            do throws(ServerError) {
                certificates = try TLSCertificates(certFile: configuration.tls.certFile, keyFile: configuration.tls.keyFile)
            } catch {
                problems.append(ConfigProblem(keyPath: "tls", message: "\(error)"))
            }
        }
        guard problems.isEmpty, let policy else { throw ConfigError(problems: problems) }
        self.certificates = certificates
        self.tokenVerifier = verifier
        self.configuration = configuration
        self.limits = LHTTPLimits(configuration.limits)
        self.upstreamPolicy = policy
        self.clusterServers = servers
    }
}
