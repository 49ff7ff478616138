import NIOCore

extension Channel {
    /// Closes with a TCP reset (`SO_LINGER` 0): what the kernel still holds for the socket (bytes a client
    /// never read) is freed at once instead of lingering in FIN-WAIT.
    func reset() {
        guard self.isActive else { return }
        if let provider = self as? any SocketOptionProvider {
            provider.setSoLinger(NIOLinger(l_onoff: 1, l_linger: 0)).whenComplete { _ in self.close(promise: nil) }
        } else {
            self.close(promise: nil)
        }
    }
}
