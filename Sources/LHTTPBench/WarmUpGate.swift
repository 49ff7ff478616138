import Foundation
import NIOCore

/// Publishes warm-up messages every 20 ms until every subscriber has received one: proof that all
/// subscriptions are in place before a measured run (both servers subscribe asynchronously).
/// Confined to the bench's event loop.
final class WarmUpGate {
    private let eventLoop: any EventLoop
    private let subscribers: Int
    private var seen: [Bool]
    private var count = 0
    private var promise: EventLoopPromise<Void>?

    init(eventLoop: any EventLoop, subscribers: Int) {
        self.eventLoop = eventLoop
        self.subscribers = subscribers
        self.seen = Array(repeating: false, count: subscribers)
    }

    /// Starts publishing warm-ups on `publisher` (at most 4 unanswered); the future succeeds when all
    /// subscribers saw one.
    func open(publisher: HTTPLoadConnection, target: String, payloadBytes: Int) -> EventLoopFuture<Void> {
        let body = BenchPayload.warmup(size: payloadBytes)
        return self.open {
            guard publisher.inFlight < 4 else { return }
            publisher.write(target: target, body: body)
            publisher.flush()
        }
    }

    /// Starts calling `publish` (which publishes one warm-up message) every 20 ms; the future succeeds
    /// when all subscribers saw one.
    func open(publish: @escaping () -> Void) -> EventLoopFuture<Void> {
        let promise = self.eventLoop.makePromise(of: Void.self)
        guard self.subscribers > 0 else {
            promise.succeed(())
            return promise.futureResult
        }
        self.promise = promise
        let deadline = NIODeadline.now() + .seconds(15)
        func tick() {
            guard let pending = self.promise else { return }
            if NIODeadline.now() > deadline {
                self.promise = nil
                pending.fail(BenchError.timeout("\(self.subscribers - self.count) subscribers never received a warm-up message"))
                return
            }
            publish()
            self.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(20)) { tick() }
        }
        tick()
        return promise.futureResult
    }

    /// A subscriber received a warm-up message.
    func saw(_ index: Int) {
        guard index < self.seen.count, !self.seen[index] else { return }
        self.seen[index] = true
        self.count += 1
        if self.count == self.subscribers, let promise = self.promise {
            self.promise = nil
            // Let the last warm-ups drain before measuring.
            self.eventLoop.scheduleTask(in: .milliseconds(100)) { promise.succeed(()) }
        }
    }

    /// Fails a pending warm-up (publisher lost).
    func fail(_ error: any Error) {
        self.promise?.fail(error)
        self.promise = nil
    }
}

extension BenchPayload {
    /// Checks a delivered websocket payload: the dialect's exact prefix, then the body. An LHTTP prefix (a
    /// header block) may be followed by lhttpd's history headers (`seq:`, `prev:`) before its blank line, as
    /// on a channel with history; any other extra byte is corruption.
    static func check(_ raw: UnsafeRawBufferPointer, prefix: [UInt8]) -> Parsed {
        guard raw.count >= prefix.count,
            prefix.withUnsafeBytes({ memcmp($0.baseAddress!, raw.baseAddress!, prefix.count) == 0 })
        else {
            guard prefix.count >= 4, prefix.suffix(4) == [13, 10, 13, 10] else { return .corrupt }
            return self.checkWithHistory(raw, headers: prefix.dropLast(2))
        }
        return parse(UnsafeRawBufferPointer(rebasing: raw[prefix.count...]))
    }

    /// `headers` (the prefix up to its last header line), then only `seq:`/`prev:` lines, the blank line, the body.
    private static func checkWithHistory(_ raw: UnsafeRawBufferPointer, headers: ArraySlice<UInt8>) -> Parsed {
        guard raw.count >= headers.count, headers.withUnsafeBytes({ memcmp($0.baseAddress!, raw.baseAddress!, headers.count) == 0 }) else {
            return .corrupt
        }
        var index = headers.count
        var lines = 0
        while index + 1 < raw.count {
            if raw[index] == 13, raw[index + 1] == 10 {
                return lines == 2 ? parse(UnsafeRawBufferPointer(rebasing: raw[(index + 2)...])) : .corrupt
            }
            let rest = UnsafeRawBufferPointer(rebasing: raw[index...])
            guard rest.starts(with: "seq:".utf8) || rest.starts(with: "prev:".utf8) else { return .corrupt }
            guard let end = rest.firstIndex(of: 10), end > 0, rest[end - 1] == 13 else { return .corrupt }
            index += end + 1
            lines += 1
        }
        return .corrupt
    }
}
