import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// CPU time a server process has used (user + system, its threads included), from `/proc/<pid>/stat`: against
/// the wall clock it tells whether the server's core was the limit.
public enum ProcessCPU {
    public static func nanos(pid: Int32) -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else {
            return nil
        }
        // After the command: state (3), ppid (4), ... utime (14), stime (15), in clock ticks.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
        let ticks = UInt64(max(sysconf(Int32(_SC_CLK_TCK)), 1))
        return (user + system) * 1_000_000_000 / ticks
    }

    /// CPU time of `pid` and of every live process whose parent is `pid` (nginx's worker under its master).
    public static func nanosWithChildren(pid: Int32) -> UInt64? {
        guard let own = nanos(pid: pid) else { return nil }
        var total = own
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let child = Int32(entry), child != pid, parent(of: child) == pid, let used = nanos(pid: child) else { continue }
            total += used
        }
        return total
    }

    private static func parent(of pid: Int32) -> Int32? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else {
            return nil
        }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? Int32(fields[1]) : nil
    }
}
