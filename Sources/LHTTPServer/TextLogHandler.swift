import Foundation
import Logging

/// `log.format: text`: one human-readable line per event on standard error, in swift-log's
/// `StreamLogHandler` layout (`<time> <level> <label> : <key=value ...> [<source>] <message>`), with every
/// control character escaped.
///
/// Messages and metadata carry client input (an `upstream:` value, a request path, a reason): a raw CR,
/// LF or ANSI escape from a client would forge log lines or drive the operator's terminal. Here they
/// become `\r`, `\n`, `\t`, `\\` and `\u{1B}` (JSON logs escape them the JSON way).
public struct TextLogHandler: LogHandler {
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
        var line = Self.timestamp() + " " + event.level.rawValue + " " + Self.escaped(self.label) + " :"
        for (key, value) in self.mergedMetadata(event).sorted(by: { $0.key < $1.key }) {
            line += " " + Self.escaped(key) + "=" + Self.escaped("\(value)")
        }
        line += " [" + Self.escaped(event.source) + "] " + Self.escaped("\(event.message)") + "\n"
        self.write(line)
    }

    /// `text` with control characters (C0, DEL, C1) and backslashes escaped: the result is one line that
    /// shows exactly what was there.
    static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: Self.needsEscape) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where Self.needsEscape(scalar): out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar == "\\"
    }

    private static func timestamp() -> String {
        var time = time_t()
        Foundation.time(&time)
        var parts = tm()
        localtime_r(&time, &parts)
        var buffer = [Int8](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
