import CCurl

/// The libcurl multi handle of one ``CurlHTTPClient``.
///
/// Only the curl thread calls it, except `wakeup`, which libcurl documents as callable from any thread.
/// The client calls `wakeup` under its lock and only while it is running, and the thread calls `cleanup`
/// only after it saw the client stopping under that lock: so no wake-up can reach a freed handle.
final class CurlMultiHandle: Sendable {
    // An opaque C handle: libcurl synchronizes `curl_multi_wakeup`; all other calls come from one thread.
    nonisolated(unsafe) private let handle: UnsafeMutableRawPointer

    /// - Parameter maxConnects: idle backend connections kept for reuse across requests.
    init(maxConnects: Int = 64) {
        self.handle = curl_multi_init()
        _ = lhttp_curl_multi_setopt_long(self.handle, CURLMOPT_MAXCONNECTS, maxConnects)
    }

    func wakeup() {
        _ = curl_multi_wakeup(self.handle)
    }

    func add(_ easy: UnsafeMutableRawPointer) throws(UpstreamError) {
        let code = curl_multi_add_handle(self.handle, easy)
        guard code == CURLM_OK else {
            throw .transport(code: Int(code.rawValue), message: String(cString: curl_multi_strerror(code)))
        }
    }

    func remove(_ easy: UnsafeMutableRawPointer) {
        _ = curl_multi_remove_handle(self.handle, easy)
    }

    func perform() {
        var running: Int32 = 0
        _ = curl_multi_perform(self.handle, &running)
    }

    /// The next finished transfer, if any.
    func nextDone() -> (UnsafeMutableRawPointer, CURLcode)? {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(self.handle, &remaining) {
            if lhttp_curl_msg_is_done(message) != 0, let easy = lhttp_curl_msg_easy_handle(message) {
                return (easy, lhttp_curl_msg_result(message))
            }
        }
        return nil
    }

    func poll(timeoutMilliseconds: Int32) {
        var ready: Int32 = 0
        _ = curl_multi_poll(self.handle, nil, 0, timeoutMilliseconds, &ready)
    }

    /// Frees the handle and closes its cached connections; the thread's last use of it.
    func cleanup() {
        curl_multi_cleanup(self.handle)
    }
}
