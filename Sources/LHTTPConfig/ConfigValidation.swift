import Foundation

extension GatewayConfig {
    /// Checks the rules decoding cannot express and returns every broken one (empty when valid).
    ///
    /// Problems carry a key path but no source or line: a config built in code has neither.
    /// `ConfigLoader` fills both in from the file. `static_dir` is checked on disk,
    /// relative to the current working directory.
    public func validate() -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        func report(_ keyPath: String, _ message: String) {
            problems.append(ConfigProblem(keyPath: keyPath, message: message))
        }

        if listen.host.isEmpty {
            report("listen", "host must not be empty")
        }
        if !(0...65535).contains(listen.port) {
            report("listen", "port \(listen.port) is out of range 0...65535")
        }

        // Paths the server routes itself; a websocket path equal to one would shadow it.
        // An array, not a dictionary literal: publish.path may itself be "/healthz".
        var reserved = [(publish.path, "publish.path"), ("/healthz", "the health check"), ("/presence", "GET /presence"), ("/history", "GET /history")]
        if !metrics.path.isEmpty { reserved.append((metrics.path, "metrics.path")) }
        if websocket.paths.isEmpty {
            report("websocket.paths", "must list at least one path")
        }
        var seen: Set<String> = []
        for (index, path) in websocket.paths.enumerated() {
            let keyPath = "websocket.paths[\(index)]"
            if !path.hasPrefix("/") {
                report(keyPath, "\"\(path)\" must start with \"/\"")
            }
            if !seen.insert(path).inserted {
                report(keyPath, "duplicate path \"\(path)\"")
            }
            if let owner = reserved.first(where: { $0.0 == path })?.1 {
                report(keyPath, "\"\(path)\" is already used by \(owner)")
            }
        }

        if !publish.path.hasPrefix("/") {
            report("publish.path", "\"\(publish.path)\" must start with \"/\"")
        }
        if publish.path == "/healthz" {
            report("publish.path", "\"/healthz\" is already used by the health check")
        }

        if !metrics.path.isEmpty {
            if !metrics.path.hasPrefix("/") {
                report("metrics.path", "\"\(metrics.path)\" must start with \"/\" (or be empty to turn /metrics off)")
            } else if metrics.path == publish.path || metrics.path == "/healthz" {
                report("metrics.path", "\"\(metrics.path)\" is already used by \(metrics.path == "/healthz" ? "the health check" : "publish.path")")
            }
        }
        for (index, origin) in websocket.allowedOrigins.enumerated() {
            let lowered = origin.lowercased()
            if origin == "*" {
                if websocket.allowedOrigins.count > 1 { report("websocket.allowed_origins[\(index)]", "\"*\" allows every origin: list it alone") }
            } else if !(lowered.hasPrefix("http://") || lowered.hasPrefix("https://")) || origin.dropFirst(lowered.hasPrefix("https") ? 8 : 7).contains(where: { $0 == "/" || $0 == " " }) || origin.hasSuffix("//") {
                report("websocket.allowed_origins[\(index)]", "\"\(origin)\" must be an origin (scheme://host[:port], no path) or \"*\"")
            }
        }
        let seconds: [(String, Double)] = [
            ("websocket.ping_interval_s", websocket.pingIntervalS),
            ("websocket.idle_timeout_s", websocket.idleTimeoutS),
            ("websocket.close_timeout_s", websocket.closeTimeoutS),
            ("http.request_timeout_s", http.requestTimeoutS),
            ("http.keepalive_timeout_s", http.keepaliveTimeoutS),
            ("shutdown_timeout_s", shutdownTimeoutS),
        ]
        for (key, value) in seconds where !(value > 0 && value <= 86_400) {
            report(key, "must be greater than 0 and at most 86400 seconds, is \(value)")
        }
        if !(0...1000).contains(websocket.writeCoalescingUs) {
            report("websocket.write_coalescing_us", "must be between 0 and 1000 microseconds, is \(websocket.writeCoalescingUs)")
        }
        if websocket.pingIntervalS > 0, websocket.idleTimeoutS > 0, websocket.idleTimeoutS <= websocket.pingIntervalS {
            report("websocket.idle_timeout_s", "\(websocket.idleTimeoutS) must be longer than websocket.ping_interval_s (\(websocket.pingIntervalS)), or a quiet but healthy client is closed")
        }
        if http.maxBodyBytes <= 0 {
            report("http.max_body_bytes", "must be greater than 0, is \(http.maxBodyBytes)")
        }

        if threads < 0 || threads > 1024 {
            report("threads", "must be 0 (one per core) or 1...1024, is \(threads)")
        }

        func isHTTPURL(_ text: String) -> Bool {
            let lowered = text.lowercased()
            return (lowered.hasPrefix("http://") || lowered.hasPrefix("https://")) && !text.contains("@")
                && !text.contains(where: { $0 == " " || $0 == "\t" })
        }
        for (index, prefix) in upstream.allow.enumerated() where !isHTTPURL(prefix) {
            report("upstream.allow[\(index)]", "\"\(prefix)\" must be an http:// or https:// URL prefix without userinfo")
        }
        for (key, url) in [("connect", hooks.connect), ("subscribe", hooks.subscribe), ("disconnect", hooks.disconnect), ("presence", hooks.presence)]
        where !url.isEmpty && !isHTTPURL(url) {
            report("hooks.\(key)", "\"\(url)\" must be an http:// or https:// URL without userinfo")
        }
        for (command, route) in routes.sorted(by: { $0.key < $1.key }) {
            if !isHTTPURL(route.url) {
                report("routes.\(command).url", "\"\(route.url)\" must be an http:// or https:// URL without userinfo")
            }
            if let timeout = route.timeoutMs, timeout <= 0 {
                report("routes.\(command).timeout_ms", "must be greater than 0, is \(timeout)")
            }
            if command.isEmpty || command.contains(where: { $0 == " " || $0 == "\t" }) {
                report("routes.\(command)", "a route's command is one token without spaces")
            }
        }
        let webhookValues: [(String, Int)] = [
            ("timeout_ms", webhook.timeoutMs),
            ("max_in_flight", webhook.maxInFlight),
            ("max_queued_per_connection", webhook.maxQueuedPerConnection),
            ("max_queued_bytes", webhook.maxQueuedBytes),
        ]
        for (key, value) in webhookValues where value <= 0 {
            report("webhook.\(key)", "must be greater than 0, is \(value)")
        }
        let upstreamValues: [(String, Int)] = [
            ("timeout_ms", upstream.timeoutMs),
            ("connect_timeout_ms", upstream.connectTimeoutMs),
            ("max_in_flight", upstream.maxInFlight),
            ("max_queued", upstream.maxQueued),
            ("max_queued_bytes", upstream.maxQueuedBytes),
            ("max_response_bytes", upstream.maxResponseBytes),
            ("max_in_flight_per_connection", upstream.maxInFlightPerConnection),
            ("max_queued_bytes_per_connection", upstream.maxQueuedBytesPerConnection),
        ]
        for (key, value) in upstreamValues where value <= 0 {
            report("upstream.\(key)", "must be greater than 0, is \(value)")
        }
        if upstream.maxQueuedBytesPerConnection > 1 << 30 {
            report("upstream.max_queued_bytes_per_connection", "\(upstream.maxQueuedBytesPerConnection) must be at most 1073741824 (1 GiB per connection)")
        }
        if upstream.maxQueuedBytesPerConnection > 0, limits.maxMessageBytes > 0, upstream.maxQueuedBytesPerConnection < limits.maxMessageBytes {
            report("upstream.max_queued_bytes_per_connection",
                   "\(upstream.maxQueuedBytesPerConnection) must be at least limits.max_message_bytes (\(limits.maxMessageBytes)), or one waiting message cannot fit")
        }

        let limitValues: [(String, Int)] = [
            ("max_message_bytes", limits.maxMessageBytes),
            ("max_headers", limits.maxHeaders),
            ("max_header_line_bytes", limits.maxHeaderLineBytes),
            ("max_channels_per_message", limits.maxChannelsPerMessage),
            ("max_channel_name_bytes", limits.maxChannelNameBytes),
            ("max_outbound_bytes", limits.maxOutboundBytes),
            ("max_connections", limits.maxConnections),
            ("max_subscriptions_per_connection", limits.maxSubscriptionsPerConnection),
            ("max_channels", limits.maxChannels),
        ]
        for (key, value) in limitValues where value <= 0 {
            report("limits.\(key)", "must be greater than 0, is \(value)")
        }
        if limits.socketSendBufferBytes != 0, !(4096...(1 << 30)).contains(limits.socketSendBufferBytes) {
            report("limits.socket_send_buffer_bytes", "must be 0 (the kernel's choice) or between 4096 and 1073741824, is \(limits.socketSendBufferBytes)")
        }
        // Ordering rules only make sense between positive limits; a non-positive one is reported above.
        if limits.maxHeaderLineBytes > 0, limits.maxMessageBytes > 0,
           limits.maxHeaderLineBytes > limits.maxMessageBytes {
            report("limits.max_header_line_bytes",
                   "\(limits.maxHeaderLineBytes) must not exceed limits.max_message_bytes (\(limits.maxMessageBytes))")
        }
        if limits.maxChannelNameBytes > 0, limits.maxHeaderLineBytes > 0,
           limits.maxChannelNameBytes > limits.maxHeaderLineBytes {
            report("limits.max_channel_name_bytes",
                   "\(limits.maxChannelNameBytes) must not exceed limits.max_header_line_bytes (\(limits.maxHeaderLineBytes))")
        }

        for (key, value) in [
            ("max_messages_per_second", limits.maxMessagesPerSecond), ("max_bytes_per_second", limits.maxBytesPerSecond),
            ("burst_messages", limits.burstMessages), ("burst_bytes", limits.burstBytes), ("max_rate_violations", limits.maxRateViolations),
        ] where value < 0 {
            report("limits.\(key)", "must be 0 (off) or greater, is \(value)")
        }
        if limits.maxMessagesPerSecond > 0, limits.burstMessages < 1 {
            report("limits.burst_messages", "must be at least 1 when limits.max_messages_per_second is set")
        }
        if limits.maxBytesPerSecond > 0, limits.burstBytes < 1 {
            report("limits.burst_bytes", "must be at least 1 when limits.max_bytes_per_second is set")
        }

        var prefixes = Set<String>()
        for (index, options) in channels.enumerated() {
            if !prefixes.insert(options.prefix).inserted {
                report("channels[\(index)].prefix", "\"\(options.prefix)\" is listed twice")
            }
            if options.prefix.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) {
                report("channels[\(index)].prefix", "\"\(options.prefix)\" holds a space or a control character, which no channel name can")
            }
            if options.subscribe == .hook, hooks.subscribe.isEmpty {
                report("channels[\(index)].subscribe", "hook needs hooks.subscribe to be set")
            }
            if let size = options.historySize, !(0...HistoryConfig.maxSize).contains(size) {
                report("channels[\(index)].history_size", "must be between 0 (no history) and \(HistoryConfig.maxSize), is \(size)")
            }
            if let ttl = options.historyTTLS, ttl < 0 || !ttl.isFinite {
                report("channels[\(index)].history_ttl_s", "must be 0 (no expiry) or more seconds, is \(ttl)")
            }
            if options.subscribe == .token || options.publish == .token, !auth.jwt.isEnabled {
                report("channels[\(index)]", "token permissions need auth.jwt.hmac_secret or auth.jwt.public_key_files")
            }
            if options.userLimited, !auth.jwt.isEnabled {
                report("channels[\(index)].user_limited", "needs auth.jwt.hmac_secret or auth.jwt.public_key_files (a user comes from a token)")
            }
            if options.joinLeave, !options.presence {
                report("channels[\(index)].join_leave", "needs presence: true")
            }
            if options.leaveGraceS < 0 || !options.leaveGraceS.isFinite || options.leaveGraceS > 3600 {
                report("channels[\(index)].leave_grace_s", "must be between 0 and 3600 seconds, is \(options.leaveGraceS)")
            }
        }
        for (key, path) in [("publish.path", publish.path), ("metrics.path", metrics.path)] where path == "/presence" || path == "/history" {
            report(key, "\(path) is served by lhttpd itself (GET \(path))")
        }
        if !hooks.presence.isEmpty, !channels.contains(where: \.presence) {
            report("hooks.presence", "needs a channels entry with presence: true")
        }
        if auth.required, !auth.jwt.isEnabled {
            report("auth.required", "needs auth.jwt.hmac_secret or auth.jwt.public_key_files")
        }
        do {
            let jwt = auth.jwt
            if !jwt.hmacSecret.isEmpty, jwt.hmacSecret.utf8.count < 32 {
                report("auth.jwt.hmac_secret", "must be at least 32 bytes (HS256 needs a 256-bit key), is \(jwt.hmacSecret.utf8.count)")
            }
            for (key, value) in [("leeway_s", jwt.leewayS), ("refresh_grace_s", jwt.refreshGraceS)] where value < 0 || !value.isFinite || value > 86400 {
                report("auth.jwt.\(key)", "must be between 0 and 86400 seconds, is \(value)")
            }
        }

        if publish.idempotencyWindowS < 0 || !publish.idempotencyWindowS.isFinite {
            report("publish.idempotency_window_s", "must be 0 (off) or more seconds, is \(publish.idempotencyWindowS)")
        }
        if publish.idempotencyMaxKeys < 1 {
            report("publish.idempotency_max_keys", "must be at least 1, is \(publish.idempotencyMaxKeys)")
        }
        if !(0...HistoryConfig.maxSize).contains(history.size) {
            report("history.size", "must be between 0 (no history) and \(HistoryConfig.maxSize), is \(history.size)")
        }
        if history.ttlS < 0 || !history.ttlS.isFinite {
            report("history.ttl_s", "must be 0 (no expiry) or more seconds, is \(history.ttlS)")
        }
        if history.maxBytes < 1 {
            report("history.max_bytes", "must be at least 1, is \(history.maxBytes)")
        }
        if history.metaTTLS <= 0 || !history.metaTTLS.isFinite {
            report("history.meta_ttl_s", "must be more than 0 seconds, is \(history.metaTTLS)")
        }

        problems += proxyProblems()
        problems += tlsProblems()
        problems += cluster.problems(limits: limits)

        if !staticDir.isEmpty {
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: staticDir, isDirectory: &isDirectory) {
                report("static_dir", "directory \"\(staticDir)\" does not exist")
            } else if !isDirectory.boolValue {
                report("static_dir", "\"\(staticDir)\" is not a directory")
            }
        }
        return problems
    }
}

extension GatewayConfig {
    /// An `http://` or `https://` base URL with a host, and no userinfo, query or fragment.
    static func isBackendURL(_ text: String) -> Bool {
        let lowered = text.lowercased()
        guard lowered.hasPrefix("http://") || lowered.hasPrefix("https://") else { return false }
        let rest = text.drop(while: { $0 != ":" }).dropFirst(3)
        let authority = rest.prefix(while: { $0 != "/" })
        return !authority.isEmpty && !authority.hasPrefix(":") && !text.contains(where: { "@?# \t".contains($0) })
    }

    func proxyProblems() -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        func report(_ keyPath: String, _ message: String) {
            problems.append(ConfigProblem(keyPath: keyPath, message: message))
        }
        if !proxy.backend.isEmpty, !Self.isBackendURL(proxy.backend) {
            report("proxy.backend", "\"\(proxy.backend)\" must be an http:// or https:// URL with a host, without userinfo, query or fragment")
        }
        var prefixes = Set<String>()
        for (index, route) in proxy.routes.enumerated() {
            if !route.prefix.hasPrefix("/") {
                report("proxy.routes[\(index)].prefix", "\"\(route.prefix)\" must start with \"/\"")
            }
            if !prefixes.insert(route.prefix).inserted {
                report("proxy.routes[\(index)].prefix", "\"\(route.prefix)\" is listed twice")
            }
            if !Self.isBackendURL(route.backend) {
                report("proxy.routes[\(index)].backend", "\"\(route.backend)\" must be an http:// or https:// URL with a host, without userinfo, query or fragment")
            }
        }
        for (key, value) in [
            ("connect_timeout_ms", proxy.connectTimeoutMs), ("first_byte_timeout_ms", proxy.firstByteTimeoutMs),
            ("idle_timeout_ms", proxy.idleTimeoutMs), ("max_request_body_bytes", proxy.maxRequestBodyBytes), ("max_in_flight", proxy.maxInFlight),
        ] where value <= 0 {
            report("proxy.\(key)", "must be greater than 0, is \(value)")
        }
        for (index, entry) in proxy.trustedProxies.enumerated() where IPNetwork(parsing: entry) == nil {
            report("proxy.trusted_proxies[\(index)]", "\"\(entry)\" is not an IP address or CIDR network (10.0.0.0/8, ::1/128)")
        }
        if proxy.websocket, !proxy.isEnabled {
            report("proxy.websocket", "needs proxy.backend (or proxy.routes) to tunnel to")
        }
        return problems
    }

    func tlsProblems() -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        func report(_ keyPath: String, _ message: String) {
            problems.append(ConfigProblem(keyPath: keyPath, message: message))
        }
        guard tls.isEnabled || tls.redirectFrom != nil else { return [] }
        if tls.certFile.isEmpty { report("tls.cert_file", "is required with tls.key_file or tls.redirect_from") }
        if tls.keyFile.isEmpty { report("tls.key_file", "is required with tls.cert_file or tls.redirect_from") }
        for (key, path) in [("cert_file", tls.certFile), ("key_file", tls.keyFile)] where !path.isEmpty {
            if !FileManager.default.isReadableFile(atPath: path) {
                report("tls.\(key)", "\"\(path)\" does not exist or is not readable")
            }
        }
        if let redirect = tls.redirectFrom, redirect.port != 0, redirect.port == listen.port {
            report("tls.redirect_from", "\(redirect) uses the port of listen (\(listen))")
        }
        return problems
    }
}
