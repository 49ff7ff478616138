import Foundation

/// Resident memory of a server process (and its children: nginx's workers), from `/proc`.
public enum ProcessMemory {
    /// VmRSS in KiB of `pid` plus every process whose parent is `pid`.
    public static func residentKiB(pid: Int32) -> Int? {
        guard let own = vmRSS(pid) else { return nil }
        var total = own
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let child = Int32(entry), child != pid, parent(of: child) == pid, let rss = vmRSS(child) else { continue }
            total += rss
        }
        return total
    }

    private static func vmRSS(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }

    private static func parent(of pid: Int32) -> Int32? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? Int32(fields[1]) : nil
    }
}
