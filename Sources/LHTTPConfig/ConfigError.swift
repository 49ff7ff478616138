/// One thing wrong with a configuration: where it is and what is wrong.
///
/// Problems are collected rather than thrown one by one so that a user fixing a
/// config file sees every mistake in a single run.
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    /// The file path (or the `source` label given to `ConfigLoader.load(yaml:)`); empty when unknown.
    public var source: String
    /// 1-based line in the source, when the problem can be tied to a YAML node.
    public var line: Int?
    /// 1-based column (counted in Unicode scalars, as libyaml does).
    public var column: Int?
    /// Dotted path of the offending key, e.g. `limits.max_headers` or `websocket.paths[1]`;
    /// empty for problems with the document as a whole.
    public var keyPath: String
    /// Human-readable description of the problem.
    public var message: String

    /// Creates a problem; only `keyPath` and `message` are needed for problems found
    /// outside a file (e.g. by `GatewayConfig.validate()` on a config built in code).
    public init(source: String = "", line: Int? = nil, column: Int? = nil, keyPath: String, message: String) {
        self.source = source
        self.line = line
        self.column = column
        self.keyPath = keyPath
        self.message = message
    }

    /// `source:line:column: key.path: message`, leaving out the parts that are unknown,
    /// the shape compilers use so editors can jump to the location.
    public var description: String {
        var location = source
        if let line {
            location += ":\(line)"
            if let column { location += ":\(column)" }
        }
        var parts: [String] = []
        if !location.isEmpty { parts.append(location) }
        if !keyPath.isEmpty { parts.append(keyPath) }
        parts.append(message)
        return parts.joined(separator: ": ")
    }
}

/// The only error `LHTTPConfig` throws: every problem found in one load.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// All problems found, in source order where they have a line; never empty when thrown.
    public var problems: [ConfigProblem]

    /// Wraps a list of problems.
    public init(problems: [ConfigProblem]) {
        self.problems = problems
    }

    /// Wraps a single problem.
    public init(_ problem: ConfigProblem) {
        self.problems = [problem]
    }

    /// One line per problem, ready to print to stderr.
    public var description: String {
        problems.map(\.description).joined(separator: "\n")
    }
}
