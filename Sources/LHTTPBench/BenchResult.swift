import Foundation

/// One scenario's outcome: printed as one JSON line, and summarized for people.
public struct BenchResult: Codable, Sendable {
    public var scenario: String
    public var dialect: BenchDialect
    /// Inputs (subscribers, messages, window, ...).
    public var parameters: [String: Int]
    /// Inputs that are words, not numbers (`publisher`: `http-pipelined`, `http`, `websocket`; `pinned`:
    /// `false` for a run without taskset, set by `--label`). Absent in results from before issue 14.
    public var labels: [String: String]?
    /// Measured figures (deliveries_per_s, p99_ms, kib_per_conn, ...).
    public var metrics: [String: Double]
    public var lost: Int
    public var duplicates: Int
    public var corrupted: Int
    /// Non-2xx publish answers, refused connections, unexpected closes.
    public var errors: Int
    /// True when nothing was lost, duplicated, corrupted or refused and the run finished in time.
    public var ok: Bool
    public var note: String?

    public init(
        scenario: String,
        dialect: BenchDialect,
        parameters: [String: Int],
        labels: [String: String]? = nil,
        metrics: [String: Double],
        lost: Int = 0,
        duplicates: Int = 0,
        corrupted: Int = 0,
        errors: Int = 0,
        completed: Bool = true,
        note: String? = nil
    ) {
        self.scenario = scenario
        self.dialect = dialect
        self.parameters = parameters
        self.labels = labels?.isEmpty == true ? nil : labels
        self.metrics = metrics
        self.lost = lost
        self.duplicates = duplicates
        self.corrupted = corrupted
        self.errors = errors
        self.ok = completed && lost == 0 && duplicates == 0 && corrupted == 0 && errors == 0
        self.note = note
    }

    /// The machine-readable line.
    public var jsonLine: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// A readable one-paragraph summary.
    public var summary: String {
        let words = (self.labels ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let params = (words + self.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
        let figures = self.metrics.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.format($0.value))" }.joined(separator: " ")
        var text = "[\(self.dialect.rawValue)] \(self.scenario) (\(params)): \(figures)"
        text += " | lost=\(self.lost) dup=\(self.duplicates) corrupt=\(self.corrupted) errors=\(self.errors) \(self.ok ? "OK" : "FAILED")"
        if let note = self.note { text += " — \(note)" }
        return text
    }

    static func format(_ value: Double) -> String {
        if value >= 100 { return String(Int(value.rounded())) }
        return String(format: "%.3f", value)
    }
}
