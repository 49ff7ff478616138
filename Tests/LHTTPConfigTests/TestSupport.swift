import Testing
@testable import LHTTPConfig

/// Loads YAML that is expected to fail and returns its problems; records an issue if it loads.
func problems(
    _ yaml: String,
    environment: [String: String] = [:],
    sourceLocation: SourceLocation = #_sourceLocation
) -> [ConfigProblem] {
    do throws(ConfigError) {
        let config = try ConfigLoader.load(yaml: yaml, source: "test.yaml", environment: environment)
        Issue.record("expected a ConfigError, loaded \(config)", sourceLocation: sourceLocation)
        return []
    } catch {
        return error.problems
    }
}

/// The package root, found from this file's path so tests do not depend on the working directory.
let packageRoot: String = {
    var components = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    components.removeLast(3) // Tests/LHTTPConfigTests/TestSupport.swift
    return components.joined(separator: "/")
}()
