import Foundation
import NIOConcurrencyHelpers

/// A child process (the `lhttpd` binary, `lhttp`, `lhttp-bench`, a backend, a browser script) whose
/// standard output and error are collected as they arrive. Waiting for output or for the exit is woken by
/// the output and the exit themselves, bounded by a timeout that fails the test.
public final class ChildProcess: Sendable {
    /// The root of the package (where `Package.swift` is).
    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// An executable product built next to the test bundle (`lhttpd`, `lhttp`, `lhttp-bench`).
    public static func built(_ name: String) -> URL {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name),
            Self.packageRoot.appendingPathComponent(".build/debug/\(name)"),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[1]
    }

    public let process: Process
    private struct State {
        var output = ""
        var outputEnded = false
        var exited = false
        /// Tasks waiting for more output or the exit.
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = NIOLockedValueBox(State())
    private let pipe = Pipe()

    /// - Parameter input: written to the child's standard input, which is then closed (nil: no input).
    public init(_ arguments: [String], binary: URL = ChildProcess.built("lhttpd"), environment: [String: String] = [:], input: String? = nil) throws {
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw TestFailure("binary not found at \(binary.path): run `swift build` first")
        }
        self.process = Process()
        self.process.executableURL = binary
        self.process.arguments = arguments
        if !environment.isEmpty {
            self.process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        self.process.currentDirectoryURL = Self.packageRoot
        self.process.standardError = self.pipe
        self.process.standardOutput = self.pipe
        let state = self.state
        // A thread of its own reads the pipe (no dispatch source: those raced libdispatch under TSan): it
        // waits in poll() and reads, without blocking, under the state's lock, so "everything written was
        // read" can be checked under that lock (FIONREAD). EOF cannot be relied on — a child spawned at the
        // same time may inherit the write end of this pipe and keep it open — so the output counts as
        // complete once the process exited and nothing is unread; the thread ends at EOF.
        let descriptor = self.pipe.fileHandleForReading.fileDescriptor
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        let reader = Thread { [pipe = self.pipe] in
            var chunk = [UInt8](repeating: 0, count: 65536)
            var open = true
            while open {
                var request = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                guard poll(&request, 1, -1) >= 0 || errno == EINTR else { break }
                Self.update(state) { state in
                    while true {
                        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                        if count > 0 {
                            state.output += String(decoding: chunk[..<count], as: UTF8.self)
                        } else {
                            if count == 0 || (errno != EAGAIN && errno != EINTR) {
                                state.outputEnded = true
                                open = false
                            }
                            return
                        }
                    }
                }
            }
            withExtendedLifetime(pipe) {}
        }
        reader.name = "child-output"
        self.process.terminationHandler = { _ in Self.update(state) { $0.exited = true } }
        let stdin = Pipe()
        self.process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        try self.process.run()
        reader.start()
        if let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try? stdin.fileHandleForWriting.close()
        }
    }

    /// Everything the process wrote so far.
    public var text: String { self.state.withLockedValue { $0.output } }

    /// Waits (bounded) until the output matches `pattern` and returns the first capture group.
    public func await(_ pattern: String, timeout: Duration = .seconds(15)) async throws -> String {
        let regex = try Regex(pattern)
        let descriptor = self.pipe.fileHandleForReading.fileDescriptor
        let found: String? = try await self.wait(timeout: timeout) { state -> String?? in
            guard let match = state.output.firstMatch(of: regex) else { return Self.isComplete(state, descriptor) ? .some(nil) : nil }
            return .some(match.output.count > 1 ? (match.output[1].substring.map(String.init) ?? "") : String(match.output[0].substring ?? ""))
        }
        guard let found else { throw TestFailure("no match for \(pattern) in output:\n\(self.text)") }
        return found
    }

    /// Waits (bounded) for the process to exit, and for its last output, and returns its status.
    public func exitStatus(timeout: Duration = .seconds(15)) async throws -> Int32 {
        do {
            let descriptor = self.pipe.fileHandleForReading.fileDescriptor
            _ = try await self.wait(timeout: timeout) { state in Self.isComplete(state, descriptor) ? true : nil }
        } catch {
            self.process.terminate()
            throw TestFailure("\(self.process.executableURL?.lastPathComponent ?? "process") did not exit within \(timeout); output:\n\(self.text)")
        }
        return self.process.terminationStatus
    }

    /// Runs `check` on every change until it returns a value, or throws after `timeout`.
    private func wait<T>(timeout: Duration, _ check: (State) -> T?) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let value = self.state.withLockedValue({ check($0) }) { return value }
            guard ContinuousClock.now < deadline else { throw TestFailure("timed out after \(timeout)") }
            // Woken by the next output or the exit; a timer task wakes it at the deadline at the latest.
            let timer = Task { [state] in
                // Only a deadline that really passed wakes the waiter (a cancelled timer must not: the
                // next round would start a new timer, be woken by this one, and spin).
                guard (try? await Task.sleep(until: deadline, clock: .continuous)) != nil else { return }
                Self.update(state) { _ in }
            }
            await withCheckedContinuation { continuation in
                let ready = self.state.withLockedValue { state -> Bool in
                    if check(state) != nil { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if ready { continuation.resume() }
            }
            timer.cancel()
        }
    }

    /// The process exited and everything it wrote was read (checked under the state's lock, which every
    /// read of the pipe holds too).
    private static func isComplete(_ state: State, _ descriptor: Int32) -> Bool {
        guard state.exited else { return false }
        if state.outputEnded { return true }
        var unread: Int32 = 0
        return ioctl(descriptor, UInt(FIONREAD), &unread) == 0 && unread == 0
    }

    /// Changes the state and wakes every waiter.
    private static func update(_ state: NIOLockedValueBox<State>, _ change: (inout State) -> Void) {
        let waiters = state.withLockedValue { state in
            change(&state)
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// A failed expectation in test support code, with a readable description.
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A file with `text` in the temporary directory (a config for a child process); remove it when done.
public struct TemporaryFile: Sendable {
    public let url: URL
    public var path: String { self.url.path }

    public init(_ text: String, suffix: String = ".yaml") throws {
        self.url = FileManager.default.temporaryDirectory.appendingPathComponent("lhttpd-\(UUID().uuidString)\(suffix)")
        try Data(text.utf8).write(to: self.url)
    }

    public func remove() {
        try? FileManager.default.removeItem(at: self.url)
    }
}
