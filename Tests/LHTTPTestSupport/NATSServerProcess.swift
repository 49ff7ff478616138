import Foundation
import NIOCore
import NIOPosix

/// A real `nats-server` on 127.0.0.1 for one test: a free client port and a monitoring port, started
/// and stopped by PID. It can be killed and started again on the same ports.
public final class NATSServerProcess: @unchecked Sendable {
    /// Client port (`nats://127.0.0.1:<port>`).
    public private(set) var port: Int = 0
    /// Monitoring port (`/connz`).
    public private(set) var monitorPort: Int = 0
    private var configFile = URL(fileURLWithPath: "/dev/null")
    private let settings: String
    private var process: Process?
    /// JetStream's store (nil without JetStream).
    public private(set) var storeDirectory: URL?

    /// What went wrong starting or asking the server.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        /// The server process ended during start-up (a port taken meanwhile, a config error).
        public var exitedEarly = false
        public init(description: String, exitedEarly: Bool = false) {
            self.description = description
            self.exitedEarly = exitedEarly
        }
    }

    /// - Parameters:
    ///   - maxPayload: the server's `max_payload` (nil: its default, 1 MiB).
    ///   - user/password: when set, clients must authenticate.
    ///   - port: the client port (nil: a free one).
    ///   - extraConfig: appended to the server's config file as is.
    ///   - jetStream: JetStream on, with its file store in a directory of this server's own (kept across a
    ///     restart of this server, removed with it).
    public init(
        port: Int? = nil, maxPayload: Int? = nil, user: String? = nil, password: String? = nil, jetStream: Bool = false, extraConfig: String = ""
    ) async throws {
        var extra = ""
        if jetStream {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lhttpd-js-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            self.storeDirectory = directory
            extra += "jetstream { store_dir: \"\(directory.path)\" }\n"
        }
        if let maxPayload { extra += "max_payload: \(maxPayload)\n" }
        if let user, let password { extra += "authorization { user: \"\(user)\", password: \"\(password)\" }\n" }
        extra += extraConfig
        self.settings = extra
        // Free ports are probed, then released: another test can take one in between. A server that cannot
        // bind exits at once; then it is tried again on new ports (unless the test asked for a port).
        var attempt = 0
        while true {
            attempt += 1
            if let port {
                self.port = port
            } else {
                self.port = try await Self.freePort()
            }
            self.monitorPort = try await Self.freePort()
            self.configFile = FileManager.default.temporaryDirectory.appendingPathComponent("lhttpd-nats-\(self.port).conf")
            do {
                try await self.startOnce()
                return
            } catch let failure as Failure where failure.exitedEarly && attempt < 4 {
                if port == nil { continue }
                // The test needs this port: wait for whoever holds it.
                try await self.start()
                return
            }
        }
    }

    public var url: String { "nats://127.0.0.1:\(self.port)" }

    /// Starts the server (again) on the same ports and waits until it accepts connections. A port held for a
    /// moment by another socket (an ephemeral port of some other test's connection) is waited for, up to 5 s.
    public func start() async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while true {
            do {
                try await self.startOnce()
                return
            } catch let failure as Failure where failure.exitedEarly && ContinuousClock.now < deadline {
                // A port taken meanwhile (its log line may not be written yet when the exit is seen).
                // The monitoring port is ours to choose: a fresh one; the client port is waited for.
                self.monitorPort = try await Self.freePort()
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    private func startOnce() async throws {
        precondition(self.process == nil, "already running")
        let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let binary else { throw Failure(description: "nats-server is not installed (make test installs it)") }
        let config = "listen: 127.0.0.1:\(self.port)\nhttp: 127.0.0.1:\(self.monitorPort)\n" + self.settings
        try Data(config.utf8).write(to: self.configFile)
        let log = self.configFile.appendingPathExtension("log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-c", self.configFile.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        self.process = process
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            // Ready when the server on the monitoring port is this one: a probed port can be taken by another
            // test's nats-server in between (this one then exits), and that one's answer must not count.
            if process.isRunning, await self.monitorReportsOwnPort() { return }
            guard process.isRunning else {
                self.process = nil
                let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                throw Failure(description: "nats-server exited at start on port \(self.port): \(output.suffix(500))", exitedEarly: true)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        self.stop()
        throw Failure(description: "nats-server did not come up on port \(self.port)")
    }

    /// Kills the server at once (SIGKILL: no goodbye to its clients) and waits for it to exit.
    public func kill() {
        guard let process = self.process else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        Self.waitForExit(process)
        self.process = nil
    }

    /// Stops the server (SIGTERM) and waits for it to exit (SIGKILL after 10 s).
    public func stop() {
        guard let process = self.process else { return }
        process.terminate()
        if !Self.waitForExit(process, within: .seconds(10)) {
            Foundation.kill(process.processIdentifier, SIGKILL)
            Self.waitForExit(process)
        }
        self.process = nil
    }

    /// Waits until Foundation has seen `process` exit. Not `waitUntilExit()`: two of those at once on different
    /// threads (two tests stopping their servers) can spin forever in the run loop (seen: a suite hung at
    /// 100% CPU in `_CFRunLoopFinished`). - Returns: whether it exited within `limit`.
    @discardableResult
    static func waitForExit(_ process: Process, within limit: Duration = .seconds(30)) -> Bool {
        let deadline = ContinuousClock.now + limit
        while process.isRunning {
            guard ContinuousClock.now < deadline else { return false }
            usleep(2000)
        }
        return true
    }

    deinit {
        self.stop()
        try? FileManager.default.removeItem(at: self.configFile)
        try? FileManager.default.removeItem(at: self.configFile.appendingPathExtension("log"))
        if let directory = self.storeDirectory { try? FileManager.default.removeItem(at: directory) }
    }

    /// Subjects currently subscribed by the clients whose name contains `clientName` (from `/connz?subs=1`).
    public func subscriptions(ofClientsNamed clientName: String) async throws -> [String] {
        let json = try await self.monitor("/connz?subs=1")
        guard let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let connections = object["connections"] as? [[String: Any]]
        else { throw Failure(description: "unexpected /connz answer: \(json.prefix(200))") }
        return connections
            .filter { ($0["name"] as? String)?.contains(clientName) == true }
            .flatMap { $0["subscriptions_list"] as? [String] ?? [] }
    }

    /// Whether the monitoring port answers `/varz` with this server's client port.
    private func monitorReportsOwnPort() async -> Bool {
        guard let json = try? await self.monitor("/varz"),
            let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        else { return false }
        return (object["port"] as? Int) == self.port
    }

    /// GETs a monitoring path and returns the body (HTTP/1.0: the server closes when done).
    public func monitor(_ path: String) async throws -> String {
        let connection = try await RawConnection.connect(port: self.monitorPort)
        try await connection.send("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        try await connection.channel.closeFuture.get()
        let response = connection.text
        guard response.hasPrefix("HTTP/1."), response.contains(" 200 "), let split = response.range(of: "\r\n\r\n") else {
            throw Failure(description: "monitor \(path): \(response.prefix(200))")
        }
        return String(response[split.upperBound...])
    }

    /// A loopback port for a server told its port before it binds (``FreePort``).
    public static func freePort() async throws -> Int {
        try FreePort.next()
    }
}
