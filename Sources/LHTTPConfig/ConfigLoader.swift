import Foundation
import Yams

/// Reads a gateway config: YAML → `${VAR}` expansion → unknown-key check → decoding → validation.
///
/// Each stage collects every problem it can find; the loader throws one `ConfigError`
/// holding all of them, each with file, line, column and key path where known.
public enum ConfigLoader {
    /// Loads the config file at `path`; `${VAR}` references are expanded from `environment`.
    public static func load(
        path: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigError) -> GatewayConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(ConfigProblem(source: path, keyPath: "", message: readFailure(path)))
        }
        return try load(yaml: text, source: path, environment: environment)
    }

    /// Loads a config from YAML text; `source` names it in problems (pass the file path if any).
    /// The environment defaults to empty so tests and embedded configs are hermetic.
    public static func load(
        yaml: String,
        source: String = "<string>",
        environment: [String: String] = [:]
    ) throws(ConfigError) -> GatewayConfig {
        let composed: Node?
        do {
            composed = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigError(syntaxProblem(error, source: source))
        }
        // No document, or an explicit null one (`---` alone, `~`), means "all defaults".
        guard let composed, composed.scalar.map({ $0.style == .plain && $0.string.isNullWord }) != true else {
            return try validated(GatewayConfig(), root: nil, source: source)
        }
        guard case .mapping = composed else {
            throw ConfigError(ConfigProblem(
                source: source, node: composed, path: .root,
                message: "the top level must be a mapping of keys (e.g. \"listen: 127.0.0.1:8081\")"))
        }

        let (root, environmentProblems) = EnvironmentExpander(environment: environment)
            .expand(composed, source: source)
        var problems = environmentProblems + GatewayConfig.schema.unknownKeys(in: root, source: source)

        var config: GatewayConfig?
        // Values with failed references are incomplete; decoding them would only add noise.
        if environmentProblems.isEmpty {
            do {
                config = try YAMLDecoder().decode(GatewayConfig.self, from: root)
            } catch {
                problems.append(decodingProblem(error, root: root, source: source))
            }
        }
        guard problems.isEmpty, let config else {
            throw ConfigError(problems: sortedBySourcePosition(problems))
        }
        return try validated(config, root: root, source: source)
    }

    /// Runs `validate()` and places its problems in the file, when the key is spelt out there.
    private static func validated(_ config: GatewayConfig, root: Node?, source: String) throws(ConfigError) -> GatewayConfig {
        let problems = config.validate().map { problem in
            let node = root.flatMap { ConfigPath(parsing: problem.keyPath).locate(in: $0) }
            return ConfigProblem(source: source, line: node?.mark?.line, column: node?.mark?.column,
                                 keyPath: problem.keyPath, message: problem.message)
        }
        guard problems.isEmpty else { throw ConfigError(problems: sortedBySourcePosition(problems)) }
        return config
    }

    /// Stable sort by line then column; problems without a line keep their order at the end.
    private static func sortedBySourcePosition(_ problems: [ConfigProblem]) -> [ConfigProblem] {
        problems.enumerated().sorted { a, b in
            let left = (a.element.line ?? .max, a.element.column ?? 0, a.offset)
            let right = (b.element.line ?? .max, b.element.column ?? 0, b.offset)
            return left < right
        }.map(\.element)
    }

    /// Says why a file could not be read, naming the likely cause rather than Foundation's error.
    private static func readFailure(_ path: String) -> String {
        var isDirectory: ObjCBool = false
        let files = FileManager.default
        if !files.fileExists(atPath: path, isDirectory: &isDirectory) {
            return "cannot read config file: no such file"
        }
        if isDirectory.boolValue {
            return "cannot read config file: it is a directory"
        }
        if !files.isReadableFile(atPath: path) {
            return "cannot read config file: permission denied"
        }
        return "cannot read config file: not valid UTF-8 text"
    }

    /// A YAML syntax error as a problem at libyaml's reported position.
    private static func syntaxProblem(_ error: any Error, source: String) -> ConfigProblem {
        func problem(_ mark: Mark?, _ message: String) -> ConfigProblem {
            ConfigProblem(source: source, line: mark?.line, column: mark?.column, keyPath: "",
                          message: "invalid YAML: \(message)")
        }
        switch error as? YamlError {
        case .scanner(let context, let message, let mark, _),
             .parser(let context, let message, let mark, _),
             .composer(let context, let message, let mark, _):
            return problem(mark, [context?.text, message].compactMap { $0 }.joined(separator: ", "))
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.sorted().joined(separator: ", ")
            return problem(context.mark, "duplicate key \(keys)")
        default:
            return problem(nil, "\(error)")
        }
    }

    /// A `DecodingError` as a problem at the offending node, in words rather than a Codable dump.
    private static func decodingProblem(_ error: any Error, root: Node, source: String) -> ConfigProblem {
        guard let error = error as? DecodingError else {
            return ConfigProblem(source: source, keyPath: "", message: "\(error)")
        }
        let path: ConfigPath
        let message: String
        switch error {
        case .typeMismatch(let expected, let context):
            path = ConfigPath(codingPath: context.codingPath)
            let found = path.locate(in: root).map(describe) ?? "nothing"
            message = "expected \(describe(expected)), found \(found)"
        case .valueNotFound(let expected, let context):
            path = ConfigPath(codingPath: context.codingPath)
            message = "expected \(describe(expected)), found nothing"
        case .keyNotFound(let key, let context):
            path = ConfigPath(codingPath: context.codingPath + [key])
            message = "missing required key"
        case .dataCorrupted(let context):
            path = ConfigPath(codingPath: context.codingPath)
            message = context.debugDescription
        @unknown default:
            path = .root
            message = "\(error)"
        }
        return ConfigProblem(source: source, node: path.locate(in: root), path: path, message: message)
    }

    /// Names the type decoding wanted, in config-file terms.
    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: "an integer"
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Node.Mapping.Type: "a mapping (indented keys)"
        case is Node.Sequence.Type: "a list"
        case is Node.Scalar.Type: "a single value"
        default: "\(type)"
        }
    }

    /// Shows what the file had instead, short enough for one line.
    private static func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar):
            let text = scalar.string.count > 40 ? scalar.string.prefix(40) + "…" : scalar.string
            return "\"\(text)\""
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }
}

private extension String {
    /// The plain-scalar spellings YAML reads as null.
    var isNullWord: Bool {
        ["", "~", "null", "Null", "NULL"].contains(self)
    }
}
