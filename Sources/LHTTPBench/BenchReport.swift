import Foundation

/// The side-by-side table of `make bench`: one row per figure, lhttpd, Nchan and NATS from the same run,
/// and lhttpd's ratio to each stated so that > 1 always means lhttpd is better.
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
        case "churn":  // lhttpd only; its peer is lhttpd without presence (presenceTable)
            return [
                Figure(name: "connect/close cycles/s", metric: "cycles_per_s", higherIsBetter: true, unit: ""),
                Figure(name: "p99 cycle", metric: "cycle_p99_ms", higherIsBetter: false, unit: "ms"),
            ]
        case "upstream", "webhook": return []  // their own table: the peer is libcurl called directly, not Nchan
        case "fanout-cluster": return []  // its own table: the peer is the single-node fan-out of the same run
        case "proxy": return []  // its own table (proxyTable): the peer is plain nginx proxy_pass, not Nchan
        default: return []
        }
    }

    /// The row a result belongs to: scenario, labels and parameters (not the payload size).
    static func key(_ result: BenchResult, dropping dropped: Set<String> = []) -> String {
        let labels = (result.labels ?? [:]).filter { !dropped.contains($0.key) }.sorted { $0.key < $1.key }
        let params = result.parameters.filter { $0.key != "payload_bytes" }.sorted { $0.key < $1.key }
        return "\(result.scenario) " + (labels.map { "\($0.key)=\($0.value)" } + params.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
    }

    /// Results grouped by ``key(_:dropping:)``, in the order their rows first appear.
    static func rows(_ results: [BenchResult]) -> [(key: String, byDialect: [BenchDialect: BenchResult])] {
        var order: [String] = []
        var byKey: [String: [BenchDialect: BenchResult]] = [:]
        for result in results {
            let key = key(result)
            if byKey[key] == nil { order.append(key) }
            byKey[key, default: [:]][result.dialect] = result
        }
        return order.map { ($0, byKey[$0] ?? [:]) }
    }

    /// lhttpd against a peer, stated so that > 1 means lhttpd is better.
    static func ratio(_ ours: Double?, _ theirs: Double?, higherIsBetter: Bool) -> String {
        guard let ours, let theirs, ours > 0, theirs > 0 else { return "-" }
        let factor = higherIsBetter ? ours / theirs : theirs / ours
        return String(format: "%.2f× %@", factor, factor >= 1 ? "better" : "worse")
    }

    /// Renders the table for results of all dialects (JSON lines in any order).
    public static func table(_ results: [BenchResult]) -> String {
        var rows: [[String]] = [["scenario", "figure", "lhttpd", "Nchan", "NATS", "lhttpd vs Nchan", "lhttpd vs NATS"]]
        for (key, row) in self.rows(results) {
            guard let any = row[.lhttp] ?? row[.nchan] ?? row[.nats] else { continue }
            for figure in figures(for: any) {
                let value = { (dialect: BenchDialect) in row[dialect]?.metrics[figure.metric] }
                rows.append([
                    key, figure.name,
                    cell(value(.lhttp), figure, row[.lhttp]), cell(value(.nchan), figure, row[.nchan]), cell(value(.nats), figure, row[.nats]),
                    ratio(value(.lhttp), value(.nchan), higherIsBetter: figure.higherIsBetter),
                    ratio(value(.lhttp), value(.nats), higherIsBetter: figure.higherIsBetter),
                ])
            }
        }
        // Only rows with their own tables (ONLY=proxy, say): no empty main table.
        var text = rows.count > 1 ? render(rows) : ""
        for scenario in ["upstream", "webhook"] {
            let runs = results.filter { $0.scenario == scenario && $0.dialect == .lhttp }
            guard !runs.isEmpty else { continue }
            var rows: [[String]] = [["\(scenario): in flight", "via lhttpd msgs/s", "direct libcurl msgs/s", "lhttpd p50 / p99", "direct p50 / p99", "added p50 / p99"]]
            for result in runs {
                let m = result.metrics
                func ms(_ a: String, _ b: String) -> String {
                    "\(BenchResult.format(m[a] ?? 0)) / \(BenchResult.format(m[b] ?? 0)) ms"
                }
                rows.append([
                    "\(result.parameters["in_flight"] ?? 0)" + (result.ok ? "" : " (FAILED)"),
                    BenchResult.format(m["messages_per_s"] ?? 0),
                    BenchResult.format(m["direct_messages_per_s"] ?? 0),
                    ms("p50_ms", "p99_ms"), ms("direct_p50_ms", "direct_p99_ms"), ms("added_p50_ms", "added_p99_ms"),
                ])
            }
            text += "\n\n" + render(rows)
        }
        if let cluster = clusterTable(results) { text += "\n\n" + cluster }
        if let unpinned = unpinnedTable(results) { text += "\n\n" + unpinned }
        if let history = historyTable(results) { text += "\n\n" + history }
        if let presence = presenceTable(results) { text += "\n\n" + presence }
        if let proxy = proxyTable(results) { text += (text.isEmpty ? "" : "\n\n") + proxy }
        for soak in results where soak.scenario == "soak" {
            let m = soak.metrics
            text += "\n\nsoak (\(soak.parameters["connections"] ?? 0) connections, \(soak.parameters["seconds"] ?? 0) s): "
                + "RSS \(Int(m["rss_start_kib"] ?? 0)) → \(Int(m["rss_connected_kib"] ?? 0)) → \(Int(m["rss_end_kib"] ?? 0)) KiB (start, connected, end); "
                + "\(Int(m["deliveries"] ?? 0)) deliveries, lost \(soak.lost), dup \(soak.duplicates), \(Int(m["reconnects"] ?? 0)) reconnects, "
                + "stalled readers closed \(Int(m["stalled_closed"] ?? 0))/\(soak.parameters["stalled"] ?? 0)" + (soak.ok ? "" : " (FAILED)")
        }
        return text
    }

    /// Cluster fan-out against the single-node fan-out with the same subscribers, messages and window.
    static func clusterTable(_ results: [BenchResult]) -> String? {
        let runs = results.filter { $0.scenario == "fanout-cluster" && $0.dialect == .lhttp }
        guard !runs.isEmpty else { return nil }
        var rows: [[String]] = [[
            "cluster fan-out (publisher on A, subscribers over A and B)", "1 node deliveries/s", "2 nodes deliveries/s",
            "2 nodes vs 1", "1 node p99", "2 nodes p99",
        ]]
        for run in runs {
            let single = results.first { result in
                result.scenario == "fanout" && result.dialect == .lhttp && result.labels?["pinned"] == nil && result.labels?["history"] == nil
                    && result.labels?["publisher"] == run.labels?["publisher"]
                    && ["subscribers", "messages", "window", "publishers"].allSatisfy { result.parameters[$0] == run.parameters[$0] }
            }
            let params = "subscribers=\(run.parameters["subscribers"] ?? 0) messages=\(run.parameters["messages"] ?? 0) window=\(run.parameters["window"] ?? 0)"
            let ours = run.metrics["deliveries_per_s"] ?? 0
            let base = single?.metrics["deliveries_per_s"]
            rows.append([
                params + (run.ok ? "" : " (FAILED: lost \(run.lost), errors \(run.errors))"),
                base.map { BenchResult.format($0) } ?? "n/a",
                BenchResult.format(ours),
                base.map { String(format: "%.2f×", ours / max($0, 1)) } ?? "-",
                single.map { BenchResult.format($0.metrics["p99_ms"] ?? 0) + " ms" } ?? "n/a",
                BenchResult.format(run.metrics["p99_ms"] ?? 0) + " ms",
            ])
        }
        return render(rows)
    }

    /// lhttpd unpinned (a loop per core, no taskset: `--label pinned=false`) against its pinned one-loop
    /// run of the same fan-out in the same file. Issue 14's target: unpinned no lower than pinned.
    static func unpinnedTable(_ results: [BenchResult]) -> String? {
        let runs = results.filter { $0.dialect == .lhttp && $0.labels?["pinned"] == "false" }
        guard !runs.isEmpty else { return nil }
        var rows: [[String]] = [["lhttpd unpinned (loop per core) vs pinned (one loop)", "pinned deliveries/s", "unpinned deliveries/s", "unpinned vs pinned", "target ≥ 1×"]]
        for run in runs {
            let key = key(run, dropping: ["pinned"])
            let pinned = results.first { $0.dialect == .lhttp && $0.labels?["pinned"] != "false" && self.key($0, dropping: ["pinned"]) == key }
            let ours = run.metrics["deliveries_per_s"] ?? 0
            let base = pinned?.metrics["deliveries_per_s"]
            rows.append([
                key + (run.ok ? "" : " (FAILED: lost \(run.lost), errors \(run.errors))"),
                base.map { BenchResult.format($0) } ?? "n/a",
                BenchResult.format(ours),
                base.map { String(format: "%.2f×", ours / max($0, 1)) } ?? "-",
                base.map { ours >= $0 ? "met" : "not met" } ?? "-",
            ])
        }
        return render(rows)
    }

    /// lhttpd fan-out to a channel with history (`--label history=<size>`, lhttpd configured to keep it there)
    /// against the same fan-out without, in the same file: what stamping, keeping and ordering cost.
    static func historyTable(_ results: [BenchResult]) -> String? {
        let runs = results.filter { $0.dialect == .lhttp && $0.labels?["history"] != nil }
        guard !runs.isEmpty else { return nil }
        var rows: [[String]] = [["lhttpd with history vs without (same run)", "without deliveries/s", "with deliveries/s", "with vs without", "without p99", "with p99"]]
        for run in runs {
            let key = key(run, dropping: ["history"])
            let plain = results.first { $0.dialect == .lhttp && $0.labels?["history"] == nil && self.key($0) == key }
            let ours = run.metrics["deliveries_per_s"] ?? 0
            let base = plain?.metrics["deliveries_per_s"]
            rows.append([
                key + " history=\(run.labels?["history"] ?? "")" + (run.ok ? "" : " (FAILED: lost \(run.lost), corrupt \(run.corrupted))"),
                base.map { BenchResult.format($0) } ?? "n/a",
                BenchResult.format(ours),
                base.map { String(format: "%.2f×", ours / max($0, 1)) } ?? "-",
                plain.map { BenchResult.format($0.metrics["p99_ms"] ?? 0) + " ms" } ?? "n/a",
                BenchResult.format(run.metrics["p99_ms"] ?? 0) + " ms",
            ])
        }
        return render(rows)
    }

    /// lhttpd churn with presence and join/leave on the rooms (`--label presence=<what>`, lhttpd configured
    /// so) against the same churn without, in the same file: what presence costs each connect and close.
    static func presenceTable(_ results: [BenchResult]) -> String? {
        let runs = results.filter { $0.scenario == "churn" && $0.dialect == .lhttp && $0.labels?["presence"] != nil }
        guard !runs.isEmpty else { return nil }
        var rows: [[String]] = [[
            "lhttpd churn with presence vs without (same run)", "without cycles/s", "with cycles/s", "with vs without",
            "without p50 / p99", "with p50 / p99", "server CPU per cycle without / with", "join/leave events/s",
        ]]
        for run in runs {
            let key = key(run, dropping: ["presence"])
            let plain = results.first { $0.scenario == "churn" && $0.dialect == .lhttp && $0.labels?["presence"] == nil && self.key($0) == key }
            // CPU time the server used per cycle (with --server-pid): steadier than the rate on a shared machine.
            func cpu(_ result: BenchResult?) -> String {
                result?.metrics["server_cpu_us_per_cycle"].map { BenchResult.format($0) + " µs" } ?? "n/a"
            }
            func cycle(_ result: BenchResult) -> String {
                "\(BenchResult.format(result.metrics["cycle_p50_ms"] ?? 0)) / \(BenchResult.format(result.metrics["cycle_p99_ms"] ?? 0)) ms"
            }
            let ours = run.metrics["cycles_per_s"] ?? 0
            let base = plain?.metrics["cycles_per_s"]
            rows.append([
                key + " presence=\(run.labels?["presence"] ?? "")" + (run.ok ? "" : " (FAILED: errors \(run.errors))"),
                base.map { BenchResult.format($0) + (plain?.ok == false ? " (FAILED)" : "") } ?? "n/a",
                BenchResult.format(ours),
                base.map { String(format: "%.2f×", ours / max($0, 1)) } ?? "-",
                plain.map(cycle) ?? "n/a",
                cycle(run),
                cpu(plain) + " / " + cpu(run),
                BenchResult.format(run.metrics["events_per_s"] ?? 0),
            ])
        }
        return render(rows)
    }

    /// The `proxy` rows: lhttpd's reverse proxy against nginx `proxy_pass` (the `nchan` dialect of run.sh: the
    /// same nginx binary, started with bench/nginx-proxy.conf.template) to the same backend in the same file.
    static func proxyTable(_ results: [BenchResult]) -> String? {
        let runs = results.filter { $0.scenario == "proxy" }
        guard !runs.isEmpty else { return nil }
        // (figure, metric, higher is better, unit, issue 17's target as a ratio)
        let figures: [(String, String, Bool, String, Double?)] = [
            ("small: requests/s", "requests_per_s", true, "", 0.7),
            ("small: p50 latency", "p50_ms", false, "ms", nil),
            ("small: p99 latency", "p99_ms", false, "ms", nil),
            ("small: server CPU per request", "server_cpu_us_per_request", false, "µs", nil),
            ("small: server / backend / load CPU", "", false, "", nil),
            ("large: MB/s", "mb_per_s", true, "", 0.8),
            ("large: server CPU per GB", "server_cpu_ms_per_gb", false, "ms", nil),
            ("large: server / backend / load CPU", "large_", false, "", nil),
        ]
        var rows: [[String]] = [["proxy (lhttpd proxy.backend vs nginx proxy_pass, same backend)", "figure", "lhttpd", "nginx", "lhttpd vs nginx", "target"]]
        for (key, row) in self.rows(runs) {
            let ours = row[.lhttp]
            let theirs = row[.nchan]
            for (name, metric, higherIsBetter, unit, target) in figures {
                if name.hasSuffix("/ load CPU") {
                    func cpu(_ result: BenchResult?) -> String {
                        guard let m = result?.metrics else { return "n/a" }
                        return ["server_cpu_pct", "backend_cpu_pct", "load_cpu_pct"]
                            .map { m[metric + $0].map { String(format: "%.0f", $0) } ?? "-" }.joined(separator: " / ") + " %"
                    }
                    rows.append([key, name, cpu(ours), cpu(theirs), "", ""])
                    continue
                }
                let a = ours?.metrics[metric]
                let b = theirs?.metrics[metric]
                func cell(_ value: Double?, _ result: BenchResult?) -> String {
                    guard let value, let result else { return "n/a" }
                    let text = BenchResult.format(value) + (unit.isEmpty ? "" : " \(unit)")
                    return result.ok ? text : text + " (FAILED: lost \(result.lost), corrupt \(result.corrupted), errors \(result.errors))"
                }
                var goal = ""
                if let target, let a, let b, b > 0 {
                    goal = String(format: "≥ %.1f×: ", target) + (a / b >= target ? "met" : "not met")
                }
                rows.append([key, name, cell(a, ours), cell(b, theirs), ratio(a, b, higherIsBetter: higherIsBetter), goal])
            }
        }
        return render(rows)
    }

    static func render(_ rows: [[String]]) -> String {
        let columns = rows.first?.count ?? 0
        let widths = (0..<columns).map { column in rows.map { $0[column].count }.max() ?? 0 }
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
