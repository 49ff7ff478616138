import Foundation
import Logging

/// `log.format: json`: one JSON object per line on standard error, for log shippers.
///
/// `{"ts":"2026-11-26T21:44:52.123Z","level":"info","label":"lhttpd","source":"LHTTPServer","msg":"...",
/// "lhttp.conn":"42",...}` — the metadata (handler's, then the call's) flattened into the object.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let write: @Sendable (String) -> Void

    /// - Parameter write: where lines go (standard error by default; tests capture them).
    public init(label: String, write: @escaping @Sendable (String) -> Void = LogLines.standardError) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("ts", Self.timestamp()), ("level", event.level.rawValue), ("label", self.label),
            ("source", event.source), ("msg", "\(event.message)"),
        ]
        for (key, value) in self.mergedMetadata(event).sorted(by: { $0.key < $1.key }) { fields.append((key, "\(value)")) }
        var line = "{"
        for (index, (key, value)) in fields.enumerated() {
            if index > 0 { line += "," }
            line += Self.quoted(key) + ":" + Self.quoted(value)
        }
        line += "}\n"
        self.write(line)
    }

    /// JSON string literal (RFC 8259 escaping).
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    private static func timestamp() -> String {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        var seconds = time_t(time.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
            parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec, time.tv_nsec / 1_000_000
        )
    }
}
