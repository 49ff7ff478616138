import CCurl
import NIOCore

/// One request in flight: its easy handle, header list, and the response being collected.
///
/// Created, driven and destroyed on the client's curl thread only. Swift owns the easy handle and the
/// header list: both are freed in `deinit`, after the handle left the multi handle.
final class CurlTransfer {
    let easy: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?
    let completion: @Sendable (Result<UpstreamResponse, UpstreamError>) -> Void
    private let maxResponseBytes: Int
    private(set) var body = ByteBuffer()
    private(set) var headers: [(name: String, value: String)] = []
    private(set) var overflowed = false

    /// Configures an easy handle for `request`; throws when libcurl refuses an option.
    init(
        request: UpstreamRequest,
        configuration: CurlHTTPClient.Configuration,
        completion: @escaping @Sendable (Result<UpstreamResponse, UpstreamError>) -> Void
    ) throws(UpstreamError) {
        guard let easy = curl_easy_init() else { throw .transport(code: -1, message: "curl_easy_init failed") }
        self.easy = easy
        self.completion = completion
        self.maxResponseBytes = configuration.maxResponseBytes
        try self.configure(request, configuration)
    }

    deinit {
        curl_easy_cleanup(self.easy)
        curl_slist_free_all(self.headerList)
    }

    private func check(_ code: CURLcode, _ what: String) throws(UpstreamError) {
        guard code == CURLE_OK else {
            throw .transport(code: Int(code.rawValue), message: "\(what): \(String(cString: curl_easy_strerror(code)))")
        }
    }

    private func configure(_ request: UpstreamRequest, _ configuration: CurlHTTPClient.Configuration) throws(UpstreamError) {
        let easy = self.easy
        try check(lhttp_curl_easy_setopt_string(easy, CURLOPT_URL, request.url), "URL")
        // Safety: no signals (we are a threaded process), http/https only, never follow redirects.
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1), "NOSIGNAL")
        try check(lhttp_curl_easy_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https"), "PROTOCOLS_STR")
        try check(lhttp_curl_easy_setopt_string(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"), "REDIR_PROTOCOLS_STR")
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0), "FOLLOWLOCATION")
        let timeout = request.timeoutMilliseconds ?? configuration.timeoutMilliseconds
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, timeout), "TIMEOUT_MS")
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, configuration.connectTimeoutMilliseconds), "CONNECTTIMEOUT_MS")
        try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_TCP_NODELAY, 1), "TCP_NODELAY")

        switch request.method {
        case "GET":
            try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_HTTPGET, 1), "HTTPGET")
        case "DELETE":
            try check(lhttp_curl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, "DELETE"), "CUSTOMREQUEST")
        case "POST", "PUT", "PATCH":
            let body = request.body ?? ByteBuffer()
            try check(lhttp_curl_easy_setopt_long(easy, CURLOPT_POST, 1), "POST")
            try check(lhttp_curl_easy_setopt_offset(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.readableBytes)), "POSTFIELDSIZE")
            // libcurl copies the body, so its lifetime is not tied to this Swift value.
            try body.withUnsafeReadableBytes { raw throws(UpstreamError) in
                let pointer = UnsafeMutableRawPointer(mutating: raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!)
                try check(lhttp_curl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, pointer), "COPYPOSTFIELDS")
            }
            if request.method != "POST" {
                try check(lhttp_curl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, request.method), "CUSTOMREQUEST")
            }
        default:
            throw .invalidRequest("method \(request.method) is not one of GET, POST, PUT, PATCH, DELETE")
        }

        // An empty `Expect:` stops libcurl from waiting for `100 Continue` on larger bodies.
        var list: UnsafeMutablePointer<curl_slist>? = curl_slist_append(nil, "Expect:")
        for header in request.headers {
            guard Self.isValidHeader(name: header.name, value: header.value) else {
                curl_slist_free_all(list)
                throw .invalidRequest("header \(header.name) has a forbidden character")
            }
            list = curl_slist_append(list, "\(header.name): \(header.value)")
        }
        self.headerList = list
        try check(lhttp_curl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list), "HTTPHEADER")

        let this = Unmanaged.passUnretained(self).toOpaque()
        try check(lhttp_curl_easy_setopt_pointer(easy, CURLOPT_PRIVATE, this), "PRIVATE")
        try check(lhttp_curl_easy_setopt_callback(easy, CURLOPT_WRITEFUNCTION, curlWriteBody), "WRITEFUNCTION")
        try check(lhttp_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, this), "WRITEDATA")
        try check(lhttp_curl_easy_setopt_callback(easy, CURLOPT_HEADERFUNCTION, curlWriteHeader), "HEADERFUNCTION")
        try check(lhttp_curl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, this), "HEADERDATA")
    }

    /// Header names are tokens; values hold no CR, LF or NUL (no header injection).
    static func isValidHeader(name: String, value: String) -> Bool {
        !name.isEmpty
            && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }
            && !value.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }
    }

    /// Appends response body bytes; returns false (abort the transfer) past `maxResponseBytes`.
    fileprivate func appendBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard self.body.readableBytes + bytes.count <= self.maxResponseBytes else {
            self.overflowed = true
            return false
        }
        self.body.writeBytes(bytes)
        return true
    }

    /// Collects one header line; a status line starts a new response (after `100 Continue`).
    fileprivate func appendHeaderLine(_ bytes: UnsafeRawBufferPointer) {
        let line = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: [" ", "\r", "\n", "\t"])
        if line.hasPrefix("HTTP/") {
            self.headers.removeAll()
            return
        }
        guard let colon = line.firstIndex(of: ":") else { return }
        let name = String(line[..<colon])
        let value = String(line[line.index(after: colon)...]).trimmingCharacters(in: [" ", "\t"])
        self.headers.append((name, value))
    }

    /// The outcome once libcurl reported the transfer done with `code`.
    func outcome(_ code: CURLcode) -> Result<UpstreamResponse, UpstreamError> {
        guard code == CURLE_OK else {
            return .failure(Self.error(for: code, overflowed: self.overflowed, limit: self.maxResponseBytes))
        }
        var status = 0
        _ = lhttp_curl_easy_getinfo_long(self.easy, CURLINFO_RESPONSE_CODE, &status)
        return .success(UpstreamResponse(status: status, headers: self.headers, body: self.body))
    }

    /// The one mapping from libcurl's result codes to ``UpstreamError``.
    static func error(for code: CURLcode, overflowed: Bool, limit: Int) -> UpstreamError {
        let message = String(cString: curl_easy_strerror(code))
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return .timeout
        case CURLE_COULDNT_CONNECT:
            return .connectionRefused(message)
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_GOT_NOTHING, CURLE_RECV_ERROR, CURLE_SEND_ERROR:
            return .unreachable(message)
        case CURLE_WRITE_ERROR where overflowed:
            return .responseTooLarge(limit: limit)
        case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT:
            return .disallowed(message)
        default:
            return .transport(code: Int(code.rawValue), message: message)
        }
    }
}

private func transfer(_ userdata: UnsafeMutableRawPointer?) -> CurlTransfer? {
    userdata.map { Unmanaged<CurlTransfer>.fromOpaque($0).takeUnretainedValue() }
}

/// CURLOPT_WRITEFUNCTION: body bytes.
private let curlWriteBody: lhttp_curl_data_callback = { pointer, size, count, userdata in
    let total = size * count
    guard let pointer, let transfer = transfer(userdata) else { return 0 }
    return transfer.appendBody(UnsafeRawBufferPointer(start: pointer, count: total)) ? total : 0
}

/// CURLOPT_HEADERFUNCTION: one header line per call.
private let curlWriteHeader: lhttp_curl_data_callback = { pointer, size, count, userdata in
    let total = size * count
    guard let pointer, let transfer = transfer(userdata) else { return 0 }
    transfer.appendHeaderLine(UnsafeRawBufferPointer(start: pointer, count: total))
    return total
}
