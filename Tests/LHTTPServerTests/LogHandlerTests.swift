import Logging
import NIOConcurrencyHelpers
import Testing

@testable import LHTTPServer

@Suite("Log handlers")
struct LogHandlerTests {
    final class Lines: Sendable {
        let lines = NIOLockedValueBox<[String]>([])
        var all: [String] { self.lines.withLockedValue { $0 } }
        func append(_ line: String) { self.lines.withLockedValue { $0.append(line) } }
    }

    /// Client input with a CR, a LF and an ANSI escape cannot forge a line or colour the terminal.
    @Test func textLogsEscapeControlCharacters() throws {
        let lines = Lines()
        var handler = TextLogHandler(label: "lhttpd", write: { lines.append($0) })
        handler.metadata["lhttp.conn"] = "7"
        let logger = Logger(label: "lhttpd") { _ in handler }
        logger.warning(
            "upstream call failed\r\nFORGED",
            metadata: ["lhttp.upstream_url": "http://x/\r\n2026-01-01 info lhttpd : forged\u{1B}[31mred\u{7}\\"]
        )
        let line = try #require(lines.all.first)
        #expect(lines.all.count == 1)
        #expect(line.hasSuffix("\n"))
        let body = line.dropLast()
        #expect(!body.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F })
        #expect(body.contains(#"lhttp.upstream_url=http://x/\r\n2026-01-01 info lhttpd : forged\u{1B}[31mred\u{7}\\"#))
        #expect(body.contains(#"upstream call failed\r\nFORGED"#))
        #expect(body.contains(" warning lhttpd : lhttp.conn=7 lhttp.upstream_url="))
        // Plain text stays as it is.
        #expect(TextLogHandler.escaped("room café: 42") == "room café: 42")
    }

    @Test func jsonLogsEscapeControlCharacters() throws {
        let lines = Lines()
        let handler = JSONLogHandler(label: "lhttpd", write: { lines.append($0) })
        let logger = Logger(label: "lhttpd") { _ in handler }
        logger.warning("a\r\nb", metadata: ["k": "\u{1B}[31m"])
        let line = try #require(lines.all.first)
        #expect(!line.dropLast().unicodeScalars.contains { $0.value < 0x20 })
        #expect(line.contains(#""k":"\u001b[31m""#))
    }
}
