import Testing
@testable import LHTTPConfig

@Suite("Cluster configuration")
struct ClusterConfigTests {
    @Test func serverURLsParseWithCredentialsPortsAndIPv6() throws {
        #expect(try NATSServerURL(parsing: "nats://127.0.0.1:4222") == NATSServerURL(host: "127.0.0.1", port: 4222))
        #expect(try NATSServerURL(parsing: "nats://localhost") == NATSServerURL(host: "localhost", port: 4222))
        #expect(try NATSServerURL(parsing: "NATS://10.0.0.1:5000/") == NATSServerURL(host: "10.0.0.1", port: 5000))
        #expect(try NATSServerURL(parsing: "nats://[::1]:4300") == NATSServerURL(host: "::1", port: 4300))
        #expect(try NATSServerURL(parsing: "nats://u:p%40ss%3Aw@h:1") == NATSServerURL(host: "h", port: 1, user: "u", password: "p@ss:w"))
        #expect(try NATSServerURL(parsing: "nats://s3cret@h") == NATSServerURL(host: "h", token: "s3cret"))
        #expect(try NATSServerURL(parsing: "nats://u:p@h:1").description == "nats://h:1", "no credentials in logs")
        #expect(try NATSServerURL(parsing: "nats://[::1]:4300").description == "nats://[::1]:4300")
    }

    @Test func badServerURLsAreRefusedWithoutLeakingCredentials() {
        for bad in ["127.0.0.1:4222", "http://h:4222", "nats://", "nats://h:0", "nats://h:99999", "nats://h:x",
                    "nats://h/path", "nats://h?x=1", "nats://[::1", "nats://u:%zz@h", "nats://@h"] {
            #expect(throws: NATSServerURL.ParseError.self, "\(bad)") { try NATSServerURL(parsing: bad) }
        }
        do {
            _ = try NATSServerURL(parsing: "nats://admin:hunter2@h:bad")
            Issue.record("accepted a bad port")
        } catch {
            #expect(!error.message.contains("hunter2"))
            #expect(error.message.contains("***"))
        }
    }

    @Test func sectionLoadsFromYAMLAndEnablesTheCluster() throws {
        let config = try ConfigLoader.load(yaml: """
            cluster:
              nats: ["nats://127.0.0.1:4222", "nats://token@127.0.0.1:4223"]
              subject_prefix: prod.lhttp
              node_id: edge-1
              max_pending_bytes: 1024
              reconnect_min_ms: 50
              reconnect_max_ms: 60
            """)
        #expect(config.cluster.isEnabled)
        #expect(try config.cluster.servers().map(\.port) == [4222, 4223])
        #expect(try config.cluster.servers()[1].token == "token")
        #expect(config.cluster.subjectPrefix == "prod.lhttp")
        #expect(config.cluster.nodeID == "edge-1")
        #expect(config.cluster.maxPendingBytes == 1024)
        #expect(config.cluster.connectTimeoutMs == 2000)
        #expect(!GatewayConfig().cluster.isEnabled)
    }

    @Test func everyBrokenRuleIsReportedWithItsLine() {
        do {
            _ = try ConfigLoader.load(yaml: """
                cluster:
                  nats: ["nats://ok:4222", "tcp://x:1"]
                  subject_prefix: "lhttp.>"
                  node_id: "has space"
                  max_pending_bytes: 0
                  reconnect_min_ms: 500
                  reconnect_max_ms: 100
                """)
            Issue.record("accepted")
        } catch {
            #expect(error.problems.map(\.keyPath) == [
                "cluster.nats[1]", "cluster.subject_prefix", "cluster.node_id", "cluster.max_pending_bytes", "cluster.reconnect_max_ms",
            ])
            #expect(error.problems.allSatisfy { $0.line != nil })
        }
    }

    @Test func subjectsMustFitNATSControlLines() {
        let config = GatewayConfig(limits: LimitsConfig(maxHeaderLineBytes: 8192, maxChannelNameBytes: 2000), cluster: ClusterConfig(nats: ["nats://h"]))
        #expect(config.validate().map(\.keyPath) == ["cluster.subject_prefix"])
        #expect(ClusterConfig.isPlainTokenList("lhttp.prod-1_a"))
        #expect(!ClusterConfig.isPlainTokenList("lhttp.>"))
        #expect(!ClusterConfig.isPlainTokenList(""))
        #expect(!ClusterConfig.isPlainTokenList("a..b"))
    }

    @Test func secretAndFanoutCapLoadWithTheirDefaultsAndBounds() throws {
        let defaults = ClusterConfig()
        #expect(defaults.secret == "" && defaults.maxEnvelopeAgeMs == 60_000 && defaults.maxFanoutBytes == 4_194_304)
        let config = try ConfigLoader.load(yaml: """
            cluster:
              nats: ["nats://127.0.0.1:4222"]
              secret: "0123456789abcdef-shared"
              max_envelope_age_ms: 0
              max_fanout_bytes: 0
            """)
        #expect(config.cluster.secret == "0123456789abcdef-shared")
        #expect(config.cluster.maxEnvelopeAgeMs == 0)
        #expect(config.cluster.maxFanoutBytes == 0)
        do {
            _ = try ConfigLoader.load(yaml: """
                cluster:
                  secret: "hunter2"
                  max_envelope_age_ms: -1
                  max_fanout_bytes: -5
                """)
            Issue.record("accepted")
        } catch {
            #expect(error.problems.map(\.keyPath) == ["cluster.secret", "cluster.max_envelope_age_ms", "cluster.max_fanout_bytes"])
            #expect(!error.problems.map(\.message).joined().contains("hunter2"), "the secret is never shown")
        }
    }
}
