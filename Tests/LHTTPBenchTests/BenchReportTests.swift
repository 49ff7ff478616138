import Testing

@testable import LHTTPBench

/// The three-server table, the unpinned comparison and the chart script, from results made up here.
@Suite struct BenchReportTests {
    static func fanout(_ dialect: BenchDialect, rate: Double, publisher: String = "websocket", pinned: Bool = true, ok: Bool = true) -> BenchResult {
        var labels = ["publisher": publisher]
        if !pinned { labels["pinned"] = "false" }
        return BenchResult(
            scenario: "fanout", dialect: dialect,
            parameters: ["subscribers": 1000, "messages": 2000, "window": 200, "publishers": 1, "payload_bytes": 64],
            labels: labels, metrics: ["deliveries_per_s": rate, "p99_ms": 10], lost: ok ? 0 : 1
        )
    }

    @Test func tableShowsAllThreeServersWithRatios() {
        let table = BenchReport.table([Self.fanout(.lhttp, rate: 2_000_000), Self.fanout(.nchan, rate: 500_000), Self.fanout(.nats, rate: 1_000_000)])
        let row = table.split(separator: "\n").first { $0.contains("deliveries/s") } ?? ""
        #expect(row.contains("fanout publisher=websocket messages=2000 publishers=1 subscribers=1000 window=200"))
        #expect(row.contains("4.00× better"))
        #expect(row.contains("2.00× better"))
        #expect(table.split(separator: "\n").first?.contains("lhttpd vs NATS") == true)
    }

    @Test func unpinnedRunIsComparedWithThePinnedOne() {
        let table = BenchReport.table([Self.fanout(.lhttp, rate: 2_000_000), Self.fanout(.lhttp, rate: 3_000_000, pinned: false)])
        let row = table.split(separator: "\n").first { $0.contains("1.50×") } ?? ""
        #expect(row.contains("met"))
        #expect(!row.contains("not met"))
    }

    @Test func aRunWithHistoryIsComparedWithTheSameRunWithout() throws {
        var kept = Self.fanout(.lhttp, rate: 1_500_000)
        kept.labels?["history"] = "100"
        let table = BenchReport.table([Self.fanout(.lhttp, rate: 2_000_000), kept])
        let row = try #require(table.split(separator: "\n").first { $0.contains("0.75×") }, "\(table)")
        #expect(row.contains("history=100"))
        #expect(table.contains("lhttpd with history vs without"))
        let script = try #require(BenchChart.gnuplotScript([kept], output: "out.png", title: "t"))
        #expect(script.contains("history 100"))
    }

    @Test func chartHasOneGroupPerFanoutRowAndSkipsFailedRuns() throws {
        let results = [
            Self.fanout(.lhttp, rate: 2_000_000), Self.fanout(.nchan, rate: 500_000, ok: false),
            Self.fanout(.lhttp, rate: 1_500_000, publisher: "http", pinned: false),
        ]
        let script = try #require(BenchChart.gnuplotScript(results, output: "out.png", title: "t"))
        #expect(script.contains("set output \"out.png\""))
        #expect(script.contains("\"1000 subs\\nwebsocket publisher\\nwindow 200\" 2.000 NaN NaN\n"))
        #expect(script.contains("\"1000 subs\\n1 HTTP publishers\\nwindow 200\\nunpinned, loop/core\" 1.500 NaN NaN\n"))
        #expect(BenchChart.gnuplotScript([], output: "out.png", title: "t") == nil)
    }

    @Test func churnWithPresenceIsComparedWithTheSameChurnWithout() throws {
        func churn(rate: Double, presence: Bool) -> BenchResult {
            BenchResult(
                scenario: "churn", dialect: .lhttp,
                parameters: ["workers": 50, "connects": 20000, "seconds": 15, "rooms": 10, "watchers": 10],
                labels: presence ? ["token": "hs256", "presence": "join_leave"] : ["token": "hs256"],
                metrics: ["cycles_per_s": rate, "cycle_p50_ms": 9, "cycle_p99_ms": 20, "events_per_s": presence ? 8000 : 0]
            )
        }
        let table = BenchReport.table([churn(rate: 5000, presence: false), churn(rate: 4000, presence: true)])
        let row = try #require(table.split(separator: "\n").first { $0.contains("0.80×") }, "\(table)")
        #expect(row.contains("presence=join_leave"))
        #expect(row.contains("| 8000"))
        #expect(table.contains("lhttpd churn with presence vs without"))
        #expect(table.contains("connect/close cycles/s"))
        // No fan-out row: no chart.
        #expect(BenchChart.gnuplotScript([churn(rate: 5000, presence: false)], output: "out.png", title: "t") == nil)
    }
}
