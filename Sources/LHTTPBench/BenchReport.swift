import Foundation

/// The side-by-side table of `make bench`: one row per figure, lhttpd and Nchan from the same run, and
/// their ratio stated so that > 1 always means lhttpd is better.
public enum BenchReport {
    struct Figure {
        var name: String
        var metric: String
        var higherIsBetter: Bool
        var unit: String
    }

    static func figures(for result: BenchResult) -> [Figure] {
        switch result.scenario {
        case "fanout":
            let rate = Figure(name: "deliveries/s", metric: "deliveries_per_s", higherIsBetter: true, unit: "")
            let p99 = Figure(name: "p99 latency", metric: "p99_ms", higherIsBetter: false, unit: "ms")
            return result.parameters["window"] == 1 ? [p99, rate] : [rate, p99]
        case "publish-rps": return [Figure(name: "requests/s", metric: "requests_per_s", higherIsBetter: true, unit: "")]
        case "idle-conns": return [Figure(name: "memory per connection", metric: "kib_per_conn", higherIsBetter: false, unit: "KiB")]
        case "seed": return [Figure(name: "time to deliver all", metric: "elapsed_s", higherIsBetter: false, unit: "s")]
        default: return []
        }
    }

    static func key(_ result: BenchResult) -> String {
        let params = result.parameters.filter { $0.key != "payload_bytes" }.sorted { $0.key < $1.key }
        return "\(result.scenario) " + params.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }

    /// Renders the table for results of both dialects (JSON lines in any order).
    public static func table(_ results: [BenchResult]) -> String {
        var order: [String] = []
        var byKey: [String: [BenchDialect: BenchResult]] = [:]
        for result in results {
            let key = key(result)
            if byKey[key] == nil { order.append(key) }
            byKey[key, default: [:]][result.dialect] = result
        }
        var rows: [[String]] = [["scenario", "figure", "lhttpd", "Nchan", "lhttpd vs Nchan"]]
        for key in order {
            let pair = byKey[key] ?? [:]
            guard let any = pair[.lhttp] ?? pair[.nchan] else { continue }
            for figure in figures(for: any) {
                let ours = pair[.lhttp]?.metrics[figure.metric]
                let theirs = pair[.nchan]?.metrics[figure.metric]
                var ratio = "-"
                if let ours, let theirs, ours > 0, theirs > 0 {
                    let factor = figure.higherIsBetter ? ours / theirs : theirs / ours
                    ratio = String(format: "%.2f× %@", factor, factor >= 1 ? "better" : "worse")
                }
                rows.append([key, figure.name, cell(ours, figure, pair[.lhttp]), cell(theirs, figure, pair[.nchan]), ratio])
            }
        }
        let widths = (0..<5).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.enumerated().map { index, row in
            let line = row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: " | ")
            return index == 0 ? line + "\n" + widths.map { String(repeating: "-", count: $0) }.joined(separator: "-|-") : line
        }.joined(separator: "\n")
    }

    private static func cell(_ value: Double?, _ figure: Figure, _ result: BenchResult?) -> String {
        guard let value, let result else { return "n/a" }
        var text = BenchResult.format(value) + (figure.unit.isEmpty ? "" : " \(figure.unit)")
        if !result.ok { text += " (FAILED: lost \(result.lost), errors \(result.errors))" }
        return text
    }
}
