import Foundation
import Histogram
import NIOCore
import NIOPosix

/// `churn`: what connecting and disconnecting costs, the way browsers do it (page loads, reloads, tabs
/// closed). `workers` independent clients each loop: open a websocket (with an HS256 token for its own user
/// `u<k>` when a secret is given), subscribe to one of `rooms` rooms, wait for the proof it was applied (an
/// unknown-version message the server answers in order with error 505: the same round trip whatever the
/// server's configuration), close cleanly (close frame, the server's close, the server's end of the TCP
/// connection) and start again; `connects` connections in all or `seconds`, whichever comes first.
/// Meanwhile `watchers` long-lived connections (anonymous: they never join) sit in the rooms and check the
/// `join` / `leave` events a server with presence sends: per user, a join before each leave.
///
/// Run once against lhttpd without presence and once with `presence: true`, `join_leave: true`,
/// `leave_grace_s: 0` on the rooms, the difference is what presence costs on churn. Every unexpected
/// message, close or refusal is an error; at the end, a presence query per watcher must find the rooms empty
/// of users (a connection or user left behind is an error).
public struct ChurnScenario: Sendable {
    public var target: BenchTarget
    public var workers: Int
    /// Connections opened in all (by all workers).
    public var connects: Int
    /// The churn stops after this many seconds even when `connects` is not reached.
    public var seconds: Int
    public var rooms: Int
    public var watchers: Int
    /// lhttpd's `auth.jwt.hmac_secret`: each worker signs a token for its user. Nil: anonymous workers.
    public var jwtSecret: String?
    /// The server's PID, for its memory before and after (optional).
    public var serverPID: Int32?
    public var timeout: TimeAmount
    /// A cycle stuck this long in one step is an error (the connection is closed and the worker goes on).
    public var stuckAfter: TimeAmount = .seconds(5)
    /// After the churn, how long the watchers may wait for the last leaves.
    public var settle: TimeAmount = .seconds(3)

    public init(
        target: BenchTarget, workers: Int, connects: Int, seconds: Int, rooms: Int, watchers: Int, jwtSecret: String? = nil,
        serverPID: Int32? = nil, timeout: TimeAmount = .seconds(120)
    ) {
        self.target = target
        self.workers = workers
        self.connects = connects
        self.seconds = seconds
        self.rooms = max(rooms, 1)
        self.watchers = watchers
        self.jwtSecret = jwtSecret
        self.serverPID = serverPID
        self.timeout = timeout
    }

    static func room(_ index: Int, rooms: Int) -> String { "room-\(index % rooms)" }
    static func user(_ worker: Int) -> String { "u\(worker)" }

    public func run(on eventLoop: any EventLoop) async throws -> BenchResult {
        guard self.target.dialect == .lhttp else {
            throw BenchError.unsupported("churn speaks LHTTP (subscribe, join/leave): lhttpd only")
        }
        guard self.workers >= 1, self.connects >= 1, self.seconds >= 1, self.watchers >= 0 else {
            throw BenchError.unsupported("--workers, --connects and --seconds must be at least 1, --watchers 0 or more")
        }
        let rssStart = self.serverPID.flatMap(ProcessMemory.residentKiB(pid:))
        let scenario = self
        let (tracker, sink) = try await ScenarioConnections.bind(on: eventLoop) { ChurnTracker(scenario: scenario, eventLoop: eventLoop) }
        let outcome: Result<BenchResult, any Error>
        do {
            try await eventLoop.flatSubmit { tracker.value.run(sink: sink) }.get()
            let rssEnd = self.serverPID.flatMap(ProcessMemory.residentKiB(pid:))
            outcome = .success(try await eventLoop.submit { tracker.value.result(rssStart: rssStart, rssEnd: rssEnd) }.get())
        } catch {
            outcome = .failure(error)
        }
        try? await eventLoop.submit { tracker.value.closeAll() }.get()
        return try outcome.get()
    }
}

/// The churn bookkeeping: every worker's cycle as a small state machine, the watchers' view of join and
/// leave. Confined to the bench's event loop.
final class ChurnTracker: BenchSink {
    private enum Step: String {
        case connecting
        case subscribing
        case closing
    }

    private struct Worker {
        /// The index of its current connection (every connection gets a new one).
        var connection = -1
        var channel: (any Channel)?
        var step = Step.connecting
        var cycleStart: UInt64 = 0
        var stepStart: UInt64 = 0
        /// The server answered our close frame with its own, code 1000.
        var closeAnswered = false
        /// A close frame with another code, or one the server sent first.
        var serverCloseCode: UInt16?
        /// Closed by the watchdog (already counted as an error).
        var stuck = false
        var cycles = 0
    }

    private struct Watcher {
        let room: String
        var channel: (any Channel)?
        var ready = false
        /// Users the watcher was told joined and not yet left.
        var joined = Set<String>()
        var answered = false
    }

    private let scenario: ChurnScenario
    private let eventLoop: any EventLoop
    private var sink: NIOLoopBound<any BenchSink>?
    private var workers: [Worker]
    private var watchers: [Watcher]
    /// Worker connection index → worker.
    private var owners: [Int: Int] = [:]
    private var nextConnection: Int
    private var tokens: [String?]
    private var watcherPath: String

    private var done: EventLoopPromise<Void>?
    private var churning = false
    private var finishing = false
    private var timedOut = false
    private var started = 0
    private var active = 0
    private var deadline: UInt64 = 0
    private var watchdog: Scheduled<Void>?

    private var cycles = 0
    private var cycleHistogram = Histogram<UInt64>(highestTrackableValue: 120_000_000)  // µs
    private var applyHistogram = Histogram<UInt64>(highestTrackableValue: 120_000_000)  // µs
    private var startNanos: UInt64 = 0
    private var endNanos: UInt64 = 0
    private var startCPUNanos: UInt64 = 0
    private var endCPUNanos: UInt64 = 0
    private var serverCPUStart: UInt64?
    private var serverCPUEnd: UInt64?
    private var watcherEvents = 0
    private var workerEvents = 0
    /// Presence answered the final query (false: 404, the rooms keep no presence).
    private var presenceOn = false
    private var usersLeft = 0
    private var clientsLeft = 0
    private var errors = 0
    /// The first few errors, for the note.
    private var errorSamples: [String] = []

    init(scenario: ChurnScenario, eventLoop: any EventLoop) {
        self.scenario = scenario
        self.eventLoop = eventLoop
        self.workers = Array(repeating: Worker(), count: scenario.workers)
        self.watchers = (0..<scenario.watchers).map { Watcher(room: ChurnScenario.room($0, rooms: scenario.rooms)) }
        self.nextConnection = scenario.watchers
        // One token per worker, signed once: lhttpd verifies it on every upgrade.
        self.tokens = (0..<scenario.workers).map { worker in
            scenario.jwtSecret.map { BenchToken.hs256(secret: $0, sub: ChurnScenario.user(worker)) }
        }
        self.watcherPath = scenario.jwtSecret.map { "/ws?token=" + BenchToken.hs256(secret: $0, sub: nil) } ?? "/ws"
    }

    private func path(worker: Int) -> String {
        self.tokens[worker].map { "/ws?token=" + $0 } ?? "/ws"
    }

    private static func subscribe(_ room: String) -> [String] {
        ["LHTTP/1.0 sub\r\nsubscribe:\(room)\r\n\r\n", "LHTTP/9.9 sync\r\n\r\n"]
    }

    private func problem(_ text: String) {
        self.errors += 1
        if self.errorSamples.count < 5 { self.errorSamples.append(text) }
    }

    // MARK: The run

    /// Watchers in their rooms, then the churn, the settling of the last leaves, the final presence query.
    func run(sink: NIOLoopBound<any BenchSink>) -> EventLoopFuture<Void> {
        self.sink = sink
        let promise = self.eventLoop.makePromise(of: Void.self)
        self.done = promise
        self.eventLoop.assumeIsolated().scheduleTask(in: self.scenario.timeout) { [weak self] in
            guard let self, self.done != nil else { return }
            self.timedOut = true
            if self.endNanos == 0 { self.endChurn() }
            self.finish()
        }
        if self.watchers.isEmpty {
            self.startChurn()
        }
        for index in self.watchers.indices {
            let room = self.watchers[index].room
            RawWebSocket.connect(
                on: self.eventLoop, host: self.scenario.target.host, port: self.scenario.target.port, path: self.watcherPath,
                index: index, sink: sink
            ).assumeIsolated().whenComplete { [weak self] result in
                guard let self else { return }
                switch result {
                case .success(let channel):
                    self.watchers[index].channel = channel
                    RawWebSocket.send(Self.subscribe(room), on: channel)
                case .failure(let error):
                    self.problem("watcher \(index): \(error)")
                    self.finish()
                }
            }
        }
        return promise.futureResult
    }

    private func startChurn() {
        guard self.done != nil, !self.churning else { return }
        self.churning = true
        self.startNanos = BenchClock.nanos()
        self.startCPUNanos = BenchClock.processCPUNanos()
        self.serverCPUStart = self.scenario.serverPID.flatMap(ProcessCPU.nanos(pid:))
        self.deadline = self.startNanos + UInt64(self.scenario.seconds) * 1_000_000_000
        self.active = self.workers.count
        self.checkStuck()
        for worker in self.workers.indices { self.startCycle(worker) }
    }

    /// The next cycle of `worker`, or its end when the count or the time is up.
    private func startCycle(_ worker: Int) {
        let now = BenchClock.nanos()
        guard self.churning, self.started < self.scenario.connects, now < self.deadline else {
            self.active -= 1
            if self.active == 0 { self.churnDone() }
            return
        }
        self.started += 1
        let index = self.nextConnection
        self.nextConnection += 1
        self.owners[index] = worker
        let cycles = self.workers[worker].cycles
        self.workers[worker] = Worker(connection: index, step: .connecting, cycleStart: now, stepStart: now, cycles: cycles)
        guard let sink = self.sink else { return }
        RawWebSocket.connect(
            on: self.eventLoop, host: self.scenario.target.host, port: self.scenario.target.port, path: self.path(worker: worker),
            index: index, sink: sink
        ).assumeIsolated().whenComplete { [weak self] result in
            guard let self, self.owners[index] == worker else { return }
            switch result {
            case .success(let channel):
                self.workers[worker].channel = channel
                self.workers[worker].step = .subscribing
                self.workers[worker].stepStart = BenchClock.nanos()
                RawWebSocket.send(Self.subscribe(ChurnScenario.room(worker, rooms: self.scenario.rooms)), on: channel)
            case .failure(let error):
                self.problem("worker \(worker): \(error)")
                self.connectionEnded(index, worker: worker)
            }
        }
    }

    /// Connection `index` of `worker` is over (cleanly or not): the next cycle, from a fresh loop turn.
    private func connectionEnded(_ index: Int, worker: Int) {
        guard self.owners.removeValue(forKey: index) != nil else { return }
        self.workers[worker].channel = nil
        self.eventLoop.assumeIsolated().execute { [weak self] in self?.startCycle(worker) }
    }

    /// Closes the connections stuck in one step for longer than `stuckAfter` (an error each), every 250 ms
    /// while the churn lasts.
    private func checkStuck() {
        self.watchdog = self.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(250)) { [weak self] in
            guard let self, self.churning else { return }
            self.checkStuck()
        }
        let now = BenchClock.nanos()
        let limit = UInt64(self.scenario.stuckAfter.nanoseconds)
        for index in self.workers.indices where self.owners[self.workers[index].connection] != nil && !self.workers[index].stuck {
            let worker = self.workers[index]
            guard now - worker.stepStart > limit, let channel = worker.channel else { continue }
            self.workers[index].stuck = true
            self.problem("worker \(index): no progress for \(self.scenario.stuckAfter) while \(worker.step.rawValue)")
            channel.close(promise: nil)
        }
    }

    private func churnDone() {
        self.endChurn()
        self.settleThenQuery(until: BenchClock.nanos() + UInt64(self.scenario.settle.nanoseconds))
    }

    private func endChurn() {
        self.churning = false
        self.watchdog?.cancel()
        self.watchdog = nil
        self.endNanos = BenchClock.nanos()
        self.endCPUNanos = BenchClock.processCPUNanos()
        self.serverCPUEnd = self.scenario.serverPID.flatMap(ProcessCPU.nanos(pid:))
    }

    /// Waits (bounded) until no watcher still has a user joined, then asks presence about each watcher's room.
    private func settleThenQuery(until limit: UInt64) {
        guard self.done != nil else { return }
        if self.watchers.contains(where: { !$0.joined.isEmpty }), BenchClock.nanos() < limit {
            self.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(20)) { [weak self] in self?.settleThenQuery(until: limit) }
            return
        }
        for watcher in self.watchers where !watcher.joined.isEmpty {
            self.problem("\(watcher.room): \(watcher.joined.count) users joined and never left (\(watcher.joined.sorted().prefix(3).joined(separator: " ")))")
        }
        self.finishing = true
        guard !self.watchers.isEmpty else { return self.finish() }
        for watcher in self.watchers {
            guard let channel = watcher.channel else { continue }
            RawWebSocket.send(["LHTTP/1.0 presence\r\npresence:\(watcher.room)\r\n\r\n"], on: channel)
        }
        self.eventLoop.assumeIsolated().scheduleTask(in: .seconds(5)) { [weak self] in
            guard let self, self.done != nil else { return }
            self.problem("\(self.watchers.filter { !$0.answered }.count) presence queries unanswered")
            self.finish()
        }
    }

    private func finish() {
        guard let done = self.done else { return }
        self.done = nil
        self.finishing = true
        done.succeed(())
    }

    func closeAll() {
        self.finishing = true
        self.churning = false
        self.watchdog?.cancel()
        for watcher in self.watchers { watcher.channel?.close(promise: nil) }
        for worker in self.workers { worker.channel?.close(promise: nil) }
    }

    // MARK: What the connections get

    func received(_ payload: UnsafeRawBufferPointer, from index: Int) {
        guard let message = ChurnMessage(payload) else {
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: payload.prefix(60)), as: UTF8.self)
            return self.problem("connection \(index): not an LHTTP message: \(text.debugDescription)")
        }
        if index < self.watchers.count {
            self.watcherReceived(message, watcher: index)
            return
        }
        guard let worker = self.owners[index] else { return }
        let room = ChurnScenario.room(worker, rooms: self.scenario.rooms)
        switch message.command {
        case "join", "leave":
            // Other workers coming and going in the same room.
            guard message.headers["channel"] == room else {
                return self.problem("worker \(worker) in \(room): \(message.summary)")
            }
            self.workerEvents += 1
        case "error" where message.headers["status"] == "505" && self.workers[worker].step == .subscribing:
            let now = BenchClock.nanos()
            _ = self.applyHistogram.record((now - self.workers[worker].stepStart) / 1000)
            self.workers[worker].step = .closing
            self.workers[worker].stepStart = now
            self.workers[worker].channel?.pipeline.fireUserInboundEventTriggered(RawWebSocketHandler.StartClose())
        default:
            self.problem("worker \(worker) (\(self.workers[worker].step.rawValue)): unexpected \(message.summary)")
        }
    }

    private func watcherReceived(_ message: ChurnMessage, watcher index: Int) {
        let room = self.watchers[index].room
        switch message.command {
        case "error" where message.headers["status"] == "505" && !self.watchers[index].ready:
            self.watchers[index].ready = true
            if self.watchers.allSatisfy(\.ready) { self.startChurn() }
        case "join", "leave":
            guard message.headers["channel"] == room, let user = message.headers["user"], !user.isEmpty else {
                return self.problem("watcher \(index) in \(room): \(message.summary)")
            }
            self.watcherEvents += 1
            if message.command == "join" {
                if !self.watchers[index].joined.insert(user).inserted { self.problem("\(room): \(user) joined twice without leaving") }
            } else if self.watchers[index].joined.remove(user) == nil {
                self.problem("\(room): \(user) left without having joined")
            }
        case "presence" where self.finishing && !self.watchers[index].answered:
            self.watchers[index].answered = true
            self.presenceOn = true
            let users = Int(message.headers["users"] ?? "") ?? -1
            let clients = Int(message.headers["clients"] ?? "") ?? -1
            let watchersHere = self.watchers.filter { $0.room == room }.count
            if users != 0 || clients != watchersHere {
                self.usersLeft += max(users, 0)
                self.clientsLeft += max(clients - watchersHere, 0)
                self.problem("\(room) after the churn: presence lists \(users) users, \(clients) clients (expected 0 and the \(watchersHere) watchers)")
            }
            self.presenceAnswered()
        case "error" where self.finishing && !self.watchers[index].answered && message.headers["status"] == "404":
            // The rooms keep no presence: the run without it.
            self.watchers[index].answered = true
            self.presenceAnswered()
        default:
            self.problem("watcher \(index) in \(room): unexpected \(message.summary)")
            // A watcher refused while joining its room: no churn to watch.
            if !self.watchers[index].ready { self.finish() }
        }
    }

    private func presenceAnswered() {
        if self.watchers.allSatisfy(\.answered) { self.finish() }
    }

    func closeFrame(_ code: UInt16?, from index: Int) {
        guard index >= self.watchers.count, let worker = self.owners[index] else { return }
        if self.workers[worker].step == .closing, code == 1000 {
            self.workers[worker].closeAnswered = true
        } else {
            self.workers[worker].serverCloseCode = code ?? 1005
        }
    }

    func closed(_ index: Int) {
        if index < self.watchers.count {
            if !self.finishing { self.problem("watcher \(index) closed by the server") }
            self.watchers[index].channel = nil
            return
        }
        guard let worker = self.owners[index] else { return }
        let state = self.workers[worker]
        if state.step == .closing, state.closeAnswered, state.serverCloseCode == nil {
            let now = BenchClock.nanos()
            _ = self.cycleHistogram.record((now - state.cycleStart) / 1000)
            self.cycles += 1
            self.workers[worker].cycles += 1
        } else if !state.stuck {
            let how = state.serverCloseCode.map { "with close code \($0)" } ?? "without a close frame"
            self.problem("worker \(worker): connection ended \(how) while \(state.step.rawValue)")
        }
        self.connectionEnded(index, worker: worker)
    }

    // MARK: The result

    func result(rssStart: Int?, rssEnd: Int?) -> BenchResult {
        let elapsed = Double(max(self.endNanos &- self.startNanos, 1)) / 1e9
        // Each completed cycle is one join and one leave for every watcher of the worker's room (leave_grace_s: 0).
        var expected = 0
        for (index, worker) in self.workers.enumerated() {
            let room = ChurnScenario.room(index, rooms: self.scenario.rooms)
            expected += 2 * worker.cycles * self.watchers.filter { $0.room == room }.count
        }
        var metrics: [String: Double] = [
            "cycles": Double(self.cycles),
            "cycles_per_s": Double(self.cycles) / elapsed,
            "cycle_p50_ms": Double(self.cycleHistogram.valueAtPercentile(50)) / 1000,
            "cycle_p99_ms": Double(self.cycleHistogram.valueAtPercentile(99)) / 1000,
            "subscribe_p50_ms": Double(self.applyHistogram.valueAtPercentile(50)) / 1000,
            "subscribe_p99_ms": Double(self.applyHistogram.valueAtPercentile(99)) / 1000,
            "events": Double(self.watcherEvents),
            "events_per_s": Double(self.watcherEvents) / elapsed,
            "events_expected_with_presence": Double(expected),
            "worker_events": Double(self.workerEvents),
            "presence": self.presenceOn ? 1 : 0,
            "users_left": Double(self.usersLeft),
            "clients_left": Double(self.clientsLeft),
            "elapsed_s": elapsed,
            // The load generator's CPU over the churn (100: its core was the limit, not the server).
            "load_cpu_pct": 100 * Double(self.endCPUNanos &- self.startCPUNanos) / 1e9 / elapsed,
        ]
        if let start = self.serverCPUStart, let end = self.serverCPUEnd {
            // The server's CPU over the churn (100 for a server pinned to one core: that core was the limit).
            metrics["server_cpu_pct"] = 100 * Double(end &- start) / 1e9 / elapsed
            // What a cycle costs the server, whatever else shared its core meanwhile.
            metrics["server_cpu_us_per_cycle"] = Double(end &- start) / 1000 / Double(max(self.cycles, 1))
        }
        if let rssStart, let rssEnd {
            metrics["rss_start_kib"] = Double(rssStart)
            metrics["rss_end_kib"] = Double(rssEnd)
        }
        var notes: [String] = []
        if self.timedOut { notes.append("timed out after \(self.scenario.timeout)") }
        if self.presenceOn, self.watcherEvents != expected {
            notes.append("\(self.watcherEvents) join/leave events for \(expected) expected")
        }
        if !self.errorSamples.isEmpty { notes.append("errors: " + self.errorSamples.joined(separator: "; ")) }
        return BenchResult(
            scenario: "churn",
            dialect: self.scenario.target.dialect,
            parameters: [
                "workers": self.scenario.workers, "connects": self.scenario.connects, "seconds": self.scenario.seconds,
                "rooms": self.scenario.rooms, "watchers": self.scenario.watchers,
            ],
            labels: ["token": self.scenario.jwtSecret == nil ? "none" : "hs256"],
            metrics: metrics,
            errors: self.errors,
            completed: !self.timedOut && self.cycles > 0,
            note: notes.isEmpty ? nil : notes.joined(separator: " — ")
        )
    }
}

/// The command and headers of an LHTTP message a churn connection got (the body is not needed).
struct ChurnMessage {
    var command: String
    var headers: [String: String] = [:]

    init?(_ payload: UnsafeRawBufferPointer) {
        // Heads are short: decode up to the blank line only.
        var end = payload.count
        if payload.count >= 4 {
            for index in 0...(payload.count - 4)
            where payload[index] == 13 && payload[index + 1] == 10 && payload[index + 2] == 13 && payload[index + 3] == 10 {
                end = index
                break
            }
        }
        let head = String(decoding: UnsafeRawBufferPointer(rebasing: payload[..<end]), as: UTF8.self)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)[...]
        guard let first = lines.popFirst(), first.hasPrefix("LHTTP/"), let space = first.firstIndex(of: " ") else { return nil }
        self.command = String(first[first.index(after: space)...])
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            self.headers[String(line[..<colon])] = String(line[line.index(after: colon)...])
        }
    }

    var summary: String {
        let headers = self.headers.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: " ")
        return "\(self.command) \(headers)".trimmingCharacters(in: .whitespaces)
    }
}
