import Yams

/// A location in the config tree, e.g. `limits.max_headers` or `websocket.paths[1]`.
///
/// Problems carry their path as a string (public API); this type builds those strings
/// and finds the YAML node a string points at, so a problem found after decoding
/// (a type error, a validation rule) can still be given a line and column.
struct ConfigPath: Sendable, Equatable, CustomStringConvertible {
    enum Component: Sendable, Equatable {
        case key(String)
        case index(Int)
    }

    var components: [Component] = []

    /// The document root.
    static let root = ConfigPath()

    init(_ components: [Component] = []) {
        self.components = components
    }

    /// Builds the path from a `DecodingError`'s coding path (sequence items have int keys).
    init(codingPath: [any CodingKey]) {
        components = codingPath.map { key in
            if let index = key.intValue { .index(index) } else { .key(key.stringValue) }
        }
    }

    /// Parses the `description` format back; config keys never contain "." or "[".
    init(parsing text: String) {
        for part in text.split(separator: ".") {
            var rest = part[...]
            if let bracket = rest.firstIndex(of: "[") {
                components.append(.key(String(rest[..<bracket])))
                rest = rest[bracket...]
                while rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
                    if let index = Int(rest[rest.index(after: rest.startIndex)..<close]) {
                        components.append(.index(index))
                    }
                    rest = rest[rest.index(after: close)...]
                }
            } else {
                components.append(.key(String(rest)))
            }
        }
    }

    func appending(_ component: Component) -> ConfigPath {
        ConfigPath(components + [component])
    }

    func appending(key: String) -> ConfigPath { appending(.key(key)) }

    var description: String {
        var text = ""
        for component in components {
            switch component {
            case .key(let key): text += text.isEmpty ? key : ".\(key)"
            case .index(let index): text += "[\(index)]"
            }
        }
        return text
    }

    /// The node this path points at, or nil when the file does not spell it out
    /// (e.g. a default value that fails a cross-field rule).
    func locate(in root: Node) -> Node? {
        var node = root
        for component in components {
            switch (component, node) {
            case (.key(let key), .mapping(let mapping)):
                guard let child = mapping.first(where: { $0.key.string == key })?.value else { return nil }
                node = child
            case (.index(let index), .sequence(let sequence)):
                guard sequence.indices.contains(index) else { return nil }
                node = sequence[index]
            default:
                return nil
            }
        }
        return node
    }
}

extension ConfigProblem {
    /// A problem located at `node`'s start, for the loader's internal checks.
    init(source: String, node: Node?, path: ConfigPath, message: String) {
        self.init(source: source, line: node?.mark?.line, column: node?.mark?.column,
                  keyPath: path.description, message: message)
    }
}
