import Yams

/// The set of keys the config file may contain, used to reject unknown (usually misspelt) keys.
///
/// Each section type declares its keys once, through its `CodingKeys` enum, and
/// `ConfigSection.schema` turns that into a schema; the top-level schema nests the
/// sections' schemas. The same `CodingKeys` drive decoding, so the accepted keys and
/// the decoded keys cannot drift apart.
indirect enum ConfigSchema: Sendable, Equatable {
    /// A value whose type decoding checks (scalar or list of scalars); no keys inside.
    case value
    /// A mapping: `keys` in declaration order (for suggestions), `nested` for keys that are sections.
    case section(keys: [String], nested: [String: ConfigSchema])
    /// A mapping whose keys are free (names chosen by the user, like route commands); every value is
    /// checked against the inner schema.
    case map(ConfigSchema)
    /// A list whose every item is checked against the inner schema (the `channels:` entries).
    case list(ConfigSchema)

    /// The schema of a section whose keys are `Keys.allCases`; keys in `nested` are sub-sections,
    /// every other key is a plain value.
    static func section<Keys: CodingKey & CaseIterable & Hashable>(
        _ keys: Keys.Type, nested: [Keys: ConfigSchema] = [:]
    ) -> ConfigSchema {
        .section(
            keys: keys.allCases.map(\.stringValue),
            nested: Dictionary(uniqueKeysWithValues: nested.map { ($0.key.stringValue, $0.value) })
        )
    }

    /// Every unknown key in `node`, all of them rather than the first, each with its line and
    /// the closest known key as a suggestion. Wrong shapes (a scalar where a section belongs)
    /// are left to decoding, which reports them as type errors.
    func unknownKeys(in node: Node, at path: ConfigPath = .root, source: String) -> [ConfigProblem] {
        if case .map(let inner) = self, case .mapping(let mapping) = node {
            return mapping.flatMap { keyNode, valueNode in
                inner.unknownKeys(in: valueNode, at: path.appending(key: keyNode.scalar?.string ?? "?"), source: source)
            }
        }
        if case .list(let inner) = self, case .sequence(let items) = node {
            return items.enumerated().flatMap { index, item in
                inner.unknownKeys(in: item, at: path.appending(.index(index)), source: source)
            }
        }
        guard case .section(let keys, let nested) = self, case .mapping(let mapping) = node else { return [] }
        var problems: [ConfigProblem] = []
        for (keyNode, valueNode) in mapping {
            // A non-scalar key (`? [a, b]: x`) has no name; show its YAML kind instead.
            let key = keyNode.scalar?.string ?? "<\(keyNode.isMapping ? "mapping" : "list") key>"
            let keyPath = path.appending(key: key)
            if keyNode.scalar != nil, keys.contains(key) {
                problems += nested[key]?.unknownKeys(in: valueNode, at: keyPath, source: source) ?? []
            } else {
                var message = "unknown key"
                if let suggestion = Self.closest(to: key, among: keys) {
                    message += " (did you mean \(suggestion)?)"
                }
                problems.append(ConfigProblem(source: source, node: keyNode, path: keyPath, message: message))
            }
        }
        return problems
    }

    /// The known key within edit distance 2 of `key`, nearest first, earliest declared on ties.
    static func closest(to key: String, among keys: [String]) -> String? {
        let scored = keys.map { ($0, editDistance(key, $0)) }.filter { $0.1 <= 2 }
        return scored.min { $0.1 < $1.1 }?.0
    }

    /// Levenshtein distance; config keys are short, so the O(n·m) table is fine.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// A config type whose YAML keys are known, so the loader can reject unknown ones.
protocol ConfigSection: Decodable {
    /// Built with `ConfigSchema.section(CodingKeys.self, nested: ...)`.
    static var schema: ConfigSchema { get }
}

private extension Node {
    var isMapping: Bool {
        if case .mapping = self { true } else { false }
    }
}
