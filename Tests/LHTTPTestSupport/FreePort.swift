#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOConcurrencyHelpers

/// Loopback ports for what must be told its port before it binds (nats-server, PHP's built-in server, the
/// bench's backend, a port nothing listens on).
///
/// A port read back from binding port 0 comes from the kernel's ephemeral range, the one every outgoing
/// connection of every test also draws its local port from: between the probe and the child's bind, one of
/// the thousands of client sockets of the suite may take it ("Address already in use"), and a "closed"
/// port may be taken by another test's listener. These ports lie below that range instead, each handed out
/// once per test process, and checked free by a bind when handed out.
public enum FreePort {
    private static let handedOut = NIOLockedValueBox(Set<Int>())

    /// The lowest ephemeral port (`net.ipv4.ip_local_port_range`), 32768 when it cannot be read.
    static let ephemeralStart: Int = {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        return text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { Int($0) } ?? 32768
    }()

    /// A port below the ephemeral range that no one in this process was given and that binds now.
    public static func next() throws -> Int {
        let upper = max(ephemeralStart, 12_000)
        let lower = max(10_000, upper - 12_000)
        for _ in 0..<1000 {
            let port = Int.random(in: lower..<upper)
            let fresh = handedOut.withLockedValue { $0.insert(port).inserted }
            if fresh, bindsNow(port) { return port }
        }
        throw TestFailure("no free loopback port in \(lower)..<\(upper)")
    }

    /// Whether 127.0.0.1:`port` can be bound right now (without SO_REUSEADDR: a connection still in
    /// TIME_WAIT there counts as taken).
    static func bindsNow(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
