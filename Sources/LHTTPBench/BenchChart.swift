import Foundation

/// The fan-out part of the table as a chart: grouped bars of deliveries/s, one group per fan-out row
/// (window > 1; the window-1 row measures latency), one bar per server. A gnuplot script with its data
/// inline (a datablock), so the CLI only pipes it into `gnuplot`.
public enum BenchChart {
    /// The servers in bar order, with their legend titles and colours.
    static let series: [(dialect: BenchDialect, title: String, colour: String)] = [
        (.lhttp, "lhttpd", "#1f77b4"),
        (.nchan, "nginx + Nchan", "#ff7f0e"),
        (.nats, "nats-server (websocket)", "#2ca02c"),
    ]

    /// The x-axis label of a fan-out row: subscribers, publisher, window and, when unpinned, that.
    static func label(_ result: BenchResult) -> String {
        let publisher: String
        switch result.labels?["publisher"] {
        case "http": publisher = "\(result.parameters["publishers"] ?? 0) HTTP publishers"
        case "websocket": publisher = "websocket publisher"
        default: publisher = "1 pipelining HTTP"
        }
        var text = "\(result.parameters["subscribers"] ?? 0) subs\\n\(publisher)\\nwindow \(result.parameters["window"] ?? 0)"
        if result.labels?["pinned"] == "false" { text += "\\nunpinned, loop/core" }
        if let size = result.labels?["history"] { text += "\\nhistory \(size)" }
        return text
    }

    /// The data rows: one per fan-out row, deliveries/s in millions per server (NaN: not run or failed).
    static func dataRows(_ results: [BenchResult]) -> [(label: String, values: [Double])] {
        BenchReport.rows(results).compactMap { _, row in
            guard let any = row[.lhttp] ?? row[.nchan] ?? row[.nats], any.scenario == "fanout", (any.parameters["window"] ?? 0) > 1 else {
                return nil
            }
            let values = series.map { entry -> Double in
                guard let result = row[entry.dialect], result.ok, let rate = result.metrics["deliveries_per_s"] else { return .nan }
                return rate / 1e6
            }
            return (label(any), values)
        }
    }

    /// The gnuplot script writing the chart to `output` (PNG), or nil when there is no fan-out row.
    public static func gnuplotScript(_ results: [BenchResult], output: String, title: String) -> String? {
        let rows = dataRows(results)
        guard !rows.isEmpty else { return nil }
        func quoted(_ text: String) -> String { "\"" + text.replacingOccurrences(of: "\"", with: "'") + "\"" }
        func number(_ value: Double) -> String { value.isNaN ? "NaN" : String(format: "%.3f", value) }
        let width = max(900, 150 + rows.count * 190)
        var script = """
            set terminal pngcairo size \(width),720 font "sans,11"
            set output \(quoted(output))
            set title \(quoted(title)) noenhanced
            set style data histograms
            set style histogram clustered gap 1
            set style fill solid 0.85 border -1
            set boxwidth 0.95
            set ylabel "deliveries/s (millions)"
            set yrange [0:*]
            set offsets 0, 0, graph 0.08, 0
            set grid ytics
            set key top right noenhanced
            set xtics noenhanced nomirror
            set bmargin 6
            $fanout << EOD

            """
        for row in rows {
            script += ([quoted(row.label)] + row.values.map(number)).joined(separator: " ") + "\n"
        }
        script += "EOD\n"
        // Bars, then each bar's value above it (clustered: bar j of 3 sits at x = row + (j - 1) / 4).
        // Only the servers that ran (a DIALECTS subset): gnuplot refuses a column without a valid point.
        let shown = series.indices.filter { index in rows.contains { !$0.values[index].isNaN } }
        var plots: [String] = []
        for (position, index) in shown.enumerated() {
            let entry = series[index]
            let source = position == 0 ? "$fanout using \(index + 2):xtic(1)" : "'' using \(index + 2)"
            plots.append("\(source) title \(quoted(entry.title)) lc rgb \(quoted(entry.colour))")
        }
        for (position, index) in shown.enumerated() {
            let column = index + 2
            let offset = (Double(position) - Double(shown.count - 1) / 2) / Double(shown.count + 1)
            plots.append(
                "'' using ($0 + \(offset)):(valid(\(column)) ? $\(column) : 1/0):(sprintf(\"%.2f\", $\(column))) "
                    + "with labels offset 0,0.7 font \",9\" notitle"
            )
        }
        script += "plot " + plots.joined(separator: ", \\\n     ") + "\n"
        return script
    }
}
