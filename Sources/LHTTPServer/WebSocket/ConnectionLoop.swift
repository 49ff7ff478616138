import NIOCore

/// What the websocket connections of one event loop share: the keep-alive sweeper (pings, idle closes,
/// the graceful stop's registry) and the flusher (when their writes go out). Made on first use on its
/// loop by ``GatewayServer``; confined to that loop.
final class ConnectionLoop {
    let eventLoop: any EventLoop
    let sweeper: KeepAliveSweeper
    let flusher: LoopFlusher

    init(eventLoop: any EventLoop, pingIntervalS: Double, idleTimeoutS: Double) {
        self.eventLoop = eventLoop
        self.sweeper = KeepAliveSweeper(eventLoop: eventLoop, pingIntervalS: pingIntervalS, idleTimeoutS: idleTimeoutS)
        self.flusher = LoopFlusher(eventLoop: eventLoop)
    }
}
