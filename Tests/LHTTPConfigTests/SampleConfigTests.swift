import Foundation
import Testing
@testable import LHTTPConfig

@Suite("Sample config and docs")
struct SampleConfigTests {
    static let samplePath = packageRoot + "/config/lhttpd.yaml"
    static let docsPath = packageRoot + "/docs/configuration.md"

    @Test("config/lhttpd.yaml loads and equals the defaults, but for static_dir and channels")
    func sampleEqualsDefaults() throws {
        // Every key at its default, except static_dir: the sample serves the demo and the SDK.
        var expected = GatewayConfig()
        expected.staticDir = "public"
        // And the channels locked down to the app but the demo's rooms, which keep history and presence.
        expected.channels = [
            ChannelOptionsConfig(prefix: "chat-", publish: .anyone, historySize: 100, historyTTLS: 3600, presence: true, joinLeave: true),
            ChannelOptionsConfig(prefix: "", publish: .none),
        ]
        // static_dir is checked relative to the working directory: `swift test` runs in the package root.
        #expect(try ConfigLoader.load(path: Self.samplePath, environment: [:]) == expected)
    }

    /// Loading already rejects unknown keys; this checks the other direction, so a new key
    /// cannot be added without documenting it in the sample.
    @Test("The sample spells out every known key")
    func sampleHasEveryKey() throws {
        let sample = try String(contentsOfFile: Self.samplePath, encoding: .utf8)
        let present = Set(blockKeyPaths(sample))
        let missing = keyPaths(GatewayConfig.schema, prefix: "").filter { !present.contains($0) }
        #expect(missing == [])
    }

    /// Guards step 3 of "adding a section": a section property whose schema is not in
    /// `GatewayConfig.schema`'s `nested:` list would have its keys go unchecked.
    @Test("Every section property is nested in the top-level schema")
    func everySectionIsNested() throws {
        guard case .section(_, let nested) = GatewayConfig.schema else {
            Issue.record("GatewayConfig.schema is not a section")
            return
        }
        for child in Mirror(reflecting: GatewayConfig()).children {
            guard let section = child.value as? any ConfigSection else { continue }
            #expect(nested.values.contains(type(of: section).schema), "\(child.label ?? "?")")
        }
    }

    @Test("docs/configuration.md mentions every key path")
    func docsMentionEveryKey() throws {
        let docs = try String(contentsOfFile: Self.docsPath, encoding: .utf8)
        let missing = keyPaths(GatewayConfig.schema, prefix: "").filter { !docs.contains("`\($0)`") }
        #expect(missing == [])
    }

    /// Dotted paths of every leaf key in a schema; a free-keyed map (`routes`) counts as one key.
    private func keyPaths(_ schema: ConfigSchema, prefix: String) -> [String] {
        guard case .section(let keys, let nested) = schema else { return [] }
        return keys.flatMap { key in
            switch nested[key] {
            case .some(.map), .some(.list): return ["\(prefix)\(key)"]
            case .some(let inner): return keyPaths(inner, prefix: "\(prefix)\(key).")
            case .none: return ["\(prefix)\(key)"]
            }
        }
    }

    /// Dotted paths of every `key:` line in block-style YAML, from indentation alone
    /// (enough for the sample, which is plain block style).
    private func blockKeyPaths(_ yaml: String) -> [String] {
        var stack: [(indent: Int, key: String)] = []
        var paths: [String] = []
        for line in yaml.split(separator: "\n") {
            let indent = line.prefix(while: { $0 == " " }).count
            let text = line.dropFirst(indent)
            guard !text.hasPrefix("#"), !text.hasPrefix("-"), let colon = text.firstIndex(of: ":") else { continue }
            while let last = stack.last, last.indent >= indent { stack.removeLast() }
            stack.append((indent, String(text[..<colon])))
            paths.append(stack.map(\.key).joined(separator: "."))
        }
        return paths
    }
}
