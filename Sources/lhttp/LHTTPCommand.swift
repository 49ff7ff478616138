import ArgumentParser
import Foundation
import LHTTPClient
import LHTTPProtocol
import NIOCore

/// `lhttp`: a terminal client for lhttpd. Argument parsing and wiring only; the protocol work is in
/// `LHTTPClient` and `LHTTPProtocol`.
@main
struct LHTTPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lhttp",
        abstract: "Talk to lhttpd from a terminal: interactive, or one-shot publish and subscribe for scripts and cron.",
        subcommands: [Interactive.self, Publish.self, Subscribe.self],
        defaultSubcommand: Interactive.self
    )
}

/// Exit statuses of the one-shot commands.
enum ExitStatus {
    static let ok: Int32 = 0
    /// No connection, or the server closed it.
    static let connectionFailed: Int32 = 1
    /// Bad arguments (a URL that does not parse).
    static let usage: Int32 = 64
    /// 401 or 403: token missing or wrong.
    static let unauthorized: Int32 = 3
    /// Any other 4xx.
    static let rejected: Int32 = 4
    /// 5xx.
    static let serverError: Int32 = 5

    static func forHTTP(_ status: Int) -> Int32 {
        switch status {
        case 200..<300: return ok
        case 401, 403: return unauthorized
        case 400..<500: return rejected
        default: return serverError
        }
    }
}

struct Interactive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect",
        abstract: "Interactive client: `lhttp ws://127.0.0.1:8081/ws`, then type `help`.",
        discussion: """
            Commands (one per line):
              sub <channel...>               subscribe
              unsub <channel...>             unsubscribe
              pub <channel> <text>           publish text (command: publish)
              send <command> [key:value ...] [-- body]
                                             send any LHTTP message
              raw <text>                     send text as is (\\r \\n \\t escapes)
              quit                           close and exit
            Incoming messages are printed as they arrive.
            """
    )

    @Argument(help: "Websocket URL, e.g. ws://127.0.0.1:8081/ws.") var url: String
    @Option(name: .customLong("header"), help: "Extra handshake header (name:value), e.g. Cookie:token=ann. Repeatable.")
    var headers: [String] = []
    @Option(help: "Seconds to keep printing incoming messages after the input ends (piped scripts).")
    var linger: Double = 1

    func run() async throws {
        let target = try WebSocketURL(self.url)
        let client = try await LHTTPWebSocketClient.connect(
            host: target.host, port: target.port, path: target.path, headers: HeaderOption.parse(self.headers)
        )
        emit("connected to \(self.url) — type `help` for commands")
        let printer = Task {
            for await event in client.events {
                emit(Render.event(event))
                if case .closed = event { Foundation.exit(ExitStatus.connectionFailed) }
            }
        }
        // Blocking line reads off the cooperative pool.
        let lines = AsyncStream<String> { continuation in
            Thread.detachNewThread {
                while let line = readLine(strippingNewline: true) { continuation.yield(line) }
                continuation.finish()
            }
        }
        for await line in lines {
            do {
                guard let action = try InteractiveLine.parse(line) else { continue }
                switch action {
                case .help:
                    emit(Interactive.configuration.discussion)
                case .quit:
                    printer.cancel()
                    try? await client.close()
                    return
                case .send(let message):
                    try await client.send(message)
                case .raw(let text):
                    try await client.sendText(text)
                }
            } catch let error as InteractiveLine.Error {
                emit("? \(error.message)")
            }
        }
        // Input ended (a piped script): what it caused may still be arriving.
        try? await Task.sleep(for: .milliseconds(Int64(self.linger * 1000)))
        printer.cancel()
        try? await client.close()
    }
}

struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "POST one message to /publish; the exit status reflects the answer (0 ok, 3 token, 4 refused, 5 server, 1 no connection)."
    )

    @Option(help: "lhttpd's HTTP address.") var url = "http://127.0.0.1:8081"
    @Option(help: "publish.token, sent as Authorization: Bearer.") var token: String?
    @Option(name: .customLong("channel"), help: "Channel (repeatable).") var channels: [String]
    @Option(help: "LHTTP command of the message.") var command = "publish"
    @Option(help: "Publish path.") var path = "/publish"
    @Argument(help: "The message body (read from standard input when absent).") var text: String?

    func run() async throws {
        guard !self.channels.isEmpty else { throw ValidationError("give at least one --channel") }
        let target: HTTPURL
        do {
            target = try HTTPURL(self.url)
        } catch {
            printError("lhttp: \(error)")
            throw ExitCode(ExitStatus.usage)
        }
        let body = self.text ?? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        var query = self.channels.map { "channel=" + QueryEscape.escape($0) }
        query.append("command=" + QueryEscape.escape(self.command))
        var headers: [(String, String)] = [("Content-Type", "text/plain; charset=utf-8")]
        if let token = self.token { headers.append(("Authorization", "Bearer \(token)")) }
        let response: HTTPResponse
        do {
            let publisher = try await HTTPPublisher.connect(host: target.host, port: target.port, timeout: .seconds(10))
            response = try await publisher.request(path: self.path + "?" + query.joined(separator: "&"), headers: headers, body: ByteBuffer(string: body))
            try? await publisher.close()
        } catch {
            printError("lhttp: cannot publish to \(self.url): \(error)")
            throw ExitCode(ExitStatus.connectionFailed)
        }
        let status = ExitStatus.forHTTP(response.status)
        if status == ExitStatus.ok {
            emit(response.bodyString.trimmingCharacters(in: .whitespacesAndNewlines))
        } else {
            printError("lhttp: HTTP \(response.status): \(response.bodyString.trimmingCharacters(in: .whitespacesAndNewlines))")
            throw ExitCode(status)
        }
    }
}

struct Subscribe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Subscribe and print one message per line (or one JSON object with --json) until closed or --count messages.",
        discussion: """
            On channels with history, --since <epoch>:<offset> (one per channel, - for none) first prints what was
            published after that position, each message once. The server's `subscribed` answers go to standard
            error: "lhttp: <channel> recovered=<bool> missed=<n> stream=<position>"; start the next run from that
            stream position (or from the `seq` of the last message printed) to miss nothing in between.
            """
    )

    @Argument(help: "Websocket URL, e.g. ws://127.0.0.1:8081/ws.") var url: String
    @Argument(help: "Channels.") var channels: [String]
    @Flag(help: "One JSON object per message: {\"command\",\"headers\",\"body\"}.") var json = false
    @Option(help: "Exit after this many messages.") var count: Int?
    @Option(name: .customLong("header"), help: "Extra handshake header (name:value). Repeatable.") var headers: [String] = []
    @Option(help: "Position to recover from, one per channel in order (<epoch>:<offset> or -). Repeatable.") var since: [String] = []

    func validate() throws {
        guard !self.channels.isEmpty else { throw ValidationError("give at least one channel") }
        guard self.since.isEmpty || self.since.count == self.channels.count else {
            throw ValidationError("--since: one per channel (\(self.channels.count)), - for none")
        }
        for value in self.since where value != "-" && HistoryPosition(parsing: Substring(value)) == nil {
            throw ValidationError("--since \(value): not <epoch>:<offset> or -")
        }
    }

    func run() async throws {
        let target = try WebSocketURL(self.url)
        var cursor = HistoryCursor(positions: Dictionary(
            zip(self.channels, self.since).compactMap { channel, value in HistoryPosition(parsing: Substring(value)).map { (channel, $0) } },
            uniquingKeysWith: { $1 }
        ))
        let subscribed = Set(self.channels)
        let client: LHTTPWebSocketClient
        do {
            client = try await LHTTPWebSocketClient.connect(
                host: target.host, port: target.port, path: target.path, headers: HeaderOption.parse(self.headers)
            )
            var headers: LHTTPHeaders = [LHTTPChannelList.subscribeHeader: self.channels.joined(separator: " ")]
            if !self.since.isEmpty { headers.add(name: "since", value: cursor.since(for: self.channels)) }
            try await client.send(LHTTPMessage(command: "subscribe", headers: headers))
        } catch {
            printError("lhttp: cannot subscribe at \(self.url): \(error)")
            throw ExitCode(ExitStatus.connectionFailed)
        }
        var received = 0
        for await event in client.events {
            switch event {
            case .message(let message, _, _):
                if let answer = cursor.answered(message) {
                    printError("lhttp: \(answer.channel) recovered=\(answer.recovered) missed=\(answer.missed) stream=\(answer.stream?.description ?? "-")")
                    continue
                }
                guard cursor.track(message, subscribed: subscribed) else { continue }
                emit(self.json ? Render.json(message) : Render.line(message))
                received += 1
                if let count = self.count, received >= count {
                    try? await client.close()
                    return
                }
            case .unparsable(let bytes, _):
                printError("lhttp: unparsable message (\(bytes.readableBytes) bytes)")
            case .closed(let code, let reason):
                printError("lhttp: closed (\(code.map(String.init) ?? "no code") \(reason))")
                throw ExitCode(ExitStatus.connectionFailed)
            }
        }
    }
}

/// Writes a line to standard output at once (no buffering: a pipe reader sees each line when it happens).
func emit(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
