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
    /// Whether `deinit` frees the easy handle: false once the curl thread gave it back to the client's pool.
    private var ownsEasy = true
    private var status = 0
    private var reason = ""
    private var headers: [(name: String, value: String)] = []
    private var headDelivered = false

    let shared = NIOLockedValueBox(Shared())
    private let eventLoop: any EventLoop
    private let sink: @Sendable (CircularBuffer<ProxyEvent>) -> Void
    /// The client, for resume and cancel requests (unowned: the client outlives its transfers' use).
    private unowned let client: CurlProxyClient

    init(
        request: ProxyRequest, client: CurlProxyClient, eventLoop: any EventLoop, events: @escaping @Sendable (CircularBuffer<ProxyEvent>) -> Void
    ) throws(ProxyFailure) {
        guard let (easy, fresh) = client.takeEasyHandle() else { throw .transport("curl_easy_init failed") }
        self.easy = easy
        self.client = client
        self.eventLoop = eventLoop
        self.sink = events
        if fresh { try self.configureHandle() }
        try self.configure(request)
    }

    deinit {
        if self.ownsEasy { curl_easy_cleanup(self.easy) }
        curl_slist_free_all(self.headerList)
    }

    /// On the curl thread, once the handle left the multi handle: the handle (reset) goes back to the pool
    /// for the next exchange (its buffers and state are kept: no allocation per request), the header list is freed.
    func recycle() {
        guard self.ownsEasy else { return }
        self.ownsEasy = false
        curl_slist_free_all(self.headerList)
        self.headerList = nil
        self.client.giveBack(self.easy)
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
        if case .body(var chunk) = event, case .body(var last)? = shared.events.last, last.readableBytes + chunk.readableBytes <= Self.window {
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

    /// Hands the transfer to the client's delivery round: at the end of the curl thread's pass, one task
    /// per event loop drains every transfer of that loop (not one task per transfer and event).
    private func schedule() {
        self.client.deliverLater(self)
    }

    /// The loop the events go to.
    var loop: any EventLoop { self.eventLoop }

    /// On the event loop: everything queued, in one batch.
    func drainEvents() {
        let events = self.shared.withLockedValue { shared -> CircularBuffer<ProxyEvent> in
            shared.deliveryScheduled = false
            defer { shared.events.removeAll(keepingCapacity: false) }
            return shared.events
        }
        if !events.isEmpty { self.sink(events) }
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
    /// Parsed on bytes (Foundation's trimming was a visible share of a small request's cost).
    fileprivate func receiveHeaderLine(_ bytes: UnsafeRawBufferPointer) {
        guard !self.headDelivered else { return }  // trailers
        var end = bytes.count
        while end > 0, bytes[end - 1] == UInt8(ascii: "\r") || bytes[end - 1] == UInt8(ascii: "\n") { end -= 1 }
        let line = UnsafeRawBufferPointer(rebasing: bytes[0..<end])
        func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        func text(_ from: Int, _ to: Int) -> String {
            var from = from, to = to
            while from < to, isBlank(line[from]) { from += 1 }
            while to > from, isBlank(line[to - 1]) { to -= 1 }
            return String(decoding: UnsafeRawBufferPointer(rebasing: line[from..<to]), as: UTF8.self)
        }
        if line.count >= 5, line[0] == UInt8(ascii: "H"), line[1] == UInt8(ascii: "T"), line[2] == UInt8(ascii: "T"), line[3] == UInt8(ascii: "P"),
            line[4] == UInt8(ascii: "/")
        {
            // HTTP/1.1 200 OK
            var index = 5
            while index < line.count, line[index] != UInt8(ascii: " ") { index += 1 }
            while index < line.count, line[index] == UInt8(ascii: " ") { index += 1 }
            var status = 0
            var digits = 0
            while index < line.count, digits < 3, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(line[index]) {
                status = status * 10 + Int(line[index] - UInt8(ascii: "0"))
                index += 1
                digits += 1
            }
            self.status = digits == 3 ? status : 0
            self.reason = index < line.count ? text(index, line.count) : ""
            self.headers.removeAll(keepingCapacity: true)
            return
        }
        if line.isEmpty {
            if self.status >= 200 || self.status == 101 { self.deliverHead() }
            return
        }
        if isBlank(line[0]) {
            // obs-fold (RFC 7230 3.2.4): a continuation joins the previous value with one space.
            if let previous = self.headers.popLast() {
                self.headers.append((previous.name, previous.value + " " + text(0, line.count)))
            }
            return
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return }
        self.headers.append((text(0, colon), text(colon + 1, line.count)))
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

    /// The options every exchange shares, set once per handle (a pooled handle keeps them).
    private func configureHandle() throws(ProxyFailure) {
        let easy = self.easy
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1), "NOSIGNAL")
        try check(lhttp_curl_easy_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https"), "PROTOCOLS_STR")
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0), "FOLLOWLOCATION")
        // The target exactly as routed: libcurl must not squash `/../` (the server refuses dot segments).
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_PATH_AS_IS, 1), "PATH_AS_IS")
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_TCP_NODELAY, 1), "TCP_NODELAY")
        // The body as the backend coded it (gzip stays gzip); chunked transfer coding is removed (the
        // server frames the body again for its client).
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_HTTP_CONTENT_DECODING, 0), "HTTP_CONTENT_DECODING")
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_BUFFERSIZE, 256 << 10), "BUFFERSIZE")
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_UPLOAD_BUFFERSIZE, 64 << 10), "UPLOAD_BUFFERSIZE")
        // A backend reached over https is verified like any other server (libcurl's defaults).
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 1), "SSL_VERIFYPEER")
        try check(lhttp_curl_easy_setopt_callback(easy, CURLOPT_READFUNCTION, curlProxyRead), "READFUNCTION")
        try check(lhttp_curl_easy_setopt_callback(easy, CURLOPT_WRITEFUNCTION, curlProxyWrite), "WRITEFUNCTION")
        try check(lhttp_curl_easy_setopt_callback(easy, CURLOPT_HEADERFUNCTION, curlProxyHeader), "HEADERFUNCTION")
    }

    /// The options of this exchange: every one that may differ from the handle's previous exchange is set.
    private func configure(_ request: ProxyRequest) throws(ProxyFailure) {
        let easy = self.easy
        try check(lhttp_curl_easy_setopt_string(easy, CURLOPT_URL, request.url), "URL")
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, request.connectTimeoutMilliseconds), "CONNECTTIMEOUT_MS")
        let this = Unmanaged.passUnretained(self).toOpaque()
        // HTTPGET first: it clears a previous exchange's upload and no-body settings.
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_HTTPGET, 1), "HTTPGET")
        try check(lhttp_curl_easy_setopt_pointer(easy, CURLOPT_CUSTOMREQUEST, nil), "CUSTOMREQUEST")
        try check(lhttp_curl_easy_setopt_offset(easy, CURLOPT_INFILESIZE_LARGE, -1), "INFILESIZE_LARGE")
        switch request.body {
        case .none:
            if request.method == "HEAD" {
                try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_NOBODY, 1), "NOBODY")
            } else if request.method != "GET" {
                try check(lhttp_curl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, request.method), "CUSTOMREQUEST")
            }
        case .length, .chunked:
            try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_UPLOAD, 1), "UPLOAD")
            if case .length(let length) = request.body {
                try check(lhttp_curl_easy_setopt_offset(easy, CURLOPT_INFILESIZE_LARGE, curl_off_t(length)), "INFILESIZE_LARGE")
            }
            try check(lhttp_curl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, request.method), "CUSTOMREQUEST")
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
        try check(lhttp_curl_easy_setopt_pointer(easy, CURLOPT_READDATA, this), "READDATA")
        try check(lhttp_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, this), "WRITEDATA")
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
