#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix

/// Plain `GET` of files under `static_dir`: opened on a thread pool so no event loop blocks on disk, and sent
/// from the file (a `FileRegion`, `sendfile`): a file's size costs no memory, whatever its size.
///
/// Only what resolves inside `static_dir` is served: a symlink (to a file or a directory) whose target lies
/// outside it is answered like a missing file.
struct StaticFiles: Sendable {
    /// The folder served; nil when `static_dir` is empty.
    let root: String?

    /// A file opened to be sent: its handle (nil for `HEAD`: nothing to send) and its size.
    struct OpenFile: Sendable {
        var handle: NIOFileHandle?
        var size: Int
    }

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

    /// Opens a regular file off-loop, for its body (`forBody`) or only its size; nil when absent, not a
    /// regular file, or resolving outside `static_dir`. The caller closes the handle once it is written.
    func openFile(_ path: String, forBody: Bool, pool: NIOThreadPool, eventLoop: any EventLoop) -> EventLoopFuture<OpenFile?> {
        guard let root = self.root else { return eventLoop.makeSucceededFuture(nil) }
        return pool.runIfActive(eventLoop: eventLoop) {
            // Both resolved now: `static_dir` may itself be a symlink, and the tree may change while serving.
            guard let realRoot = Self.realPath(root), let target = Self.realPath(path),
                target.hasPrefix(realRoot == "/" ? "/" : realRoot + "/")
            else { return nil }
            // The resolved path, not following a symlink swapped in since.
            let descriptor = open(target, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard descriptor >= 0 else { return nil }
            var status = stat()
            guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
                _ = close(descriptor)
                return nil
            }
            guard forBody, status.st_size > 0 else {
                _ = close(descriptor)
                return OpenFile(handle: nil, size: Int(status.st_size))
            }
            return OpenFile(handle: NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor), size: Int(status.st_size))
        }
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
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
