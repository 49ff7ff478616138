import CCurl
import LHTTPGateway
import NIOConcurrencyHelpers
import NIOCore

/// One proxied exchange: an easy handle streaming the request body from the event loop to the backend
/// and the response from the backend back to the loop, each way within a window.
///
/// The easy handle, its header list and the header parsing belong to the client's curl thread. What both
/// sides touch (the request bytes waiting, the events not delivered yet, the pause flags) is in ``Shared``
/// behind one lock. libcurl pauses itself: the read callback returns `CURL_READFUNC_PAUSE` when no request
/// byte waits, the write callback `CURL_WRITEFUNC_PAUSE` while a window of response bytes is not consumed;
/// the loop's side asks the curl thread to resume (`curl_easy_pause(CURLPAUSE_CONT)`), and a callback
/// that still has nothing to do pauses again.
final class CurlProxyTransfer: ProxyStream, @unchecked Sendable {
    /// Response bytes delivered to the loop and not consumed before libcurl stops reading the backend;
    /// request bytes queued before the loop stops reading its client.
    static let window = 256 << 10

    struct Shared {
        var request = CircularBuffer<ByteBuffer>()
        var requestBytes = 0
        var requestEnded = false
        /// The read callback returned `CURL_READFUNC_PAUSE`: a resume is needed when bytes arrive.
        var sendPaused = false
        /// `write` returned false: the loop waits for `requestBodyWanted`.
        var loopReadHeld = false
        /// Events not handed to the loop yet, and whether a delivery task is on its way.
        var events = CircularBuffer<ProxyEvent>()
        var deliveryScheduled = false
        /// Response bytes given to the loop (or waiting in `events`) and not consumed.
        var unconsumed = 0
        /// The write callback returned `CURL_WRITEFUNC_PAUSE`: a resume is needed once consumed.
        var receivePaused = false
        /// `cancel()` was called, or the exchange ended: nothing more is delivered.
        var closed = false
    }

    // Curl thread only.
    let easy: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private var status = 0
    private var reason = ""
    private var headers: [(name: String, value: String)] = []
    private var headDelivered = false
    private let hasBody: Bool

    let shared = NIOLockedValueBox(Shared())
    private let eventLoop: any EventLoop
    private let sink: @Sendable (ProxyEvent) -> Void
    /// The client, for resume and cancel requests (unowned: the client outlives its transfers' use).
    private unowned let client: CurlProxyClient

    init(
        request: ProxyRequest, client: CurlProxyClient, eventLoop: any EventLoop, events: @escaping @Sendable (ProxyEvent) -> Void
    ) throws(ProxyFailure) {
        guard let easy = curl_easy_init() else { throw .transport("curl_easy_init failed") }
        self.easy = easy
        self.client = client
        self.eventLoop = eventLoop
        self.sink = events
        self.hasBody = request.body != .none
        try self.configure(request)
    }

    deinit {
        curl_easy_cleanup(self.easy)
        curl_slist_free_all(self.headerList)
    }

    // MARK: ProxyStream (any thread; the event loop in practice)

    func write(_ chunk: ByteBuffer) -> Bool {
        let (resume, open) = self.shared.withLockedValue { shared -> (Bool, Bool) in
            guard !shared.closed else { return (false, true) }
            shared.request.append(chunk)
            shared.requestBytes += chunk.readableBytes
            let resume = shared.sendPaused
            shared.sendPaused = false
            let open = shared.requestBytes < Self.window
            if !open { shared.loopReadHeld = true }
            return (resume, open)
        }
        if resume { self.client.resume(self) }
        return open
    }

    func end() {
        let resume = self.shared.withLockedValue { shared -> Bool in
            shared.requestEnded = true
            defer { shared.sendPaused = false }
            return shared.sendPaused && !shared.closed
        }
        if resume { self.client.resume(self) }
    }

    func consumed(_ bytes: Int) {
        let resume = self.shared.withLockedValue { shared -> Bool in
            shared.unconsumed -= bytes
            guard shared.receivePaused, shared.unconsumed <= Self.window / 2, !shared.closed else { return false }
            shared.receivePaused = false
            return true
        }
        if resume { self.client.resume(self) }
    }

    func cancel() {
        let wasOpen = self.shared.withLockedValue { shared -> Bool in
            defer {
                shared.closed = true
                shared.events.removeAll()
                shared.request.removeAll()
            }
            return !shared.closed
        }
        if wasOpen { self.client.cancel(self) }
    }

    // MARK: Delivery to the loop

    /// Queues `event` for the loop; one task delivers everything queued by the time it runs.
    private func deliver(_ event: ProxyEvent, _ shared: inout Shared) -> Bool {
        guard !shared.closed else { return false }
        if case .body(var chunk) = event, case .body(var last)? = shared.events.last, last.readableBytes + chunk.readableBytes <= 64 << 10 {
            shared.events.removeLast()
            last.writeBuffer(&chunk)
            shared.events.append(.body(last))
        } else {
            shared.events.append(event)
        }
        if case .end = event { shared.closed = true }
        if case .failed = event { shared.closed = true }
        guard !shared.deliveryScheduled else { return false }
        shared.deliveryScheduled = true
        return true
    }

    private func schedule() {
        self.eventLoop.execute { self.drainEvents() }
    }

    private func drainEvents() {
        let events = self.shared.withLockedValue { shared -> CircularBuffer<ProxyEvent> in
            shared.deliveryScheduled = false
            defer { shared.events.removeAll(keepingCapacity: false) }
            return shared.events
        }
        for event in events { self.sink(event) }
    }

    /// From the curl thread: the transfer is over (`failure` nil: the response is complete).
    func finish(_ failure: ProxyFailure?) {
        let event: ProxyEvent
        if let failure {
            event = .failed(failure)
        } else if !self.headDelivered {
            event = .failed(.unreachable("no response head"))
        } else {
            event = .end
        }
        let schedule = self.shared.withLockedValue { self.deliver(event, &$0) }
        if schedule { self.schedule() }
    }

    // MARK: libcurl callbacks (curl thread)

    /// Request body bytes into libcurl's buffer; pauses when none waits and the body is not complete.
    fileprivate func readRequest(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var wanted = false
        let count = self.shared.withLockedValue { shared -> Int in
            if shared.closed { return Int(CURL_READFUNC_ABORT) }
            var copied = 0
            while copied < buffer.count, var chunk = shared.request.first {
                let n = min(chunk.readableBytes, buffer.count - copied)
                chunk.withUnsafeReadableBytes { raw in
                    UnsafeMutableRawBufferPointer(rebasing: buffer[copied..<(copied + n)]).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<n]))
                }
                chunk.moveReaderIndex(forwardBy: n)
                copied += n
                if chunk.readableBytes == 0 { shared.request.removeFirst() } else { shared.request[shared.request.startIndex] = chunk }
            }
            shared.requestBytes -= copied
            if shared.loopReadHeld, shared.requestBytes <= Self.window / 2 {
                shared.loopReadHeld = false
                wanted = self.deliver(.requestBodyWanted, &shared)
            }
            if copied == 0, !shared.requestEnded {
                shared.sendPaused = true
                return Int(CURL_READFUNC_PAUSE)
            }
            return copied
        }
        if wanted { self.schedule() }
        return count
    }

    /// Response body bytes to the loop; pauses while a window of them is not consumed.
    fileprivate func receiveBody(_ bytes: UnsafeRawBufferPointer) -> Int {
        if !self.headDelivered { self.deliverHead() }
        var schedule = false
        let accepted = self.shared.withLockedValue { shared -> Int in
            if shared.closed { return 0 }  // aborts the transfer
            if shared.unconsumed >= Self.window {
                shared.receivePaused = true
                return Int(CURL_WRITEFUNC_PAUSE)
            }
            shared.unconsumed += bytes.count
            schedule = self.deliver(.body(ByteBuffer(bytes: bytes)), &shared)
            return bytes.count
        }
        if schedule { self.schedule() }
        return accepted
    }

    /// One header line: a status line starts a response (a `1xx` one is skipped whole), the empty line ends it.
    fileprivate func receiveHeaderLine(_ bytes: UnsafeRawBufferPointer) {
        guard !self.headDelivered else { return }  // trailers
        // Bytes, not Characters: "\r\n" is one Character in Swift.
        var end = bytes.count
        while end > 0, bytes[end - 1] == UInt8(ascii: "\r") || bytes[end - 1] == UInt8(ascii: "\n") { end -= 1 }
        let line = Substring(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<end]), as: UTF8.self))
        if line.hasPrefix("HTTP/") {
            let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
            self.status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            self.reason = parts.count > 2 ? String(parts[2]) : ""
            self.headers.removeAll()
            return
        }
        if line.isEmpty {
            if self.status >= 200 || self.status == 101 { self.deliverHead() }
            return
        }
        if let first = line.first, first == " " || first == "\t" {
            // obs-fold (RFC 7230 3.2.4): a continuation joins the previous value with one space.
            if let previous = self.headers.popLast() {
                self.headers.append((previous.name, previous.value + " " + line.trimmingCharacters(in: [" ", "\t"])))
            }
            return
        }
        guard let colon = line.firstIndex(of: ":") else { return }
        let name = String(line[..<colon])
        let value = line[line.index(after: colon)...].trimmingCharacters(in: [" ", "\t"])
        self.headers.append((name, value))
    }

    private func deliverHead() {
        self.headDelivered = true
        let head = ProxyEvent.head(status: self.status, reason: self.reason, headers: self.headers)
        self.headers = []
        let schedule = self.shared.withLockedValue { self.deliver(head, &$0) }
        if schedule { self.schedule() }
    }

    // MARK: Configuration

    private func check(_ code: CURLcode, _ what: String) throws(ProxyFailure) {
        guard code == CURLE_OK else { throw .transport("\(what): \(String(cString: curl_easy_strerror(code)))") }
    }

    private func configure(_ request: ProxyRequest) throws(ProxyFailure) {
        let easy = self.easy
        try check(lhttp_curl_easy_setopt_string(easy, CURLOPT_URL, request.url), "URL")
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1), "NOSIGNAL")
        try check(lhttp_curl_easy_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https"), "PROTOCOLS_STR")
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0), "FOLLOWLOCATION")
        // The target exactly as routed: libcurl must not squash `/../` (the server refuses dot segments).
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_PATH_AS_IS, 1), "PATH_AS_IS")
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, request.connectTimeoutMilliseconds), "CONNECTTIMEOUT_MS")
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_TCP_NODELAY, 1), "TCP_NODELAY")
        // The body as the backend coded it (gzip stays gzip); chunked transfer coding is removed (the
        // server frames the body again for its client).
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_HTTP_CONTENT_DECODING, 0), "HTTP_CONTENT_DECODING")
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_BUFFERSIZE, 64 << 10), "BUFFERSIZE")
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_UPLOAD_BUFFERSIZE, 64 << 10), "UPLOAD_BUFFERSIZE")
        if request.url.hasPrefix("https:") {
            // A backend reached over https is verified like any other server (libcurl's defaults).
            try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 1), "SSL_VERIFYPEER")
        }

        let this = Unmanaged.passUnretained(self).toOpaque()
        switch request.body {
        case .none:
            if request.method == "HEAD" {
                try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_NOBODY, 1), "NOBODY")
            } else if request.method == "GET" {
                try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_HTTPGET, 1), "HTTPGET")
            } else {
                try check(lhttp_curl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, request.method), "CUSTOMREQUEST")
            }
        case .length, .chunked:
            try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_UPLOAD, 1), "UPLOAD")
            if case .length(let length) = request.body {
                try check(lhttp_curl_easy_setopt_offset(easy, CURLOPT_INFILESIZE_LARGE, curl_off_t(length)), "INFILESIZE_LARGE")
            }
            try check(lhttp_curl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, request.method), "CUSTOMREQUEST")
            try check(lhttp_curl_easy_setopt_callback(easy, CURLOPT_READFUNCTION, curlProxyRead), "READFUNCTION")
            try check(lhttp_curl_easy_setopt_pointer(easy, CURLOPT_READDATA, this), "READDATA")
        }

        // libcurl's own defaults off: no `Expect: 100-continue` wait, no `Accept: */*` the client did not send.
        var list: UnsafeMutablePointer<curl_slist>? = curl_slist_append(nil, "Expect:")
        if !request.headers.contains(where: { $0.name.lowercased() == "accept" }) { list = curl_slist_append(list, "Accept:") }
        for header in request.headers {
            guard CurlTransfer.isValidHeader(name: header.name, value: header.value) else { continue }
            // An empty value would tell libcurl to remove the header: `Name;` sends it empty.
            list = curl_slist_append(list, header.value.isEmpty ? "\(header.name);" : "\(header.name): \(header.value)")
        }
        self.headerList = list
        try check(lhttp_curl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list), "HTTPHEADER")

        try check(lhttp_curl_easy_setopt_pointer(easy, CURLOPT_PRIVATE, this), "PRIVATE")
        try check(lhttp_curl_easy_setopt_callback(easy, CURLOPT_WRITEFUNCTION, curlProxyWrite), "WRITEFUNCTION")
        try check(lhttp_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, this), "WRITEDATA")
        try check(lhttp_curl_easy_setopt_callback(easy, CURLOPT_HEADERFUNCTION, curlProxyHeader), "HEADERFUNCTION")
        try check(lhttp_curl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, this), "HEADERDATA")
    }

    /// The one mapping from libcurl's result codes to ``ProxyFailure``.
    static func failure(for code: CURLcode) -> ProxyFailure {
        let message = String(cString: curl_easy_strerror(code))
        switch code {
        case CURLE_COULDNT_CONNECT: return .refused(message)
        case CURLE_OPERATION_TIMEDOUT: return .timeout("connect: \(message)")
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_GOT_NOTHING, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_PARTIAL_FILE,
            CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION:
            return .unreachable(message)
        default: return .transport("curl \(code.rawValue): \(message)")
        }
    }
}

private func proxyTransfer(_ userdata: UnsafeMutableRawPointer?) -> CurlProxyTransfer? {
    userdata.map { Unmanaged<CurlProxyTransfer>.fromOpaque($0).takeUnretainedValue() }
}

private let curlProxyRead: lhttp_curl_data_callback = { pointer, size, count, userdata in
    guard let pointer, let transfer = proxyTransfer(userdata) else { return Int(CURL_READFUNC_ABORT) }
    return transfer.readRequest(into: UnsafeMutableRawBufferPointer(start: pointer, count: size * count))
}

private let curlProxyWrite: lhttp_curl_data_callback = { pointer, size, count, userdata in
    guard let pointer, let transfer = proxyTransfer(userdata) else { return 0 }
    return transfer.receiveBody(UnsafeRawBufferPointer(start: pointer, count: size * count))
}

private let curlProxyHeader: lhttp_curl_data_callback = { pointer, size, count, userdata in
    let total = size * count
    guard let pointer, let transfer = proxyTransfer(userdata) else { return 0 }
    transfer.receiveHeaderLine(UnsafeRawBufferPointer(start: pointer, count: total))
    return total
}
