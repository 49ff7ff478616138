// Token, refresh, presence and join/leave cases for public/lhttp.js (the issue 16 protocol), against a scripted
// socket: the token in the URL on every (re)connect, the refresh exchange, presence() answers and error replies,
// the join/leave events. runTokenCases(LHTTP) resolves to [{name, ok, detail}].
(function (root) {
  function runTokenCases(LHTTP) {
    const results = [];
    const check = (name, ok, detail) => results.push({ name: name, ok: !!ok, detail: ok ? "" : String(detail) });
    const sockets = [];
    function FakeSocket(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      sockets.push(this);
    }
    FakeSocket.prototype.send = function (data) { this.sent.push(typeof data === "string" ? data : new TextDecoder().decode(data)); };
    FakeSocket.prototype.close = function (code) { this.drop(code || 1000); };
    FakeSocket.prototype.drop = function (code) { this.readyState = 3; if (this.onclose) this.onclose({ code: code, reason: "" }); };
    FakeSocket.prototype.open = function () { this.readyState = 1; this.onopen(); };
    FakeSocket.prototype.receive = function (text) { this.onmessage({ data: text }); };
    const last = () => sockets[sockets.length - 1];
    const tick = (ms) => new Promise((resolve) => setTimeout(resolve, ms || 0));
    const settled = (promise) => promise.then((value) => ({ value }), (error) => ({ error }));
    const options = (extra) => Object.assign({ WebSocket: FakeSocket, minDelay: 1, maxDelay: 1 }, extra);
    const presenceAnswer = (channel, body) =>
      "LHTTP/1.0 presence\r\nchannel:" + channel + "\r\nclients:" + body.clients + "\r\nusers:" + body.users + "\r\n\r\n" + JSON.stringify(body);
    const clients = [];
    const client = (extra) => { const c = new LHTTP("ws://test/ws", options(extra)); clients.push(c); return c; };

    async function run() {
      // The token goes into the URL, before every connect.
      {
        const reasons = [];
        let n = 0;
        const c = new LHTTP("ws://test/ws?room=1", options({ getToken: (ctx) => { reasons.push(ctx.reason); n += 1; return Promise.resolve("tok " + n + "/+"); } }));
        clients.push(c);
        check("token: no socket before getToken resolves", sockets.filter((s) => /room=1/.test(s.url)).length === 0, sockets.length);
        await tick();
        const first = last();
        check("token: added to an existing query with &, urlencoded", first.url === "ws://test/ws?room=1&token=tok%201%2F%2B", first.url);
        first.open();
        first.drop(1001);
        await tick(20);
        const second = last();
        check("token: a reconnect asks getToken again", second !== first && second.url === "ws://test/ws?room=1&token=tok%202%2F%2B", second.url);
        second.open();
        second.drop(4001);
        await tick(20);
        const third = last();
        check("token: after close 4001 (expired) a fresh token", third !== second && third.url === "ws://test/ws?room=1&token=tok%203%2F%2B", third.url);
        check("token: getToken hears why", JSON.stringify(reasons) === JSON.stringify(["connect", "reconnect", "expired"]), JSON.stringify(reasons));
        c.close();
      }
      {
        const c = client({ getToken: () => "plain" });
        check("token: a plain string opens at once, ?token= without a query", last().url === "ws://test/ws?token=plain", last().url);
        c.close();
        const anonymous = client({ getToken: () => "" });
        check("token: an empty token connects without one", last().url === "ws://test/ws", last().url);
        anonymous.close();
        const none = client();
        check("token: no getToken, the URL as given", last().url === "ws://test/ws", last().url);
        none.close();
      }
      {
        const errors = [];
        let calls = 0;
        const before = sockets.length;
        const c = client({ getToken: () => { calls += 1; return calls < 3 ? Promise.reject(new Error("auth down")) : "third"; } });
        c.on("error", (e) => errors.push(e));
        await tick(40);
        check("token: a rejected getToken is an error event", errors.length === 2 && errors[0].status === 0 && /auth down/.test(errors[0].reason), JSON.stringify(errors));
        check("token: then retried with backoff until it works", calls === 3 && sockets.length === before + 1 && last().url === "ws://test/ws?token=third", calls + " " + last().url);
        c.close();
      }
      {
        // Recovery keeps working with tokens: since: after the reconnect, on the new token's socket.
        let n = 0;
        const c = client({ getToken: () => "t" + (++n) });
        c.subscribe("chat-a");
        const first = last();
        first.open();
        first.receive("LHTTP/1.0 subscribed\r\nchannel:chat-a\r\nstream:e1:3\r\nrecovered:true\r\nmissed:0\r\n\r\n");
        first.drop(4001);
        await tick(20);
        last().open();
        check("token: the reconnect with a fresh token still subscribes with since:", last().url === "ws://test/ws?token=t2" && /since:e1:3\r\n/.test(last().sent[0]), last().url + " " + JSON.stringify(last().sent));
        c.close();
      }

      // Refresh: the server asks, the client answers with getToken's token.
      {
        const events = [], messages = [];
        let n = 0;
        const c = client({ getToken: (ctx) => Promise.resolve(ctx.reason + "-" + (++n)) });
        c.on("refresh", (r) => events.push(["refresh", r]));
        c.on("refreshed", (r) => events.push(["refreshed", r]));
        c.on("message", (m) => messages.push(m.command));
        await tick();
        const s = last();
        s.open();
        s.receive("LHTTP/1.0 refresh\r\ngrace:25\r\n\r\n");
        await tick();
        check("refresh: the server's refresh is an event", events.length === 1 && events[0][1].grace === 25, JSON.stringify(events));
        check("refresh: the client answers with getToken's token", s.sent[s.sent.length - 1] === "LHTTP/1.0 refresh\r\ntoken:refresh-2\r\n\r\n", JSON.stringify(s.sent));
        s.receive("LHTTP/1.0 refreshed\r\nexp:1767225600\r\n\r\n");
        check("refresh: refreshed is an event with exp", events.length === 2 && events[1][0] === "refreshed" && events[1][1].exp === 1767225600, JSON.stringify(events));
        check("refresh: neither is a message", messages.length === 0, JSON.stringify(messages));

        const onDemand = c.refresh();
        check("refresh: refresh() twice at once is one request", c.refresh() === onDemand, "two promises");
        await tick();
        check("refresh: refresh() sends getToken's token", s.sent[s.sent.length - 1] === "LHTTP/1.0 refresh\r\ntoken:refresh-3\r\n\r\n", JSON.stringify(s.sent));
        s.receive("LHTTP/1.0 refreshed\r\nexp:1767229200\r\n\r\n");
        const done = await settled(onDemand);
        check("refresh: refresh() resolves with exp", done.value && done.value.exp === 1767229200, JSON.stringify(done));

        const errors = [];
        c.on("error", (e) => errors.push(e));
        const refused = settled(c.refresh("given.token"));
        check("refresh: refresh(token) sends that token", s.sent[s.sent.length - 1] === "LHTTP/1.0 refresh\r\ntoken:given.token\r\n\r\n", JSON.stringify(s.sent));
        s.receive("LHTTP/1.0 error\r\nstatus:401\r\nreason:token expired\r\n\r\n");
        const outcome = await refused;
        check("refresh: an error reply 401 rejects it", outcome.error && outcome.error.status === 401, JSON.stringify(outcome));
        check("refresh: and is an error event naming the request", errors.length === 1 && errors[0].status === 401 && errors[0].request === "refresh", JSON.stringify(errors));
        const closed = settled(c.refresh("x"));
        s.drop(1006);
        const lost = await closed;
        check("refresh: a disconnect rejects a pending refresh", lost.error && lost.error.reason === "closed", JSON.stringify(lost));
        const offline = await settled(c.refresh("y"));
        check("refresh: refresh() while disconnected rejects", offline.error && offline.error.reason === "not connected", JSON.stringify(offline));
        c.close();
      }
      {
        // The server asks but getToken fails: an error event, nothing sent, nothing thrown.
        let calls = 0;
        const errors = [];
        const c = client({ getToken: () => (++calls === 1 ? "first" : Promise.reject(new Error("no more tokens"))) });
        c.on("error", (e) => errors.push(e));
        const s = last();
        s.open();
        s.receive("LHTTP/1.0 refresh\r\ngrace:5\r\n\r\n");
        await tick();
        check("refresh: a failing getToken is an error event, nothing sent", errors.length === 1 && errors[0].status === 0 && s.sent.length === 0, JSON.stringify(errors) + JSON.stringify(s.sent));
        c.close();
      }
      {
        // A published message that happens to be called refresh is an ordinary message.
        const messages = [];
        const c = client({ getToken: () => "t" });
        c.on("message", (m) => messages.push(m.command));
        last().open();
        last().receive("LHTTP/1.0 refresh\r\npublish:room\r\n\r\nfrom an app");
        last().receive("LHTTP/1.0 presence\r\npublish:room\r\nfrom:ann\r\nstate:here\r\n\r\n");
        last().receive("LHTTP/1.0 join\r\npublish:room\r\nchannel:room\r\n\r\n");
        check("refresh: published refresh/presence/join stay messages", messages.join(",") === "refresh,presence,join" && last().sent.length === 0, messages.join(",") + " " + JSON.stringify(last().sent));
        c.close();
      }

      // presence(): the answer whose channel matches, error replies in order, the timeout, reconnects.
      {
        const c = client();
        const s = last();
        s.open();
        const a = settled(c.presence("room-a"));
        const b = settled(c.presence("room-b"));
        check("presence: sends presence:<channel>", s.sent[0] === "LHTTP/1.0 presence\r\npresence:room-a\r\n\r\n" && s.sent[1] === "LHTTP/1.0 presence\r\npresence:room-b\r\n\r\n", JSON.stringify(s.sent));
        const bodyB = { channel: "room-b", clients: 2, users: 1, members: [{ conn: "c1", user: "bob", info: { name: "Bob" } }, { conn: "c2", user: "bob", info: null }] };
        const bodyA = { channel: "room-a", clients: 1, users: 0, members: [{ conn: "c3", user: "", info: null }] };
        const events = [], messages = [];
        c.on("presence", (p) => events.push(p.channel));
        c.on("message", (m) => messages.push(m.command));
        s.receive(presenceAnswer("room-b", bodyB));
        s.receive(presenceAnswer("room-a", bodyA));
        const [ra, rb] = [await a, await b];
        check("presence: each resolves with its channel's JSON", JSON.stringify(ra.value) === JSON.stringify(bodyA) && JSON.stringify(rb.value) === JSON.stringify(bodyB), JSON.stringify([ra, rb]));
        check("presence: answers are presence events, not messages", events.join(",") === "room-b,room-a" && messages.length === 0, events.join(",") + " " + messages.join(","));

        const errors = [];
        c.on("error", (e) => errors.push(e));
        const first = settled(c.presence("x"));
        const second = settled(c.presence("y"));
        s.receive("LHTTP/1.0 error\r\nstatus:404\r\nreason:no presence on this channel\r\n\r\n");
        const r1 = await first;
        check("presence: an unnamed 404 rejects the oldest pending", r1.error && r1.error.status === 404 && errors.length === 1 && errors[0].request === "presence" && errors[0].channel === "x", JSON.stringify([r1, errors]));
        s.receive("LHTTP/1.0 error\r\nstatus:403\r\nchannels:elsewhere\r\nreason:not allowed\r\n\r\n");
        s.receive("LHTTP/1.0 error\r\nstatus:429\r\nreason:rate limit exceeded\r\n\r\n");
        check("presence: an error naming other channels, or another status, rejects nothing", c.pending.length === 1 && errors.length === 3 && errors[1].request === undefined, JSON.stringify(errors.map((e) => [e.status, e.request])));
        const third = settled(c.presence("z"));
        s.receive("LHTTP/1.0 error\r\nstatus:403\r\nchannels:z\r\nreason:not allowed\r\n\r\n");
        const r3 = await third;
        check("presence: a 403 naming the channel rejects that one, not the older", r3.error && r3.error.status === 403 && c.pending.length === 1 && c.pending[0].channel === "y", JSON.stringify([r3, c.pending.map((p) => p.channel)]));
        s.receive("LHTTP/1.0 error\r\nstatus:403\r\nreason:not allowed\r\n\r\n");
        const r2 = await second;
        check("presence: an unnamed 403 rejects the oldest pending", r2.error && r2.error.status === 403, JSON.stringify(r2));

        const fifo1 = settled(c.presence("same"));
        const fifo2 = settled(c.presence("same"));
        s.receive(presenceAnswer("same", { channel: "same", clients: 1, users: 1, members: [] }));
        s.receive(presenceAnswer("same", { channel: "same", clients: 2, users: 2, members: [] }));
        const [f1, f2] = [await fifo1, await fifo2];
        check("presence: one channel's answers in order", f1.value.clients === 1 && f2.value.clients === 2, JSON.stringify([f1, f2]));

        const late = settled(c.presence("slow", { timeout: 10 }));
        await tick(30);
        const rt = await late;
        check("presence: no answer within the timeout rejects", rt.error && rt.error.reason === "timeout" && c.pending.length === 0, JSON.stringify(rt));
        const bad = await settled(c.presence("two words"));
        check("presence: one channel name only", bad.error instanceof TypeError, JSON.stringify(bad));

        // Asked while disconnected, or the connection dropped before the answer: asked again after the reconnect.
        const dropped = settled(c.presence("room-a"));
        s.drop(1006);
        const queued = settled(c.presence("room-b"));
        await tick(20);
        const again = last();
        check("presence: a reconnect happened", again !== s, sockets.length);
        c.subscribe("room-a");
        again.open();
        check("presence: re-sent after the reconnect, after the re-subscribe", again.sent.length === 3 && /^LHTTP\/1.0 subscribe\r\n/.test(again.sent[0]) &&
          again.sent[1] === "LHTTP/1.0 presence\r\npresence:room-a\r\n\r\n" && again.sent[2] === "LHTTP/1.0 presence\r\npresence:room-b\r\n\r\n", JSON.stringify(again.sent));
        again.receive(presenceAnswer("room-a", bodyA));
        again.receive(presenceAnswer("room-b", bodyB));
        const [d, q] = [await dropped, await queued];
        check("presence: and answered there", d.value && d.value.channel === "room-a" && q.value && q.value.channel === "room-b", JSON.stringify([d, q]));
        const pending = settled(c.presence("room-a"));
        c.close();
        const pc = await pending;
        check("presence: close() rejects what is pending", pc.error && pc.error.message === "closed", JSON.stringify(pc));
      }

      // join / leave.
      {
        const c = client();
        const s = last();
        s.open();
        const seen = [], messages = [];
        c.on("join", (j) => seen.push(["join", j]));
        c.on("leave", (l) => seen.push(["leave", l]));
        c.on("message", (m) => messages.push(m.command));
        s.receive('LHTTP/1.0 join\r\nchannel:room\r\nuser:alice\r\nconn:k7\r\n\r\n{"name":"Alice","color":"red"}');
        s.receive("LHTTP/1.0 leave\r\nchannel:room\r\nuser:alice\r\nconn:k7\r\n\r\n");
        s.receive("LHTTP/1.0 join\r\nchannel:room\r\nuser:bob\r\nconn:k8\r\n\r\nnot json");
        check("join: parsed with its info", JSON.stringify(seen[0]) === JSON.stringify(["join", { channel: "room", user: "alice", conn: "k7", info: { name: "Alice", color: "red" } }]), JSON.stringify(seen[0]));
        check("leave: an empty body is info null", JSON.stringify(seen[1]) === JSON.stringify(["leave", { channel: "room", user: "alice", conn: "k7", info: null }]), JSON.stringify(seen[1]));
        check("join: an invalid body is info null", seen.length === 3 && seen[2][1].user === "bob" && seen[2][1].info === null, JSON.stringify(seen[2]));
        check("join: not messages", messages.length === 0, messages.join(","));
        c.close();
      }
      return results;
    }

    return run().catch((e) => {
      check("token: no exception", false, e && e.stack);
      return results;
    }).finally(() => clients.forEach((c) => c.close()));
  }
  if (typeof module === "object" && module.exports) module.exports = runTokenCases;
  root.runTokenCases = runTokenCases;
})(typeof globalThis !== "undefined" ? globalThis : this);
