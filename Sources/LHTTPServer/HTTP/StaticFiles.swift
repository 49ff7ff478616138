import Foundation
import NIOCore
import NIOPosix

/// Plain `GET` of files under `static_dir`, read on a thread pool so no event loop blocks on disk.
struct StaticFiles: Sendable {
    /// The folder served; nil when `static_dir` is empty.
    let root: String?
    /// Largest file served, in bytes; static assets are small.
    let maxFileBytes = 16 << 20

    init(root: String) {
        self.root = root.isEmpty ? nil : (root.hasSuffix("/") ? String(root.dropLast()) : root)
    }

    /// The file system path for a request path, or nil when it is not servable
    /// (no static folder, `..` or hidden segments, bad escapes).
    func resolve(_ requestPath: Substring) -> String? {
        guard let root = self.root, let decoded = QueryString.percentDecode(requestPath.replacing("+", with: "%2B")) else {
            return nil
        }
        var segments: [Substring] = []
        for segment in decoded.split(separator: "/", omittingEmptySubsequences: true) {
            guard !segment.hasPrefix("."), !segment.contains("\0"), !segment.contains("\\") else { return nil }
            segments.append(segment)
        }
        if decoded.hasSuffix("/") || segments.isEmpty { segments.append("index.html") }
        return root + "/" + segments.joined(separator: "/")
    }

    /// Reads a regular file off-loop; nil when absent, not a regular file, or too large.
    func read(_ path: String, pool: NIOThreadPool, eventLoop: any EventLoop) -> EventLoopFuture<ByteBuffer?> {
        let limit = self.maxFileBytes
        return pool.runIfActive(eventLoop: eventLoop) {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            guard attributes?[.type] as? FileAttributeType == .typeRegular,
                let size = attributes?[.size] as? Int, size <= limit,
                let data = FileManager.default.contents(atPath: path)
            else { return nil }
            return ByteBuffer(bytes: data)
        }
    }

    /// Content type by file extension.
    static func contentType(for path: String) -> String {
        switch path.split(separator: ".").last?.lowercased() {
        case "html", "htm": return "text/html; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "json": return "application/json"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "ico": return "image/x-icon"
        case "txt", "md": return "text/plain; charset=utf-8"
        default: return "application/octet-stream"
        }
    }
}
