import Foundation
import Testing
@testable import LHTTPConfig

@Suite("Loading and decoding")
struct ConfigLoaderTests {
    @Test("Defaults match the documented values")
    func defaults() {
        let config = GatewayConfig()
        #expect(config.listen == ListenAddress(host: "127.0.0.1", port: 8081))
        #expect(config.websocket.paths == ["/", "/ws", "/echo"])
        #expect(config.staticDir == "")
        #expect(config.publish == PublishConfig(path: "/publish", token: ""))
        #expect(config.limits == LimitsConfig(
            maxMessageBytes: 1_048_576, maxHeaders: 64, maxHeaderLineBytes: 8192,
            maxChannelsPerMessage: 64, maxChannelNameBytes: 256, maxOutboundBytes: 1_048_576))
        #expect(config.log.level == .info)
        #expect(config.validate().isEmpty)
    }

    @Test("An empty document yields all defaults", arguments: ["", "{}", "# only a comment\n", "---\n", "~"])
    func emptyDocument(yaml: String) throws {
        #expect(try ConfigLoader.load(yaml: yaml) == GatewayConfig())
    }

    @Test("Given keys override defaults; others keep them")
    func partialOverride() throws {
        let config = try ConfigLoader.load(yaml: """
            listen: "[::1]:9000"
            websocket:
              paths: [/live]
            publish:
              token: s3cret
            limits:
              max_headers: 10
            log:
              level: debug
            """)
        #expect(config.listen == ListenAddress(host: "::1", port: 9000))
        #expect(config.websocket.paths == ["/live"])
        #expect(config.publish == PublishConfig(path: "/publish", token: "s3cret"))
        #expect(config.limits.maxHeaders == 10)
        #expect(config.limits.maxMessageBytes == 1_048_576)
        #expect(config.log.level == .debug)
    }

    @Test("A section given as null keeps its defaults")
    func nullSection() throws {
        #expect(try ConfigLoader.load(yaml: "limits:\nlog:\n") == GatewayConfig())
    }

    @Test("A top level that is not a mapping is an error", arguments: ["just text", "- a\n- b\n", "42"])
    func topLevelNotMapping(yaml: String) {
        let found = problems(yaml)
        #expect(found.count == 1)
        #expect(found.first?.keyPath == "")
        #expect(found.first?.line == 1)
        #expect(found.first?.message.contains("top level must be a mapping") == true)
    }

    @Test("An unknown key is reported with its path, line, column and a suggestion")
    func unknownKey() {
        let found = problems("limits:\n  max_mesage_bytes: 5\n")
        #expect(found == [ConfigProblem(
            source: "test.yaml", line: 2, column: 3, keyPath: "limits.max_mesage_bytes",
            message: "unknown key (did you mean max_message_bytes?)")])
        #expect(found.first?.description
            == "test.yaml:2:3: limits.max_mesage_bytes: unknown key (did you mean max_message_bytes?)")
    }

    @Test("An unknown key with no close match gets no suggestion")
    func unknownKeyWithoutSuggestion() {
        let found = problems("colour: blue\n")
        #expect(found.map(\.keyPath) == ["colour"])
        #expect(found.first?.message == "unknown key")
        #expect(found.first?.line == 1)
        #expect(found.first?.column == 1)
    }

    @Test("Every unknown key is reported, at every depth, in source order")
    func multipleUnknownKeys() {
        let found = problems("""
            listen: 127.0.0.1:1
            lisen: x
            publish:
              path: /p
              tokn: abc
            limits:
              max_headers: 5
              max_hedaers: 6
              bogus: 1
            """)
        #expect(found.map(\.keyPath) == ["lisen", "publish.tokn", "limits.max_hedaers", "limits.bogus"])
        #expect(found.map(\.line) == [2, 5, 8, 9])
        #expect(found.map(\.message) == [
            "unknown key (did you mean listen?)",
            "unknown key (did you mean token?)",
            "unknown key (did you mean max_headers?)",
            "unknown key",
        ])
    }

    @Test("Keys inside a value (not a section) are left to decoding")
    func keysInsideValue() {
        let found = problems("listen:\n  host: x\n")
        #expect(found.count == 1)
        #expect(found.first?.keyPath == "listen")
        #expect(found.first?.message == "expected a single value, found a mapping")
    }

    @Test("A type error names the key path, the line and what was found")
    func typeError() {
        let found = problems("log:\n  level: info\nlimits:\n  max_headers: lots\n")
        #expect(found == [ConfigProblem(
            source: "test.yaml", line: 4, column: 16, keyPath: "limits.max_headers",
            message: "expected an integer, found \"lots\"")])
    }

    @Test("Type errors in lists and sections point at the item")
    func typeErrorInList() {
        let list = problems("websocket:\n  paths:\n    - /a\n    - [nested]\n")
        #expect(list.map(\.keyPath) == ["websocket.paths[1]"])
        #expect(list.first?.line == 4)

        let section = problems("limits: 5\n")
        #expect(section.map(\.keyPath) == ["limits"])
        #expect(section.first?.message == "expected a mapping (indented keys), found \"5\"")
    }

    @Test("Bad enum and listen values are reported as messages, not Codable dumps")
    func dataErrors() {
        let level = problems("log:\n  level: loud\n")
        #expect(level.map(\.keyPath) == ["log.level"])
        #expect(level.first?.line == 2)
        #expect(level.first?.message
            == "\"loud\" is not a log level (expected trace|debug|info|notice|warning|error|critical)")

        let listen = problems("listen: 8081\n")
        #expect(listen.map(\.keyPath) == ["listen"])
        #expect(listen.first?.message.contains("expected host:port") == true)
    }

    @Test("Unknown keys and a type error are reported together")
    func unknownAndTypeTogether() {
        let found = problems("bogus: 1\nlimits:\n  max_headers: lots\n")
        #expect(found.map(\.keyPath) == ["bogus", "limits.max_headers"])
    }

    @Test("YAML syntax errors and duplicate keys carry a line")
    func syntaxErrors() {
        let syntax = problems("listen: [unclosed\n")
        #expect(syntax.count == 1)
        #expect(syntax.first?.line != nil)
        #expect(syntax.first?.message.hasPrefix("invalid YAML") == true)

        let duplicate = problems("listen: a:1\nlisten: b:2\n")
        #expect(duplicate.first?.message == "invalid YAML: duplicate key listen")
        #expect(duplicate.first?.line != nil)
    }

    @Test("ConfigError prints one line per problem")
    func errorDescription() {
        let error = ConfigError(problems: [
            ConfigProblem(source: "a.yaml", line: 7, column: 3, keyPath: "limits.x", message: "unknown key"),
            ConfigProblem(source: "a.yaml", keyPath: "", message: "cannot read config file: no such file"),
            ConfigProblem(keyPath: "publish.path", message: "bad"),
        ])
        #expect(error.description == """
            a.yaml:7:3: limits.x: unknown key
            a.yaml: cannot read config file: no such file
            publish.path: bad
            """)
    }

    @Test("A missing file is an error naming the path")
    func missingFile() {
        let path = NSTemporaryDirectory() + "lhttpd-no-such-\(UUID().uuidString).yaml"
        #expect(throws: ConfigError(ConfigProblem(
            source: path, keyPath: "", message: "cannot read config file: no such file"))) {
            try ConfigLoader.load(path: path, environment: [:])
        }
    }

    @Test("A directory given as the config file is an error naming the path")
    func directoryAsFile() {
        let path = NSTemporaryDirectory()
        #expect(throws: ConfigError(ConfigProblem(
            source: path, keyPath: "", message: "cannot read config file: it is a directory"))) {
            try ConfigLoader.load(path: path, environment: [:])
        }
    }

    @Test("Problems from a file carry its path as source")
    func fileSource() throws {
        let path = NSTemporaryDirectory() + "lhttpd-\(UUID().uuidString).yaml"
        try "log:\n  levl: info\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: ConfigError(ConfigProblem(
            source: path, line: 2, column: 3, keyPath: "log.levl", message: "unknown key (did you mean level?)"))) {
            try ConfigLoader.load(path: path, environment: [:])
        }
    }
}
