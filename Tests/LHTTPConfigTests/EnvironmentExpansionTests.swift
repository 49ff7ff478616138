import Testing
@testable import LHTTPConfig

@Suite("${VAR} expansion")
struct EnvironmentExpansionTests {
    @Test("A set variable is substituted, also inside a longer string")
    func setVariable() throws {
        let config = try ConfigLoader.load(
            yaml: "publish:\n  token: Bearer-${X}-y\n  path: ${P}\n",
            environment: ["X": "abc", "P": "/in"])
        #expect(config.publish == PublishConfig(path: "/in", token: "Bearer-abc-y"))
    }

    @Test("An unquoted reference can produce an integer")
    func integerValue() throws {
        let config = try ConfigLoader.load(yaml: "limits:\n  max_headers: ${N}\n", environment: ["N": "12"])
        #expect(config.limits.maxHeaders == 12)
    }

    @Test("${VAR:-default} uses the default when VAR is unset or empty, and VAR when set")
    func defaultValue() throws {
        let yaml = "publish:\n  token: ${TOKEN:-fallback}\n"
        #expect(try ConfigLoader.load(yaml: yaml).publish.token == "fallback")
        #expect(try ConfigLoader.load(yaml: yaml, environment: ["TOKEN": ""]).publish.token == "fallback")
        #expect(try ConfigLoader.load(yaml: yaml, environment: ["TOKEN": "real"]).publish.token == "real")
    }

    @Test("A set but empty variable without a default expands to empty")
    func emptyVariable() throws {
        let config = try ConfigLoader.load(yaml: "publish:\n  token: \"${TOKEN}\"\n", environment: ["TOKEN": ""])
        #expect(config.publish.token == "")
    }

    @Test("An unset variable without a default is a problem with path and line; all are reported")
    func unsetVariable() {
        let found = problems("log:\n  level: info\npublish:\n  token: ${TOKEN}\n  path: ${P1}${P2}\n")
        #expect(found == [
            ConfigProblem(source: "test.yaml", line: 4, column: 10, keyPath: "publish.token",
                          message: "environment variable TOKEN is not set"),
            ConfigProblem(source: "test.yaml", line: 5, column: 9, keyPath: "publish.path",
                          message: "environment variable P1 is not set"),
            ConfigProblem(source: "test.yaml", line: 5, column: 9, keyPath: "publish.path",
                          message: "environment variable P2 is not set"),
        ])
    }

    @Test("A value with a failed reference is not decoded, so it adds no follow-on problems")
    func noFollowOnProblems() {
        // Decoding ":8081" would add "missing host" on top of the real cause.
        let found = problems("listen: ${HOST}:8081\n")
        #expect(found.map(\.message) == ["environment variable HOST is not set"])
    }

    @Test("An unset variable in a list item is reported with the item's index")
    func unsetInList() {
        let found = problems("websocket:\n  paths:\n    - /a\n    - ${WS}\n")
        #expect(found.map(\.keyPath) == ["websocket.paths[1]"])
        #expect(found.first?.line == 4)
    }

    @Test("$${ is a literal ${ and a lone $ is kept")
    func literalDollar() throws {
        let config = try ConfigLoader.load(
            yaml: "publish:\n  token: a$${X}b$c$$d\n", environment: ["X": "no"])
        #expect(config.publish.token == "a${X}b$c$$d")
    }

    @Test("A value containing YAML syntax stays one string", arguments: ["a: b", "[x, y]", "{k: v}", "x\nbogus: 1"])
    func valueWithYAMLSyntax(value: String) throws {
        let config = try ConfigLoader.load(yaml: "publish:\n  token: ${T}\n", environment: ["T": value])
        #expect(config.publish.token == value)
    }

    @Test("Malformed references are problems", arguments: [
        ("${}", "invalid environment variable reference \"${}\""),
        ("${1X}", "invalid environment variable reference \"${1X}\""),
        ("${ X}", "invalid environment variable reference \"${ X}\""),
        ("abc${X", "unterminated \"${\" (write \"$${\" for a literal \"${\")"),
    ])
    func malformed(value: String, message: String) {
        let found = problems("publish:\n  token: \"\(value)\"\n", environment: ["X": "x"])
        #expect(found.map(\.message) == [message])
        #expect(found.first?.keyPath == "publish.token")
    }

    @Test("Keys are not expanded")
    func keysNotExpanded() {
        let found = problems("${K}: 1\n", environment: ["K": "listen"])
        #expect(found.map(\.keyPath) == ["${K}"])
        #expect(found.first?.message == "unknown key")
    }

    @Test("The string expander handles references in sequence")
    func stringExpander() {
        let expander = EnvironmentExpander(environment: ["A": "1", "B": "2"])
        let (text, messages) = expander.expand("${A}${B}-${C:-3}")
        #expect(text == "12-3")
        #expect(messages.isEmpty)
        #expect(expander.expand("no refs").0 == "no refs")
        #expect(expander.expand("${A:-x:-y}").0 == "1")
        #expect(expander.expand("${C:-x:-y}").0 == "x:-y")
    }
}
