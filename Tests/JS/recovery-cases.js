// History cases for public/lhttp.js (docs/protocol.md 6.1), against a scripted socket: the positions it
// keeps, `since:` on (re)subscribe, duplicates dropped, a gap re-subscribed, the "recovered" event.
// The same client against a real lhttpd in a real browser: Tests/Browser/chat_test.py.
(function (root) {
  function runRecoveryCases(LHTTP) {
    const results = [];
    const check = (name, ok, detail) => results.push({ name: "recovery: " + name, ok: !!ok, detail: ok ? "" : String(detail) });
    const sockets = [];
    function FakeSocket(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      sockets.push(this);
    }
    FakeSocket.prototype.send = function (data) { this.sent.push(typeof data === "string" ? data : new TextDecoder().decode(data)); };
    FakeSocket.prototype.close = function () { this.readyState = 3; if (this.onclose) this.onclose({ code: 1000, reason: "" }); };
    FakeSocket.prototype.open = function () { this.readyState = 1; this.onopen(); };
    FakeSocket.prototype.receive = function (text) { this.onmessage({ data: text }); };
    const delivery = (channel, seq, prev, body) => "LHTTP/1.0 chat\r\npublish:" + channel + "\r\nseq:" + seq + "\r\nprev:" + prev + "\r\n\r\n" + body;
    const subscribed = (channel, stream, recovered, missed) =>
      "LHTTP/1.0 subscribed\r\nchannel:" + channel + "\r\nstream:" + stream + "\r\nrecovered:" + recovered + "\r\nmissed:" + missed + "\r\n\r\n";
    const since = (text) => { const m = /\r\nsince:([^\r]*)\r\n/.exec(text); return m ? m[1] : null; };

    try {
      const client = new LHTTP("ws://test/ws", { WebSocket: FakeSocket, minDelay: 1, maxDelay: 1 });
      const shown = [], recovered = [];
      client.on("message", (m) => shown.push(m.body));
      client.on("recovered", (r) => recovered.push(r));
      client.subscribe("chat-a");
      const first = sockets[0];
      first.open();
      check("the first subscribe asks for its position with since:-", since(first.sent[0]) === "-", first.sent[0]);
      first.receive(subscribed("chat-a", "e1:3", "true", "0"));
      check("the subscribed answer sets the position and emits recovered", client.position("chat-a") === "e1:3" && recovered.length === 1 && recovered[0].recovered === true && recovered[0].missed === 0, JSON.stringify(recovered));
      first.receive(delivery("chat-a", "e1:4", "3", "four"));
      first.receive(delivery("chat-a", "e1:4", "3", "four again"));
      check("a delivery moves the position; one already seen is dropped", client.position("chat-a") === "e1:4" && shown.join(",") === "four", shown.join(","));
      first.receive(delivery("chat-a", "e1:6", "5", "six"));
      const gapSent = first.sent.slice(1);
      check("a gap in prev re-subscribes from the last position", gapSent.length === 2 && /unsubscribe:chat-a/.test(gapSent[0]) && since(gapSent[1]) === "e1:4", JSON.stringify(gapSent));
      check("the message after the gap waits for the replay", shown.join(",") === "four" && client.position("chat-a") === "e1:4", shown.join(","));
      first.receive(delivery("chat-a", "e1:6", "5", "six (live, again)"));
      check("a gap is recovered once", first.sent.length === 3, first.sent.length);
      first.receive(delivery("chat-a", "e1:5", "4", "five"));
      first.receive(delivery("chat-a", "e1:6", "5", "six"));
      first.receive(subscribed("chat-a", "e1:6", "true", "2"));
      check("the replay fills the gap in order", shown.join(",") === "four,five,six" && client.position("chat-a") === "e1:6", shown.join(","));
      first.close();
      const second = sockets[sockets.length - 1];
      return new Promise((resolve) => setTimeout(() => {
        const again = sockets[sockets.length - 1];
        check("a reconnect happened", again !== first, sockets.length);
        again.open();
        check("a reconnect re-subscribes from the last position", since(again.sent[0]) === "e1:6", again.sent[0]);
        again.receive(subscribed("chat-a", "e2:1", "false", "1"));
        check("recovered:false reaches the app", recovered.length === 3 && recovered[2].recovered === false && client.position("chat-a") === "e2:1", JSON.stringify(recovered));
        const plain = new LHTTP("ws://test/ws", { WebSocket: FakeSocket, recover: false });
        plain.subscribe("chat-b");
        sockets[sockets.length - 1].open();
        check("recover:false sends no since", since(sockets[sockets.length - 1].sent[0]) === null, sockets[sockets.length - 1].sent[0]);
        client.close();
        plain.close();
        resolve(results);
      }, 20));
    } catch (e) {
      check("no exception", false, e && e.stack);
      return Promise.resolve(results);
    }
  }
  if (typeof module === "object" && module.exports) module.exports = runRecoveryCases;
  root.runRecoveryCases = runRecoveryCases;
})(typeof globalThis !== "undefined" ? globalThis : this);
