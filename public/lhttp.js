/*
 * lhttp.js — the LHTTP/1.0 client for browsers (and Node 22+, which has a global WebSocket).
 * One file, no dependencies. Served by lhttpd from static_dir (the sample config serves public/).
 *
 *   Classic script:  <script src="/lhttp.js"></script>  then  new LHTTP(url)   (window.LHTTP)
 *   ES module:       import { LHTTP } from "/lhttp.mjs"  (a three-line re-export of this file)
 *
 *   const client = new LHTTP("ws://127.0.0.1:8081/ws");
 *   client.on("message", (m) => console.log(m.command, m.headers.get("publish"), m.body));
 *   client.subscribe("room");
 *   client.publish("room", "hello", { command: "chat" });
 *
 * Wire format: docs/protocol.md. The parser is faithful to it: a header value keeps every colon after the
 * first, the body keeps its blank lines and CRLFs, bare LF line ends are accepted, multipart offsets are
 * byte offsets into the body.
 *
 * Tokens, presence, join/leave (issue 16):
 *
 *   const client = new LHTTP(url, { getToken: () => fetch("/token").then((r) => r.text()) });
 *   client.on("join", (j) => console.log(j.user, "joined", j.channel, j.info));
 *   client.subscribe("room");
 *   client.presence("room").then((p) => console.log(p.clients, p.users, p.members));
 *
 *   getToken(context): a string (or a Promise of one) called before every connect and reconnect, with
 *     context.reason "connect", "reconnect", "expired" (after close code 4001) or "refresh"; the token goes
 *     into the URL as `?token=` (or `&token=` after an existing query); "" or null connects anonymously. A
 *     getToken that throws or rejects is an "error" event ({status: 0, reason, error}) and the connect is
 *     retried with the usual backoff.
 *   When the server asks (`LHTTP/1.0 refresh` with `grace:`), the client emits "refresh" ({grace}) and, with
 *     getToken, answers `LHTTP/1.0 refresh` with `token:`; the server's `refreshed` (`exp:`) is the
 *     "refreshed" event ({exp}; null when the new token has no exp). Neither is a "message". client.refresh([token]) does the same on demand:
 *     a Promise of {exp}, rejected on the server's error reply (401; 403 for another user), a getToken
 *     failure, a timeout or a disconnect.
 *   client.presence(channel[, {timeout}]): sends `LHTTP/1.0 presence` with `presence:<channel>`; a Promise of
 *     the answer's JSON body ({channel, clients, users, members: [{conn, user, info}]}), rejected (an Error
 *     with status and reason) on an error reply 403/404 or after the timeout. Asked while disconnected, it
 *     goes out after the reconnect (also if the connection dropped before the answer). Every presence
 *     answer is also a "presence" event.
 *   "join" / "leave" events: {channel, user, conn, info} (info: the JSON body, null when empty or invalid).
 */
(function (root) {
  "use strict";

  var VERSION = "LHTTP/1.0";
  var encoder = new TextEncoder();
  var decoder = new TextDecoder("utf-8", { fatal: false });
  var strictDecoder = new TextDecoder("utf-8", { fatal: true });

  /** Headers: order and spelling kept, names matched case-insensitively (ASCII), repeated names kept. */
  function Headers(list) {
    this.list = list || [];
  }
  Headers.prototype.get = function (name) {
    var lower = name.toLowerCase();
    for (var i = 0; i < this.list.length; i++) if (this.list[i][0].toLowerCase() === lower) return this.list[i][1];
    return undefined;
  };
  Headers.prototype.getAll = function (name) {
    var lower = name.toLowerCase();
    return this.list.filter(function (h) { return h[0].toLowerCase() === lower; }).map(function (h) { return h[1]; });
  };
  Headers.prototype.has = function (name) { return this.get(name) !== undefined; };
  /** A plain object (first value per lower-cased name), for code that wants `m.headers.status`-style access. */
  Headers.prototype.toObject = function () {
    var out = {};
    for (var i = 0; i < this.list.length; i++) {
      var key = this.list[i][0].toLowerCase();
      if (!(key in out)) out[key] = this.list[i][1];
    }
    return out;
  };

  function ParseError(message) {
    this.name = "LHTTPParseError";
    this.message = message;
  }
  ParseError.prototype = Object.create(Error.prototype);

  function toBytes(input) {
    if (typeof input === "string") return encoder.encode(input);
    if (input instanceof Uint8Array) return input;
    if (input instanceof ArrayBuffer) return new Uint8Array(input);
    if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    throw new ParseError("expected a string or bytes");
  }

  /** Index of the next LF at or after `from` (or -1). */
  function nextLF(bytes, from, end) {
    for (var i = from; i < end; i++) if (bytes[i] === 10) return i;
    return -1;
  }

  /** The text of line [start, lf) without a trailing CR; start/headers must be UTF-8. */
  function lineText(bytes, start, lf) {
    var end = lf > start && bytes[lf - 1] === 13 ? lf - 1 : lf;
    try {
      return strictDecoder.decode(bytes.subarray(start, end));
    } catch (e) {
      throw new ParseError("start line or header is not UTF-8");
    }
  }

  function trim(text) { return text.replace(/^[ \t]+|[ \t]+$/g, ""); }

  /** Header lines from `start` up to the blank line (or the end). Returns [headers, bodyStart or -1]. */
  function parseHeaderBlock(bytes, start, end, requireBlank) {
    var list = [];
    var pos = start;
    while (pos < end) {
      var lf = nextLF(bytes, pos, end);
      var lineEnd = lf === -1 ? end : lf;
      var text = lineText(bytes, pos, lineEnd);
      if (text === "") return [new Headers(list), lf === -1 ? end : lf + 1];
      var colon = text.indexOf(":");
      if (colon === -1) throw new ParseError("header line without ':'");
      var key = trim(text.slice(0, colon));
      if (key === "") throw new ParseError("empty header name");
      list.push([key, trim(text.slice(colon + 1))]);
      if (lf === -1) break;
      pos = lf + 1;
    }
    if (requireBlank) throw new ParseError("part without its blank line");
    return [new Headers(list), -1];
  }

  /**
   * Parses one LHTTP message (a string or bytes). Returns
   * { command, headers: Headers, body: string, bodyBytes: Uint8Array, parts: [{headers, body, bodyBytes}] }.
   * Throws LHTTPParseError on malformed input (the same rules as the server).
   */
  function parse(input) {
    var bytes = toBytes(input);
    var lf = nextLF(bytes, 0, bytes.length);
    if (lf === -1) throw new ParseError("no line end");
    var start = trim(lineText(bytes, 0, lf));
    if (start === "") throw new ParseError("empty start line");
    var match = /^(\S+)[ \t]+(.*)$/.exec(start);
    var token = match ? match[1] : start;
    if (token !== VERSION) throw new ParseError("unsupported version " + JSON.stringify(token.slice(0, 20)));
    var command = match ? trim(match[2]) : "";
    if (command === "") throw new ParseError("missing command");
    if (/[\s\u0000-\u001f\u007f]/.test(command)) throw new ParseError("invalid command");
    var block = parseHeaderBlock(bytes, lf + 1, bytes.length, false);
    var bodyBytes = block[1] === -1 ? new Uint8Array(0) : bytes.subarray(block[1]);
    var message = {
      command: command,
      headers: block[0],
      bodyBytes: bodyBytes,
      body: decoder.decode(bodyBytes),
      parts: []
    };
    var multipart = message.headers.get("multipart");
    if (multipart !== undefined) message.parts = parseParts(bodyBytes, multipart);
    return message;
  }

  /** Multipart: byte offsets into the body, strictly ascending, each part `headers, blank line, body`. */
  function parseParts(body, spec) {
    var offsets = spec.split(/[ \t]+/).filter(function (s) { return s !== ""; }).map(function (s) {
      if (!/^[0-9]+$/.test(s)) throw new ParseError("invalid multipart offset " + JSON.stringify(s));
      return parseInt(s, 10);
    });
    var parts = [];
    for (var i = 0; i < offsets.length; i++) {
      if (i > 0 && offsets[i] <= offsets[i - 1]) throw new ParseError("multipart offsets not ascending");
      if (offsets[i] >= body.length) throw new ParseError("multipart offset out of range");
    }
    for (var j = 0; j < offsets.length; j++) {
      var end = j + 1 < offsets.length ? offsets[j + 1] : body.length;
      var block = parseHeaderBlock(body, offsets[j], end, true);
      var partBody = body.subarray(block[1], end);
      parts.push({ headers: block[0], bodyBytes: partBody, body: decoder.decode(partBody) });
    }
    return parts;
  }

  /** `LHTTP/1.0 command\r\nkey:value\r\n...\r\n\r\nbody` as a string (bytes bodies are concatenated as bytes). */
  function serialize(command, headers, body) {
    if (typeof command !== "string" || command === "" || /[\s\u0000-\u001f\u007f]/.test(command)) {
      throw new ParseError("invalid command");
    }
    var head = VERSION + " " + command + "\r\n";
    var list = headers instanceof Headers ? headers.list : Array.isArray(headers) ? headers : Object.entries(headers || {});
    for (var i = 0; i < list.length; i++) {
      var key = String(list[i][0]);
      var value = String(list[i][1]);
      if (/[\r\n:]/.test(key) || key === "") throw new ParseError("invalid header name " + JSON.stringify(key));
      if (/[\r\n]/.test(value)) throw new ParseError("header values are one line");
      head += key + ":" + value + "\r\n";
    }
    head += "\r\n";
    if (body === undefined || body === null) return head;
    if (typeof body === "string") return head + body;
    var bytes = toBytes(body);
    var headBytes = encoder.encode(head);
    var out = new Uint8Array(headBytes.length + bytes.length);
    out.set(headBytes, 0);
    out.set(bytes, headBytes.length);
    return out;
  }

  function channelList(channels) {
    var list = Array.isArray(channels) ? channels : String(channels).split(/[ \t]+/);
    return list.filter(function (c) { return c !== ""; });
  }

  /**
   * A connection that stays up: reconnects with exponential backoff and jitter, re-subscribes every
   * channel after a reconnect, and keeps what is sent while disconnected in a bounded queue.
   *
   * History (docs/protocol.md 6.1): on channels where the server keeps it, the client remembers the last
   * position it saw (`seq`), re-subscribes with `since:` after every reconnect and whenever `prev` shows a
   * gap, drops what it already had (a replay overlapping live messages), and emits "recovered".
   *
   * options: reconnect (true), minDelay (500 ms), maxDelay (30000 ms), maxQueue (256 messages),
   *          recover (true: ask for what was missed), protocols, WebSocket (a constructor, for Node < 22 or tests),
   *          getToken (see the file's header), requestTimeout (10000 ms: presence() and refresh(); 0: none).
   * events:  "open", "message" (parsed message), "error" (an LHTTP error reply: {status, reason, message}; when
   *          taken as the answer to presence() or refresh() also {request: "presence" | "refresh", channel}),
   *          "close" ({code, reason, willReconnect}), "reconnecting" ({attempt, delay}), "dropped" (queue full),
   *          "parseerror" ({error, data}), "recovered" ({channel, recovered, missed, stream}: a `subscribed`
   *          answer; recovered false means messages were lost: reload the app's state), "refresh" ({grace}),
   *          "refreshed" ({exp}), "presence" (an answer's JSON body), "join" and "leave" ({channel, user, conn, info}).
   *
   * Server messages without a `publish:` header (what no client published) are the server's own: `refresh`,
   * `refreshed`, `presence` (with `channel:`), `join`/`leave` (with `channel:`) are events, not "message"s.
   * Error replies are not numbered: one is taken as the answer to the oldest pending request it fits (a
   * `channel:`, `presence:` or `channels:` header naming the presence channel; without one, 404 → presence,
   * 401 → refresh, 403 → either), in the order the requests were sent, which is the order the server answers.
   * The original SDK's style works too: client.onopen / onmessage / onclose / onerror properties, or
   * on_open / on_message / on_close / on_error.
   */
  function LHTTP(url, options) {
    if (!(this instanceof LHTTP)) return new LHTTP(url, options);
    options = options || {};
    this.url = url;
    this.options = {
      reconnect: options.reconnect !== false,
      minDelay: options.minDelay || 500,
      maxDelay: options.maxDelay || 30000,
      maxQueue: options.maxQueue === undefined ? 256 : options.maxQueue,
      recover: options.recover !== false,
      protocols: options.protocols,
      WebSocket: options.WebSocket || root.WebSocket,
      getToken: options.getToken,
      requestTimeout: options.requestTimeout === undefined ? 10000 : options.requestTimeout
    };
    this.channels = new Set();
    this.positions = new Map();   // channel → {epoch, offset}: the last position seen
    this.recovering = new Set();  // channels re-subscribed after a gap, until their `subscribed` answer
    this.queue = [];
    this.listeners = {};
    this.attempt = 0;
    this.closedByUser = false;
    this.socket = null;
    this.timer = null;
    this.pending = [];            // presence and refresh requests awaiting their answer, oldest first
    this.refreshing = null;       // the Promise of the refresh in flight
    this.connects = 0;            // connect() calls: the first one's token reason is "connect"
    this.expired = false;         // the last close was 4001: the next token's reason is "expired"
    this.connect();
  }

  LHTTP.prototype.on = function (event, listener) {
    (this.listeners[event] = this.listeners[event] || []).push(listener);
    return this;
  };
  LHTTP.prototype.off = function (event, listener) {
    var list = this.listeners[event] || [];
    var index = list.indexOf(listener);
    if (index !== -1) list.splice(index, 1);
    return this;
  };
  LHTTP.prototype.emit = function (event, value) {
    var list = (this.listeners[event] || []).slice();
    var prop = this["on" + event] || this["on_" + event];
    if (typeof prop === "function") list.push(prop);
    for (var i = 0; i < list.length; i++) {
      try { list[i].call(this, value); } catch (e) { setTimeout(function () { throw e; }); }
    }
  };

  /** Whether the socket is open. */
  Object.defineProperty(LHTTP.prototype, "connected", {
    get: function () { return !!this.socket && this.socket.readyState === 1; }
  });

  /** `url` with `token=` added to its query (none for an empty token). */
  function withToken(url, token) {
    if (token === undefined || token === null || token === "") return url;
    var separator = url.indexOf("?") === -1 ? "?" : /[?&]$/.test(url) ? "" : "&";
    return url + separator + "token=" + encodeURIComponent(String(token));
  }

  /** Calls getToken(context): `done(token)` at once for a plain value, after it settles for a Promise. */
  function callGetToken(getToken, context, done, failed) {
    var value;
    try {
      value = getToken(context);
    } catch (e) {
      failed(e);
      return;
    }
    if (value && typeof value.then === "function") value.then(done, failed);
    else done(value);
  }

  /** The "error" event of a getToken that threw or rejected. */
  LHTTP.prototype.tokenFailed = function (error) {
    this.emit("error", { status: 0, reason: "getToken failed: " + (error && error.message || String(error)), error: error });
  };

  /** Opens the socket; with getToken, once the token is there (a newer connect() or close() cancels it). */
  LHTTP.prototype.connect = function () {
    var self = this;
    this.connects += 1;
    var generation = this.connects;
    if (!this.options.getToken) return this.openSocket(this.url);
    var reason = this.expired ? "expired" : generation === 1 ? "connect" : "reconnect";
    this.expired = false;
    callGetToken(this.options.getToken, { reason: reason }, function (token) {
      if (generation === self.connects && !self.closedByUser) self.openSocket(withToken(self.url, token));
    }, function (error) {
      if (generation !== self.connects || self.closedByUser) return;
      self.tokenFailed(error);
      if (self.options.reconnect) self.scheduleReconnect();
    });
  };

  LHTTP.prototype.openSocket = function (url) {
    var self = this;
    var socket;
    try {
      socket = this.options.protocols ? new this.options.WebSocket(url, this.options.protocols) : new this.options.WebSocket(url);
    } catch (e) {
      this.scheduleReconnect();
      return;
    }
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.onopen = function () {
      self.attempt = 0;
      // Re-subscribe first, then what waited while disconnected, in order.
      self.recovering.clear();
      if (self.channels.size > 0) socket.send(self.subscribeMessage(Array.from(self.channels)));
      var waiting = self.queue;
      self.queue = [];
      for (var i = 0; i < waiting.length; i++) socket.send(waiting[i]);
      self.sendPending();
      self.emit("open");
    };
    socket.onmessage = function (event) {
      var message;
      try {
        message = parse(typeof event.data === "string" ? event.data : new Uint8Array(event.data));
      } catch (e) {
        self.emit("parseerror", { error: e, data: event.data });
        return;
      }
      if (message.command === "subscribed" && message.headers.has("channel")) {
        self.subscribed(message);
      } else if (self.control(message)) {
        return;  // the server's own: refresh, refreshed, presence, join, leave
      } else if (!self.track(message)) {
        return;  // already seen (a replay overlapping live messages), or after a gap (it comes again)
      } else if (message.command === "error") {
        self.errorReply(message);
      } else {
        self.emit("message", message);
      }
    };
    socket.onclose = function (event) {
      if (self.socket !== socket) return;
      self.socket = null;
      if (event.code === 4001) self.expired = true;
      self.dropPending();
      var willReconnect = self.options.reconnect && !self.closedByUser;
      self.emit("close", { code: event.code, reason: event.reason, willReconnect: willReconnect });
      if (willReconnect) self.scheduleReconnect();
    };
    socket.onerror = function () {};
  };

  /** `subscribe:` for `list`, with `since:` (the last position per channel, `-` for none) when recovering. */
  LHTTP.prototype.subscribeMessage = function (list, command) {
    var headers = [["subscribe", list.join(" ")]];
    if (this.options.recover) {
      var positions = this.positions;
      headers.push(["since", list.map(function (c) {
        var p = positions.get(c);
        return p ? p.epoch + ":" + p.offset : "-";
      }).join(" ")]);
    }
    return serialize(command || "subscribe", headers);
  };

  /** The last position seen on `channel` ("epoch:offset"), or undefined. */
  LHTTP.prototype.position = function (channel) {
    var p = this.positions.get(channel);
    return p ? p.epoch + ":" + p.offset : undefined;
  };

  function parsePosition(text) {
    var colon = text ? text.lastIndexOf(":") : -1;
    if (colon <= 0 || !/^[0-9]+$/.test(text.slice(colon + 1))) return null;
    return { epoch: text.slice(0, colon), offset: Number(text.slice(colon + 1)) };
  }

  /**
   * Keeps the positions of a delivery (`seq`/`prev`, one per channel of its `publish:` list). Returns false
   * when the message is not to be shown: every channel of ours had it already, or a channel shows a gap
   * (it is then re-subscribed from the last position and the message comes again, in order).
   */
  LHTTP.prototype.track = function (message) {
    var seq = message.headers.get("seq");
    if (!seq || !this.options.recover) return true;
    var channels = channelList(message.headers.get("publish") || "");
    var seqs = seq.split(" ");
    var prevs = (message.headers.get("prev") || "").split(" ");
    var ours = 0, fresh = 0, gaps = [];
    for (var i = 0; i < channels.length && i < seqs.length; i++) {
      var channel = channels[i];
      var position = parsePosition(seqs[i]);
      if (!position || !this.channels.has(channel)) continue;
      ours += 1;
      var known = this.positions.get(channel);
      if (known && known.epoch === position.epoch && position.offset <= known.offset) continue;
      if (known && known.epoch === position.epoch && Number(prevs[i]) !== known.offset && /^[0-9]+$/.test(prevs[i] || "")) {
        gaps.push(channel);
        continue;
      }
      this.positions.set(channel, position);
      fresh += 1;
    }
    if (gaps.length > 0) this.recoverGaps(gaps);
    return ours === 0 || fresh > 0;
  };

  /** Re-subscribes `channels` from their last positions (a gap seen in `prev`), once per gap. */
  LHTTP.prototype.recoverGaps = function (channels) {
    var fresh = channels.filter(function (c) { return !this.recovering.has(c); }, this);
    if (fresh.length === 0 || !this.connected) return;
    fresh.forEach(function (c) { this.recovering.add(c); }, this);
    this.socket.send(serialize("unsubscribe", [["unsubscribe", fresh.join(" ")]]));
    this.socket.send(this.subscribeMessage(fresh));
  };

  /** A `subscribed` answer: the channel's position now, and the "recovered" event. */
  LHTTP.prototype.subscribed = function (message) {
    var channel = message.headers.get("channel");
    this.recovering.delete(channel);
    var stream = parsePosition(message.headers.get("stream"));
    if (!stream) return;  // the channel keeps no history
    this.positions.set(channel, stream);
    this.emit("recovered", {
      channel: channel,
      recovered: message.headers.get("recovered") === "true",
      missed: parseInt(message.headers.get("missed"), 10) || 0,
      stream: stream.epoch + ":" + stream.offset
    });
  };

  /** Exponential backoff from minDelay to maxDelay; each delay drawn from its upper half (jitter). */
  LHTTP.prototype.scheduleReconnect = function () {
    if (this.closedByUser || this.timer) return;
    var ceiling = Math.min(this.options.maxDelay, this.options.minDelay * Math.pow(2, Math.min(this.attempt, 20)));
    var delay = ceiling / 2 + Math.random() * ceiling / 2;
    this.attempt += 1;
    var self = this;
    this.emit("reconnecting", { attempt: this.attempt, delay: Math.round(delay) });
    this.timer = setTimeout(function () {
      self.timer = null;
      self.connect();
    }, delay);
  };

  /** Sends a raw LHTTP message (string or bytes); queued (bounded) while disconnected. Returns false if dropped. */
  LHTTP.prototype.sendRaw = function (data) {
    if (this.connected) {
      this.socket.send(data);
      return true;
    }
    if (this.queue.length >= this.options.maxQueue) {
      this.emit("dropped", data);
      return false;
    }
    this.queue.push(data);
    return true;
  };

  /** Sends `LHTTP/1.0 command` with headers ({key: value} or [[key, value]]) and an optional body. */
  LHTTP.prototype.send = function (command, headers, body) {
    return this.sendRaw(serialize(command, headers || {}, body));
  };

  /** Joins channels (a list or a space-separated string); remembered across reconnects. */
  LHTTP.prototype.subscribe = function (channels, options) {
    var list = channelList(channels);
    if (list.length === 0) return true;
    list.forEach(function (c) { this.channels.add(c); }, this);
    // While disconnected, the reconnect's re-subscribe covers it: nothing to queue.
    if (!this.connected) return true;
    return this.sendRaw(this.subscribeMessage(list, options && options.command));
  };

  /** Leaves channels. */
  LHTTP.prototype.unsubscribe = function (channels) {
    var list = channelList(channels);
    if (list.length === 0) return true;
    list.forEach(function (c) {
      this.channels.delete(c);
      this.positions.delete(c);
    }, this);
    if (!this.connected) return true;
    return this.send("unsubscribe", [["unsubscribe", list.join(" ")]]);
  };

  /** Publishes `body` to channels: options.command (default "publish"), options.headers (extra headers). */
  LHTTP.prototype.publish = function (channels, body, options) {
    options = options || {};
    var headers = [["publish", channelList(channels).join(" ")]];
    var extra = options.headers || {};
    var list = Array.isArray(extra) ? extra : Object.entries(extra);
    return this.send(options.command || "publish", headers.concat(list), body);
  };

  /** Closes for good (no reconnect). */
  LHTTP.prototype.close = function (code, reason) {
    this.closedByUser = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.socket) this.socket.close(code || 1000, reason || "");
    this.pending.slice().forEach(function (request) { this.settle(request, new Error("closed")); }, this);
  };

  /**
   * The server's own messages (no `publish:` header: nobody published them). Returns true when handled:
   * `refresh`, `refreshed`, `presence` and `join`/`leave` with `channel:`.
   */
  LHTTP.prototype.control = function (message) {
    var headers = message.headers;
    if (headers.has("publish")) return false;
    switch (message.command) {
      case "refresh":
        var grace = parseInt(headers.get("grace"), 10);
        this.emit("refresh", { grace: isNaN(grace) ? null : grace });
        if (this.options.getToken) this.refresh();  // its failures are "error" events; the promise is handled
        return true;
      case "refreshed":
        var expHeader = headers.get("exp");
        var answer = { exp: expHeader === undefined ? null : Number(expHeader) };  // null: the new token does not expire
        var request = this.oldestPending(function (r) { return r.kind === "refresh"; });
        if (request) this.settle(request, null, answer);
        this.emit("refreshed", answer);
        return true;
      case "presence":
        if (!headers.has("channel")) return false;
        this.presenceAnswer(message);
        return true;
      case "join":
      case "leave":
        if (!headers.has("channel")) return false;
        this.emit(message.command, {
          channel: headers.get("channel"),
          user: headers.get("user") || "",
          conn: headers.get("conn") || "",
          info: parseJSON(message.body)
        });
        return true;
      default:
        return false;
    }
  };

  /** The JSON of `text`, or null when empty or invalid. */
  function parseJSON(text) {
    if (!text || !/\S/.test(text)) return null;
    try {
      return JSON.parse(text);
    } catch (e) {
      return null;
    }
  }

  /** A `presence` answer: the oldest pending presence() of its channel resolves with the body. */
  LHTTP.prototype.presenceAnswer = function (message) {
    var channel = message.headers.get("channel");
    var body = parseJSON(message.body);
    var request = this.oldestPending(function (r) { return r.kind === "presence" && r.channel === channel; });
    if (request) {
      if (body && typeof body === "object") this.settle(request, null, body);
      else this.settle(request, requestError("presence " + channel + ": the answer's body is not JSON", 0, ""));
    }
    if (body && typeof body === "object") this.emit("presence", body);
  };

  /** An error reply: the "error" event, and the answer to the pending request it fits (if any). */
  LHTTP.prototype.errorReply = function (message) {
    var status = parseInt(message.headers.get("status"), 10);
    var reason = message.headers.get("reason");
    var event = { status: status, reason: reason, message: message };
    var request = this.requestOfError(status, message.headers);
    if (request) {
      event.request = request.kind;
      if (request.channel !== null) event.channel = request.channel;
      var what = request.kind + (request.channel !== null ? " " + request.channel : "");
      this.settle(request, requestError(what + ": " + status + " " + (reason || ""), status, reason));
    }
    this.emit("error", event);
  };

  /**
   * The pending request an error reply answers, or null. Error replies carry no request id: a header naming
   * the channel (`channel`, `presence`, or the `channels` list of a permission refusal) picks that channel's
   * oldest presence(); a reply that names other channels, or comes from an upstream call, answers none of
   * ours; an unnamed 404 is a presence(), 401 a refresh, 403 either: the oldest sent.
   */
  LHTTP.prototype.requestOfError = function (status, headers) {
    if (headers.has("upstream-url")) return null;
    var named = headers.get("channel") || headers.get("presence");
    var channels = named !== undefined ? [named] : channelList(headers.get("channels") || "");
    if (channels.length > 0) {
      return this.oldestPending(function (r) { return r.kind === "presence" && channels.indexOf(r.channel) !== -1; });
    }
    if (status === 404) return this.oldestPending(function (r) { return r.kind === "presence"; });
    if (status === 401) return this.oldestPending(function (r) { return r.kind === "refresh"; });
    if (status === 403) return this.oldestPending(function () { return true; });
    return null;
  };

  function requestError(text, status, reason) {
    var error = new Error(text);
    error.status = status;
    error.reason = reason;
    return error;
  }

  /** The oldest request sent on this connection for which `fits` holds. */
  LHTTP.prototype.oldestPending = function (fits) {
    for (var i = 0; i < this.pending.length; i++) if (this.pending[i].sent && fits(this.pending[i])) return this.pending[i];
    return null;
  };

  /** Adds a request awaiting its answer (sent now when connected), with its timeout. */
  LHTTP.prototype.request = function (kind, channel, data, timeout, resolve, reject) {
    var self = this;
    var request = { kind: kind, channel: channel, data: data, resolve: resolve, reject: reject, sent: false, timer: null };
    var ms = timeout === undefined ? this.options.requestTimeout : timeout;
    if (ms > 0) {
      request.timer = setTimeout(function () {
        self.settle(request, requestError(kind + (channel !== null ? " " + channel : "") + ": no answer within " + ms + " ms", 0, "timeout"));
      }, ms);
    }
    this.pending.push(request);
    if (this.connected) {
      this.socket.send(data);
      request.sent = true;
    }
  };

  /** Ends a pending request: rejected with `error`, or resolved with `value`. */
  LHTTP.prototype.settle = function (request, error, value) {
    var index = this.pending.indexOf(request);
    if (index === -1) return;
    this.pending.splice(index, 1);
    if (request.timer) clearTimeout(request.timer);
    if (error) request.reject(error);
    else request.resolve(value);
  };

  /** After the (re)connect: the presence requests not (or no longer) answered go out, in order. */
  LHTTP.prototype.sendPending = function () {
    for (var i = 0; i < this.pending.length; i++) {
      if (!this.pending[i].sent && this.connected) {
        this.socket.send(this.pending[i].data);
        this.pending[i].sent = true;
      }
    }
  };

  /** The connection is gone: a refresh was for it (rejected), a presence() is asked again after the reconnect. */
  LHTTP.prototype.dropPending = function () {
    this.pending.slice().forEach(function (request) {
      if (request.kind === "refresh") this.settle(request, requestError("refresh: the connection closed", 0, "closed"));
      else request.sent = false;
    }, this);
  };

  /**
   * Who is on `channel`: a Promise of the server's JSON ({channel, clients, users, members}). options.timeout
   * overrides requestTimeout (ms; 0: none).
   */
  LHTTP.prototype.presence = function (channel, options) {
    var self = this;
    return new Promise(function (resolve, reject) {
      var data;
      try {
        if (typeof channel !== "string" || channel === "" || /[ \t]/.test(channel)) throw new TypeError("presence: one channel name");
        data = serialize("presence", [["presence", channel]]);
      } catch (e) {
        reject(e);
        return;
      }
      self.request("presence", channel, data, options && options.timeout, resolve, reject);
    });
  };

  /**
   * Sends a new token on the open connection (`token`, or getToken's): a Promise of {exp} from `refreshed`.
   * One at a time: while one is in flight, that one's Promise is returned. A failure is also an "error" event.
   */
  LHTTP.prototype.refresh = function (token) {
    if (this.refreshing) return this.refreshing;
    var self = this;
    var finished = false;
    var promise = new Promise(function (resolveRefresh, rejectRefresh) {
      // Cleared as it settles (not a tick later), so a refresh right after `refreshed` is a new one.
      var end = function () {
        finished = true;
        if (self.refreshing === promise) self.refreshing = null;
      };
      var resolve = function (value) { end(); resolveRefresh(value); };
      var reject = function (error) { end(); rejectRefresh(error); };
      if (!self.connected) {
        reject(requestError("refresh: not connected", 0, "not connected"));
        return;
      }
      var socket = self.socket;
      var send = function (jwt) {
        if (self.socket !== socket || !self.connected) {
          reject(requestError("refresh: the connection closed", 0, "closed"));
          return;
        }
        var data;
        try {
          if (typeof jwt !== "string" || jwt === "") throw new TypeError("refresh: the token is not a string");
          data = serialize("refresh", [["token", jwt]]);
        } catch (e) {
          self.tokenFailed(e);
          reject(e);
          return;
        }
        self.request("refresh", null, data, undefined, resolve, reject);
      };
      if (token !== undefined) send(token);
      else if (!self.options.getToken) reject(new TypeError("refresh: pass a token or the getToken option"));
      else callGetToken(self.options.getToken, { reason: "refresh" }, send, function (error) {
        self.tokenFailed(error);
        reject(error);
      });
    });
    if (!finished) this.refreshing = promise;
    // Handled here, so an automatic refresh (the server asked) that fails is an "error" event only.
    promise.catch(function () {});
    return promise;
  };

  LHTTP.parse = parse;
  LHTTP.serialize = serialize;
  LHTTP.Headers = Headers;
  LHTTP.ParseError = ParseError;
  LHTTP.VERSION = VERSION;

  if (typeof module === "object" && module.exports) module.exports = LHTTP;
  root.LHTTP = LHTTP;
})(typeof globalThis !== "undefined" ? globalThis : this);
