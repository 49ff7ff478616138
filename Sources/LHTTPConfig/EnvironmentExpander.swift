import Yams

/// Expands `${VAR}` references in the scalar values of a composed YAML tree.
///
/// Expansion runs on the parsed nodes, not the raw text, so a variable's value is always
/// one scalar: `TOKEN="a: b"` or `TOKEN="[x]"` cannot add keys or turn a string into a list.
/// Mapping keys are never expanded, so the set of keys is fixed by the file itself.
struct EnvironmentExpander {
    /// Where variables are looked up.
    var environment: [String: String]

    /// The tree with every scalar value expanded, plus a problem for each reference that
    /// could not be expanded (all of them, each at its scalar's line).
    func expand(_ node: Node, at path: ConfigPath = .root, source: String) -> (Node, [ConfigProblem]) {
        switch node {
        case .scalar(let scalar):
            // Most scalars have no "$"; leave them untouched.
            guard scalar.string.contains("$") else { return (node, []) }
            let (text, messages) = expand(scalar.string)
            let problems = messages.map { ConfigProblem(source: source, node: node, path: path, message: $0) }
            // Keep the style: Yams decodes integers and nulls only from plain scalars, so an
            // unquoted `${N}` can be an integer while a quoted one stays a string. The tag gets a
            // fresh instance (Tag is a class that caches its resolution) with the parsed name, so
            // a plain scalar is resolved again from the expanded text.
            let tag = Tag(Tag.Name(rawValue: scalar.tag.rawValue))
            return (.scalar(Node.Scalar(text, tag, scalar.style, scalar.mark)), problems)
        case .mapping(let mapping):
            var problems: [ConfigProblem] = []
            let pairs = mapping.map { key, value in
                let childPath = path.appending(key: key.scalar?.string ?? "?")
                let (expanded, found) = expand(value, at: childPath, source: source)
                problems += found
                return (key, expanded)
            }
            return (.mapping(Node.Mapping(pairs, mapping.tag, mapping.style, mapping.mark)), problems)
        case .sequence(let sequence):
            var problems: [ConfigProblem] = []
            let items = sequence.enumerated().map { index, item in
                let (expanded, found) = expand(item, at: path.appending(.index(index)), source: source)
                problems += found
                return expanded
            }
            return (.sequence(Node.Sequence(items, sequence.tag, sequence.style, sequence.mark)), problems)
        case .alias:
            // The composer already replaces aliases with the nodes they name.
            return (node, [])
        }
    }

    /// Expands one string: `${NAME}`, `${NAME:-default}` (default when unset or empty),
    /// `$${` for a literal `${`; any other `$` is kept as is. Returns the text and the
    /// messages for references that failed (the failed reference expands to nothing).
    func expand(_ text: String) -> (String, [String]) {
        var output = ""
        var messages: [String] = []
        var rest = text[...]
        while let dollar = rest.firstIndex(of: "$") {
            output += rest[..<dollar]
            let tail = rest[dollar...]
            if tail.hasPrefix("$${") {
                output += "${"
                rest = tail.dropFirst(3)
                continue
            }
            guard tail.hasPrefix("${") else {
                output += "$"
                rest = tail.dropFirst()
                continue
            }
            let body = tail.dropFirst(2)
            guard let close = body.firstIndex(of: "}") else {
                messages.append("unterminated \"${\" (write \"$${\" for a literal \"${\")")
                output += tail
                rest = ""
                break
            }
            let reference = body[..<close]
            rest = body[body.index(after: close)...]

            let name: Substring
            let fallback: Substring?
            if let range = reference.range(of: ":-") {
                name = reference[..<range.lowerBound]
                fallback = reference[range.upperBound...]
            } else {
                name = reference
                fallback = nil
            }
            guard Self.isValidName(name) else {
                messages.append("invalid environment variable reference \"${\(reference)}\"")
                continue
            }
            if let value = environment[String(name)], !(value.isEmpty && fallback != nil) {
                output += value
            } else if let fallback {
                output += fallback
            } else {
                messages.append("environment variable \(name) is not set")
            }
        }
        output += rest
        return (output, messages)
    }

    /// Shell-style names only (`[A-Za-z_][A-Za-z0-9_]*`), so typos like `${ TOKEN}` are caught.
    static func isValidName(_ name: Substring) -> Bool {
        guard let first = name.first, first.isASCII, first.isLetter || first == "_" else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }
}
