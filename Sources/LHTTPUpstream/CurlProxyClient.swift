import CCurl
import Foundation
import LHTTPGateway
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The reverse proxy's transport: streamed exchanges with the app's backend over libcurl's multi
/// interface, on one dedicated thread (apart from the upstream and webhook clients, so a page load
/// never waits behind a webhook and the other way round).
///
/// New exchanges, resumes and cancels reach the thread through one locked queue and `curl_multi_wakeup`;
/// events go back to the event loop of each exchange. The multi handle's connection cache keeps backend
/// connections alive across requests. At most `maxInFlight` exchanges run; one more fails at once with
/// ``ProxyFailure/overloaded``.
public final class CurlProxyClient: ProxyTransport, Sendable {
    public struct Configuration: Sendable {
        /// Exchanges at once (`proxy.max_in_flight`).
        public var maxInFlight: Int
        /// Idle backend connections kept for reuse.
        public var maxIdleConnections: Int
        /// The longest the thread sleeps when nothing wakes it.
        public var idlePollMilliseconds: Int32 = 1000

        public init(maxInFlight: Int = 4096, maxIdleConnections: Int = 256) {
            self.maxInFlight = maxInFlight
            self.maxIdleConnections = maxIdleConnections
        }
    }

    private enum Command {
        case start(CurlProxyTransfer)
        case resume(CurlProxyTransfer)
        case cancel(CurlProxyTransfer)
    }

    private struct State {
        var commands: [Command] = []
        /// Exchanges started and not finished (admission against `maxInFlight`).
        var inFlight = 0
        var running = true
        var stopped = false
        /// A task on an event loop will wake the thread for the exchanges started meanwhile.
        var wakeScheduled = false
        var shutdownWaiters: [CheckedContinuation<Void, Never>] = []
    }

    public let configuration: Configuration
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    /// Easy handles of finished exchanges, reset, for the next ones (at most ``maxPooledHandles``).
    private let pool = NIOLockedValueBox<[PooledHandle]>([])

    /// An easy handle nobody uses (`@unchecked`: only whoever took it from the pool touches it).
    private struct PooledHandle: @unchecked Sendable {
        let easy: UnsafeMutableRawPointer
    }
    /// Each pooled handle keeps its 256 KiB receive buffer: 32 of them hold about 8 MiB at most.
    static let maxPooledHandles = 32
    private let multi: CurlMultiHandle

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_ALL)) }()

    public init(configuration: Configuration = Configuration(), logger: Logger = Logger(label: "lhttpd.proxy")) {
        Self.globalInit
        self.configuration = configuration
        self.logger = logger
        self.multi = CurlMultiHandle(maxConnects: configuration.maxIdleConnections)
        let thread = Thread { [self] in self.runLoop() }
        thread.name = "lhttpd-proxy"
        thread.start()
    }

    /// Exchanges running now.
    public var inFlight: Int { self.state.withLockedValue { $0.inFlight } }

    public func start(
        _ request: ProxyRequest, on eventLoop: any EventLoop, events: @escaping @Sendable (CircularBuffer<ProxyEvent>) -> Void
    ) -> any ProxyStream {
        let transfer: CurlProxyTransfer
        do {
            transfer = try CurlProxyTransfer(request: request, client: self, eventLoop: eventLoop, events: events)
        } catch {
            return FailedProxyStream(error, on: eventLoop, events: events)
        }
        let (admitted, scheduleWake) = self.state.withLockedValue { state -> (ProxyFailure?, Bool) in
            guard state.running else { return (.transport("the proxy is shutting down"), false) }
            guard state.inFlight < self.configuration.maxInFlight else { return (.overloaded, false) }
            state.inFlight += 1
            state.commands.append(.start(transfer))
            defer { state.wakeScheduled = true }
            return (nil, !state.wakeScheduled)
        }
        if let admitted { return FailedProxyStream(admitted, on: eventLoop, events: events) }
        // The wake-up waits for the end of the loop's tick: every request read in it starts with one
        // wake-up of the curl thread, not one each (a woken thread takes the core from the loop at once).
        if scheduleWake { eventLoop.execute { self.wakeForStarts() } }
        return transfer
    }

    /// A handle for a new exchange: a pooled one (its options of every exchange set already: `fresh`
    /// false), else a new one.
    func takeEasyHandle() -> (easy: UnsafeMutableRawPointer, fresh: Bool)? {
        if let pooled = self.pool.withLockedValue({ $0.popLast() }) { return (pooled.easy, false) }
        return curl_easy_init().map { ($0, true) }
    }

    /// A finished exchange's handle (curl thread, out of the multi handle): pooled as it is (the next
    /// exchange sets every option that differs between exchanges), or freed.
    func giveBack(_ easy: UnsafeMutableRawPointer) {
        let kept = self.pool.withLockedValue { pool -> Bool in
            guard pool.count < Self.maxPooledHandles else { return false }
            pool.append(PooledHandle(easy: easy))
            return true
        }
        if !kept { curl_easy_cleanup(easy) }
    }

    private func wakeForStarts() {
        self.state.withLockedValue { state in
            state.wakeScheduled = false
            if state.running, !state.commands.isEmpty { self.multi.wakeup() }
        }
    }

    func resume(_ transfer: CurlProxyTransfer) {
        self.send(.resume(transfer))
    }

    func cancel(_ transfer: CurlProxyTransfer) {
        self.send(.cancel(transfer))
    }

    private func send(_ command: Command) {
        self.state.withLockedValue { state in
            guard state.running else { return }
            state.commands.append(command)
            self.multi.wakeup()
        }
    }

    /// Stops the thread: every exchange still running fails. Idempotent.
    public func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let gone = self.state.withLockedValue { state -> Bool in
                if state.stopped { return true }
                if state.running {
                    state.running = false
                    self.multi.wakeup()
                }
                state.shutdownWaiters.append(continuation)
                return false
            }
            if gone { continuation.resume() }
        }
    }

    // MARK: The curl thread

    /// Transfers with events for their loops, gathered during one pass of the thread (curl thread only).
    nonisolated(unsafe) private var toDeliver: [CurlProxyTransfer] = []

    /// A transfer queued events (curl thread): delivered at the end of this pass.
    func deliverLater(_ transfer: CurlProxyTransfer) {
        self.toDeliver.append(transfer)
    }

    /// One task per event loop for everything gathered in this pass.
    private func deliverGathered() {
        guard !self.toDeliver.isEmpty else { return }
        var byLoop: [ObjectIdentifier: (loop: any EventLoop, transfers: [CurlProxyTransfer])] = [:]
        for transfer in self.toDeliver {
            byLoop[ObjectIdentifier(transfer.loop), default: (transfer.loop, [])].transfers.append(transfer)
        }
        self.toDeliver.removeAll(keepingCapacity: true)
        for (_, entry) in byLoop {
            let transfers = entry.transfers
            entry.loop.execute { for transfer in transfers { transfer.drainEvents() } }
        }
    }

    private func runLoop() {
        var active: [UnsafeMutableRawPointer: CurlProxyTransfer] = [:]
        while true {
            let (commands, running) = self.state.withLockedValue { state in
                defer { state.commands.removeAll(keepingCapacity: true) }
                return (state.commands, state.running)
            }
            guard running else {
                for case .start(let transfer) in commands { transfer.finish(.transport("the proxy is shutting down")) }
                self.deliverGathered()
                break
            }
            for command in commands {
                switch command {
                case .start(let transfer):
                    do {
                        try self.multi.add(transfer.easy)
                        active[transfer.easy] = transfer
                    } catch {
                        self.finished(transfer, .transport("\(error)"))
                    }
                case .resume(let transfer):
                    // Both directions: a callback with still nothing to do pauses its side again.
                    // (The same transfer: a finished one's handle may serve another exchange by now.)
                    if active[transfer.easy] === transfer { _ = curl_easy_pause(transfer.easy, CURLPAUSE_CONT) }
                case .cancel(let transfer):
                    if active[transfer.easy] === transfer {
                        active.removeValue(forKey: transfer.easy)
                        self.multi.remove(transfer.easy)
                        self.finished(transfer, nil, deliver: false)
                    }
                }
            }
            self.multi.perform()
            while let (easy, code) = self.multi.nextDone() {
                guard let transfer = active.removeValue(forKey: easy) else { continue }
                self.multi.remove(easy)
                self.finished(transfer, code == CURLE_OK ? nil : CurlProxyTransfer.failure(for: code))
            }
            self.deliverGathered()
            self.multi.poll(timeoutMilliseconds: self.configuration.idlePollMilliseconds)
        }
        for (easy, transfer) in active {
            self.multi.remove(easy)
            self.finished(transfer, .transport("the proxy is shutting down"))
        }
        active.removeAll()
        self.deliverGathered()
        self.multi.cleanup()
        for handle in self.pool.withLockedValue({ pool in defer { pool.removeAll() }; return pool }) { curl_easy_cleanup(handle.easy) }
        let waiters = self.state.withLockedValue { state in
            state.stopped = true
            defer { state.shutdownWaiters.removeAll() }
            return state.shutdownWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    private func finished(_ transfer: CurlProxyTransfer, _ failure: ProxyFailure?, deliver: Bool = true) {
        self.state.withLockedValue { $0.inFlight -= 1 }
        if deliver { transfer.finish(failure) }
        transfer.recycle()
    }
}

/// An exchange that could not start: its one event is the failure.
final class FailedProxyStream: ProxyStream {
    init(_ failure: ProxyFailure, on eventLoop: any EventLoop, events: @escaping @Sendable (CircularBuffer<ProxyEvent>) -> Void) {
        eventLoop.execute { events([.failed(failure)]) }
    }

    func write(_ chunk: ByteBuffer) -> Bool { true }
    func end() {}
    func consumed(_ bytes: Int) {}
    func cancel() {}
}
