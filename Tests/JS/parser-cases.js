// Parser cases for public/lhttp.js, from docs/protocol.md. Shared by the Node runner (lhttp.test.js) and
// the browser page (Tests/Browser/parser.html): runParserCases(LHTTP) returns [{name, ok, detail}].
(function (root) {
  "use strict";
  function bytes(text) { return new TextEncoder().encode(text); }

  function runParserCases(LHTTP) {
    var results = [];
    function check(name, fn) {
      try {
        var detail = fn();
        results.push({ name: name, ok: detail === true, detail: detail === true ? "" : String(detail) });
      } catch (e) {
        results.push({ name: name, ok: false, detail: "threw " + e });
      }
    }
    function eq(a, b) { return JSON.stringify(a) === JSON.stringify(b) ? true : "got " + JSON.stringify(a) + ", want " + JSON.stringify(b); }
    function throws(input) {
      try { LHTTP.parse(input); } catch (e) { return e instanceof LHTTP.ParseError ? true : "wrong error " + e; }
      return "accepted " + JSON.stringify(input);
    }

    check("start line, headers, body", function () {
      var m = LHTTP.parse("LHTTP/1.0 chat\r\nsubscribe:room\r\npublish:a b\r\n\r\nhello");
      return eq([m.command, m.headers.get("subscribe"), m.headers.get("PUBLISH"), m.body], ["chat", "room", "a b", "hello"]);
    });
    check("values keep every colon after the first", function () {
      var m = LHTTP.parse("LHTTP/1.0 up\r\nupstream:POST http://127.0.0.1:9000/x?a=b:c\r\ntime: 12:30:45 \r\n\r\n");
      return eq([m.headers.get("upstream"), m.headers.get("time")], ["POST http://127.0.0.1:9000/x?a=b:c", "12:30:45"]);
    });
    check("bodies keep blank lines and CRLFs", function () {
      var m = LHTTP.parse("LHTTP/1.0 c\r\n\r\nline1\r\n\r\nline3\n\nend\r\n");
      return eq(m.body, "line1\r\n\r\nline3\n\nend\r\n");
    });
    check("bare LF line ends", function () {
      var m = LHTTP.parse("LHTTP/1.0 bare\nsubscribe:x\n\nbody");
      return eq([m.command, m.headers.get("subscribe"), m.body], ["bare", "x", "body"]);
    });
    check("no blank line: no body", function () {
      var m = LHTTP.parse("LHTTP/1.0 chat\r\nsubscribe:room");
      return eq([m.headers.get("subscribe"), m.body, LHTTP.parse("LHTTP/1.0 ping\r\n").body], ["room", "", ""]);
    });
    check("repeated headers kept in order; lookups take the first", function () {
      var m = LHTTP.parse("LHTTP/1.0 c\r\nk:1\r\nK:2\r\n\r\n");
      return eq([m.headers.get("k"), m.headers.getAll("K"), m.headers.list], ["1", ["1", "2"], [["k", "1"], ["K", "2"]]]);
    });
    check("spaces around keys and values trimmed, command trimmed", function () {
      var m = LHTTP.parse("LHTTP/1.0 \t chat \r\n  key \t:\t value  \r\n\r\n");
      return eq([m.command, m.headers.get("key")], ["chat", "value"]);
    });
    check("multipart 0 55 (the seed README's example, corrected)", function () {
      var body = "content-type:text/json\r\n\r\n{filename:file.txt,fileLen:5}content-type:text/plain\r\n\r\nhello";
      var m = LHTTP.parse("LHTTP/1.0 upload\r\nmultipart:0 55\r\n\r\n" + body);
      return eq(m.parts.map(function (p) { return [p.headers.get("content-type"), p.body]; }),
        [["text/json", "{filename:file.txt,fileLen:5}"], ["text/plain", "hello"]]);
    });
    check("multipart 0 14", function () {
      var m = LHTTP.parse("LHTTP/1.0 x\r\nmultipart:0 14\r\n\r\nk1:v1\r\n\r\nbody1k2:v2\r\n\r\nbody2");
      return eq(m.parts.map(function (p) { return [p.headers.get("k1") || p.headers.get("k2"), p.body]; }), [["v1", "body1"], ["v2", "body2"]]);
    });
    check("multipart offsets are byte offsets (UTF-8 before them)", function () {
      var body = "\r\n\u00e9\u00e9\r\ntwo";   // part 1: no headers, body "éé" (4 bytes); part 2 at byte 6
      var m = LHTTP.parse("LHTTP/1.0 x\r\nmultipart:0 6\r\n\r\n" + body);
      return eq(m.parts.map(function (p) { return p.body; }), ["\u00e9\u00e9", "two"]);
    });
    check("binary body kept as bytes", function () {
      var head = bytes("LHTTP/1.0 bin\r\n\r\n");
      var input = new Uint8Array(head.length + 3);
      input.set(head);
      input.set([0, 255, 10], head.length);
      var m = LHTTP.parse(input);
      return eq(Array.from(m.bodyBytes), [0, 255, 10]);
    });
    check("malformed input is refused", function () {
      var bad = ["", "LHTTP/1.0 chat", "\r\n", "LHTTP/1.0\r\n", "LHTTP/1.0 a b\r\n", "LHTTP/2.0 chat\r\n", "HTTP/1.1 chat\r\n",
        "lhttp/1.0 chat\r\n", "LHTTP/1.0 c\r\nno colon\r\n\r\n", "LHTTP/1.0 c\r\n:value\r\n\r\n",
        "LHTTP/1.0 c\r\nmultipart:x\r\n\r\nab", "LHTTP/1.0 c\r\nmultipart:1 0\r\n\r\nab", "LHTTP/1.0 c\r\nmultipart:0 9\r\n\r\n\r\nab",
        "LHTTP/1.0 c\r\nmultipart:0\r\n\r\nno blank line"];
      for (var i = 0; i < bad.length; i++) {
        var outcome = throws(bad[i]);
        if (outcome !== true) return outcome;
      }
      var invalidUTF8 = new Uint8Array([76, 72, 84, 84, 80, 47, 49, 46, 48, 32, 99, 13, 10, 107, 58, 255, 13, 10, 13, 10]);
      return throws(invalidUTF8);
    });
    check("serialize then parse gives the same message", function () {
      var text = LHTTP.serialize("chat", [["publish", "a b"], ["x-id", "1:2"]], "body\r\n\r\nmore");
      var m = LHTTP.parse(text);
      return eq([text.indexOf("LHTTP/1.0 chat\r\npublish:a b\r\nx-id:1:2\r\n\r\n"), m.headers.list, m.body],
        [0, [["publish", "a b"], ["x-id", "1:2"]], "body\r\n\r\nmore"]);
    });
    check("serialize refuses header injection", function () {
      try { LHTTP.serialize("c", { k: "a\r\nsubscribe:secret" }); } catch (e) { return true; }
      return "accepted a CRLF in a value";
    });
    check("error replies parse", function () {
      var m = LHTTP.parse("LHTTP/1.0 error\r\nstatus:429\r\nreason:subscription limit: at most 3\r\n\r\n");
      return eq([m.command, m.headers.get("status"), m.headers.get("reason")], ["error", "429", "subscription limit: at most 3"]);
    });
    return results;
  }

  if (typeof module === "object" && module.exports) module.exports = runParserCases;
  root.runParserCases = runParserCases;
})(typeof globalThis !== "undefined" ? globalThis : this);
