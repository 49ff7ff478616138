// swift-tools-version: 6.2
import PackageDescription

/// The fan-out path (hub, connection handler, writer): release builds drop the run-time exclusivity
/// checks there (`swift_beginAccess` on every state-machine mutation of a class's property was 3% of a
/// loaded server's CPU). Debug builds, which the tests run, keep them, so a violation still traps.
let hotPathSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "lhttpd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "lhttpd", targets: ["lhttpd"]),
        .executable(name: "lhttp-bench", targets: ["lhttp-bench"]),
        .executable(name: "lhttp", targets: ["lhttp"]),
        .library(name: "LHTTPProtocol", targets: ["LHTTPProtocol"]),
        .library(name: "LHTTPGateway", targets: ["LHTTPGateway"]),
        .library(name: "LHTTPServer", targets: ["LHTTPServer"]),
        .library(name: "LHTTPConfig", targets: ["LHTTPConfig"]),
        .library(name: "LHTTPClient", targets: ["LHTTPClient"]),
        .library(name: "LHTTPUpstream", targets: ["LHTTPUpstream"]),
        .library(name: "LHTTPNATS", targets: ["LHTTPNATS"]),
        .library(name: "LHTTPApp", targets: ["LHTTPApp"]),
        .library(name: "LHTTPAuth", targets: ["LHTTPAuth"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // The wire format: message, headers, parser, serializer, multipart. Pure; NIOCore only.
        .target(
            name: "LHTTPProtocol",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        // Hub (channels, fan-out), sessions, processors, header filters, Broker + local broker.
        .target(
            name: "LHTTPGateway",
            dependencies: [
                "LHTTPProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: hotPathSettings
        ),
        // YAML → typed configuration, validation with line-numbered errors.
        .target(
            name: "LHTTPConfig",
            dependencies: [.product(name: "Yams", package: "Yams")]
        ),
        // C shim over libcurl: typed setopt/getinfo wrappers, nothing else.
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // libcurl multi client on its own thread: the upstream header and the webhooks.
        .target(
            name: "LHTTPUpstream",
            dependencies: [
                "CCurl", "LHTTPProtocol", "LHTTPGateway", "LHTTPConfig",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // NATS client (protocol, state machines, thin handler, reconnecting client) and the NATS broker.
        .target(
            name: "LHTTPNATS",
            dependencies: [
                "LHTTPGateway", "LHTTPConfig", "LHTTPProtocol",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // Connection tokens: JWT verification (vapor/jwt-kit) behind the core's TokenVerifier.
        .target(
            name: "LHTTPAuth",
            dependencies: [
                "LHTTPGateway", "LHTTPConfig", "LHTTPProtocol",
                .product(name: "JWTKit", package: "jwt-kit"),
            ]
        ),
        // Sockets: HTTP/1.1, websocket upgrade (RFC 6455 state machine), /publish, /healthz, static files.
        .target(
            name: "LHTTPServer",
            dependencies: [
                "LHTTPProtocol", "LHTTPGateway", "LHTTPConfig",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: hotPathSettings
        ),
        // The composition root: one node (metrics, curl clients, NATS broker, gateway, server) as services,
        // for the executable and the tests alike.
        .target(
            name: "LHTTPApp",
            dependencies: [
                "LHTTPAuth", "LHTTPConfig", "LHTTPGateway", "LHTTPNATS", "LHTTPProtocol", "LHTTPServer", "LHTTPUpstream",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Swift client library: websocket LHTTP client and HTTP publisher (tests, CLI, benchmark).
        .target(
            name: "LHTTPClient",
            dependencies: [
                "LHTTPProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Load generator: scenarios, LHTTP, Nchan and NATS dialects, raw websocket clients, result reports and charts.
        .target(
            name: "LHTTPBench",
            dependencies: [
                "LHTTPUpstream",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .executableTarget(
            name: "lhttp-bench",
            dependencies: [
                "LHTTPBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Terminal client: interactive, and one-shot publish/subscribe for scripts.
        .executableTarget(
            name: "lhttp",
            dependencies: [
                "LHTTPClient", "LHTTPProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // libFuzzer target for the wire format (`make fuzz`); an entry point only.
        .executableTarget(
            name: "lhttp-fuzz",
            dependencies: ["LHTTPProtocol", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .executableTarget(
            name: "lhttpd",
            dependencies: [
                "LHTTPApp", "LHTTPConfig", "LHTTPServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Real servers, processes and raw connections for the tests: a node through the composition root
        // (TestServer), an HTTP backend, nats-server, child processes, raw websocket frames.
        .target(
            name: "LHTTPTestSupport",
            dependencies: [
                "LHTTPApp", "LHTTPClient", "LHTTPConfig", "LHTTPGateway", "LHTTPNATS", "LHTTPProtocol", "LHTTPServer", "LHTTPUpstream",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            path: "Tests/LHTTPTestSupport"
        ),
        // One test target per module.
        .testTarget(name: "LHTTPProtocolTests", dependencies: ["LHTTPProtocol"]),
        .testTarget(name: "LHTTPConfigTests", dependencies: ["LHTTPConfig"]),
        .testTarget(
            name: "LHTTPGatewayTests",
            dependencies: [
                "LHTTPGateway", "LHTTPProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "LHTTPServerTests",
            dependencies: [
                "LHTTPServer", "LHTTPGateway", "LHTTPProtocol", "LHTTPTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "LHTTPUpstreamTests",
            dependencies: [
                "LHTTPUpstream", "LHTTPConfig", "LHTTPGateway", "LHTTPProtocol", "LHTTPTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "LHTTPNATSTests",
            dependencies: [
                "LHTTPNATS", "LHTTPTestSupport", "LHTTPConfig", "LHTTPGateway", "LHTTPProtocol",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "LHTTPClientTests",
            dependencies: [
                "LHTTPClient", "LHTTPProtocol", "LHTTPTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "LHTTPBenchTests",
            dependencies: ["LHTTPBench", "LHTTPConfig", "LHTTPTestSupport", .product(name: "NIOPosix", package: "swift-nio")]
        ),
        // End to end, over real sockets, through the composition root (and the lhttpd binary).
        .testTarget(
            name: "LHTTPAppTests",
            dependencies: [
                "LHTTPApp", "LHTTPAuth",
                .product(name: "Crypto", package: "swift-crypto"), "LHTTPServer", "LHTTPClient", "LHTTPGateway", "LHTTPConfig", "LHTTPProtocol", "LHTTPUpstream",
                "LHTTPNATS", "LHTTPTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
    ]
)
