import NIOCore

extension Channel {
    /// The peer as `ip:port` for logs and the app's events ("" when the channel has no remote address).
    var peerAddress: String {
        self.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? ""
    }
}
