#!/usr/bin/env python3
"""The chat demo and lhttp.js in a real browser (headless Chromium through Selenium) against a real lhttpd.

Starts lhttpd on a free loopback port serving public/ (with a JWT secret and presence, join/leave on the
demo's rooms), opens the demo in two browsers with tokens it signs itself (HS256), chats both ways,
checks who is listed as present (the server's presence and join events), kills lhttpd and starts it again
on the same port, and checks that both pages reconnected, re-subscribed and receive again. Then two pages
see each other join and leave, an anonymous page is listed as a guest, and the JS cases (Tests/JS) run in
the browser. Every process it starts, it stops by PID. Exit 0 when every check passed; one line per check.

usage: chat_test.py --lhttpd .build/debug/lhttpd --root . [--screenshot docs/chat-demo.png]
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

failures = []


def check(name, condition, detail=""):
    print(("ok   " if condition else "FAIL ") + name + ("" if condition else ": " + detail), flush=True)
    if not condition:
        failures.append(name)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_token(secret, sub, name, ttl=600):
    """An HS256 JWT for `sub` with info.name, valid for ttl seconds (what an app's backend would hand out)."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"sub": sub, "exp": int(time.time()) + ttl, "info": {"name": name}}
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), (header + "." + payload).encode(), hashlib.sha256).digest()
    return header + "." + payload + "." + b64url(signature)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """lhttpd on 127.0.0.1:port with static_dir = public/, started and stopped by PID."""

    def __init__(self, binary, root, workdir, jwt_secret, nats_url=None, extra="", name="lhttpd"):
        self.binary, self.root = binary, root
        self.extra = extra
        self.jwt_secret = jwt_secret
        self.nats_url = nats_url
        self.config = os.path.join(workdir, name + ".yaml")
        self.log = open(os.path.join(workdir, name + ".log"), "ab")
        self.process = None
        self.port = None

    def start(self):
        """Starts lhttpd: on a fresh free port the first time, on the same port afterwards. A probed port can
        be taken by another process meanwhile (lhttpd then exits at once): a new port the first time, a short
        wait for the same one on a restart."""
        deadline = time.time() + 10
        while True:
            port = self.port or free_port()
            with open(self.config, "w") as f:
                # The demo's rooms keep history, as in config/lhttpd.yaml: a page that was away gets what it missed.
                # They keep presence and tell their subscribers who joins and leaves (1 s of grace: the test waits
                # for a leave); tokens are signed with the test's secret, a page without one is anonymous.
                f.write("listen: 127.0.0.1:%d\nstatic_dir: %s\n"
                        "auth:\n  jwt:\n    hmac_secret: \"%s\"\n"
                        "channels:\n  - prefix: \"chat-\"\n    history_size: 100\n"
                        "    presence: true\n    join_leave: true\n    leave_grace_s: 1\n"
                        % (port, os.path.join(self.root, "public"), self.jwt_secret))
                f.write(self.extra)
                if self.nats_url:
                    # History in the cluster's JetStream stream: it outlives an lhttpd restart.
                    f.write("cluster:\n  nats: [\"%s\"]\n  node_id: browser\n  history: jetstream\n" % self.nats_url)
            self.process = subprocess.Popen([self.binary, "--config", self.config], stdout=self.log, stderr=self.log)
            while time.time() < deadline and self.process.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    self.port = port
                    return
                except OSError:
                    time.sleep(0.05)
            if self.process.poll() is None:
                self.stop()
                raise RuntimeError("lhttpd did not listen on %d" % port)
            self.process = None
            if time.time() >= deadline:
                raise RuntimeError("lhttpd could not bind 127.0.0.1:%d" % port)
            time.sleep(0.1)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def browser(insecure=False):
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=900,700"):
        options.add_argument(flag)
    if insecure:
        # The TLS check's certificate is the test's own, self-signed.
        options.add_argument("--ignore-certificate-errors")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary:
        options.binary_location = binary
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    return webdriver.Chrome(service=Service(driver_path), options=options)


def text_of(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def wait_for(driver, predicate, timeout=20):
    try:
        WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: predicate(d))
        return True
    except Exception:
        return False


def join(driver, url, name, room, token=None):
    """Opens the demo and joins `room`: as the token's user (its name is the page's), or typing `name`."""
    driver.get(url + ("?token=" + token if token else ""))
    wait_for(driver, lambda d: text_of(d, "status") == "online")
    if token:
        wait_for(driver, lambda d: d.find_element(By.ID, "name").get_attribute("value") == name)
    else:
        driver.find_element(By.ID, "name").send_keys(name)
    room_input = driver.find_element(By.ID, "roomName")
    room_input.clear()
    room_input.send_keys(room)
    driver.find_element(By.ID, "joinButton").click()


def say(driver, text):
    box = driver.find_element(By.ID, "text")
    box.send_keys(text)
    driver.find_element(By.ID, "sendButton").click()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lhttpd", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--screenshot")
    parser.add_argument("--nats", help="nats-server binary: lhttpd keeps history in JetStream")
    args = parser.parse_args()
    root = os.path.abspath(args.root)
    workdir = tempfile.mkdtemp(prefix="lhttpd-browser-")
    nats = None
    nats_url = None
    if args.nats:
        nats_port = free_port()
        nats = subprocess.Popen([args.nats, "-a", "127.0.0.1", "-p", str(nats_port), "-js", "-sd", os.path.join(workdir, "js")],
                                stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "nats.log"), "ab"))
        nats_url = "nats://127.0.0.1:%d" % nats_port
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", nats_port), timeout=0.5).close()
                break
            except OSError:
                if time.time() > deadline or nats.poll() is not None:
                    raise RuntimeError("nats-server did not listen on %d" % nats_port)
                time.sleep(0.05)
    secret = secrets.token_hex(24)
    server = Server(os.path.abspath(args.lhttpd), root, workdir, secret, nats_url)
    drivers = []
    try:
        server.start()
        url = "http://127.0.0.1:%d/" % server.port
        ann, bob = browser(), browser()
        drivers += [ann, bob]
        # The users' ids differ from their names: a page shows info.name, so the lists below prove the token's info
        # reached the server's presence.
        ann_token, bob_token = sign_token(secret, "u-ann", "ann"), sign_token(secret, "u-bob", "bob")
        join(ann, url, "ann", "demo", ann_token)
        check("ann lists herself (the server's presence)", wait_for(ann, lambda d: "ann" in text_of(d, "people")), text_of(ann, "people"))
        join(bob, url, "bob", "demo", bob_token)
        check("both pages online", wait_for(ann, lambda d: text_of(d, "status") == "online") and wait_for(bob, lambda d: text_of(d, "status") == "online"))
        check("the token's name is the page's name", bob.find_element(By.ID, "name").get_attribute("value") == "bob")

        say(ann, "hello from ann")
        check("bob sees ann's message", wait_for(bob, lambda d: "hello from ann" in text_of(d, "log")), text_of(bob, "log"))
        check("ann sees her own message once", wait_for(ann, lambda d: text_of(d, "log").count("hello from ann") == 1), text_of(ann, "log"))
        say(bob, "hi ann: a colon: and more")
        check("ann sees bob's reply", wait_for(ann, lambda d: "hi ann: a colon: and more" in text_of(d, "log")), text_of(ann, "log"))
        check("ann lists bob as present", wait_for(ann, lambda d: "bob" in text_of(d, "people")), text_of(ann, "people"))  # bob's join
        check("bob lists ann as present", wait_for(bob, lambda d: "ann" in text_of(d, "people")), text_of(bob, "people"))  # the presence answer
        if args.screenshot:
            ann.save_screenshot(args.screenshot)

        # Bob's page goes away (its socket closed, its reconnect held back), ann talks meanwhile, bob comes back:
        # the SDK re-subscribes with since: and the page shows what it missed, once, in order, then live again.
        bob.execute_script(
            "const c = window.chat.client; window.chat.recovered = [];"
            "c.on('recovered', (r) => window.chat.recovered.push(r));"
            "c.options.minDelay = 3600000; c.options.maxDelay = 3600000; c.socket.close();"
        )
        check("bob's page is away", wait_for(bob, lambda d: text_of(d, "status") != "online"))
        say(ann, "missed one")
        say(ann, "missed two")
        check("ann's messages went out", wait_for(ann, lambda d: "missed two" in text_of(d, "log")), text_of(ann, "log"))
        bob.execute_script("const c = window.chat.client; clearTimeout(c.timer); c.timer = null; c.connect();")
        check("bob's page is back", wait_for(bob, lambda d: text_of(d, "status") == "online"))
        check("bob's SDK recovered", wait_for(bob, lambda d: any(
            r["recovered"] and r["missed"] >= 2 for r in d.execute_script("return window.chat.recovered;"))),
            json.dumps(bob.execute_script("return window.chat.recovered;")))
        texts = [m["text"] for m in bob.execute_script("return window.chat.messages;")]
        check("bob's page shows what was said while it was away, once, in order",
              texts.count("missed one") == 1 and texts.count("missed two") == 1 and texts.index("missed one") < texts.index("missed two"),
              json.dumps(texts))
        say(ann, "live after recovery")
        check("bob receives live after the recovery", wait_for(bob, lambda d: "live after recovery" in text_of(d, "log")), text_of(bob, "log"))
        bob.execute_script("const c = window.chat.client; c.options.minDelay = 250; c.options.maxDelay = 5000;")

        # The ES module entry gives the same class.
        esm = ann.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "import('/lhttp.mjs').then((m) => done(m.LHTTP === window.LHTTP && m.default === window.LHTTP), (e) => done(String(e)));"
        )
        check("lhttp.mjs exports the same LHTTP", esm is True, str(esm))

        # The server goes away and comes back on the same port: the pages reconnect and re-subscribe.
        server.stop()
        check("pages notice the server is gone", wait_for(ann, lambda d: text_of(d, "status") != "online") and wait_for(bob, lambda d: text_of(d, "status") != "online"))
        # Said while disconnected: kept in the SDK's queue, sent after the reconnect's re-subscribe.
        say(ann, "said while away")
        queued = ann.execute_script("return window.chat.client.queue.length;")
        check("a message sent while away is queued", queued >= 1, str(queued))
        server.start()
        check("pages reconnect", wait_for(ann, lambda d: text_of(d, "status") == "online", 30) and wait_for(bob, lambda d: text_of(d, "status") == "online", 30))
        check("ann's queued message went out after the reconnect", wait_for(ann, lambda d: "said while away" in text_of(d, "log")), text_of(ann, "log"))
        say(ann, "after the restart")
        check("bob receives again (re-subscribed)", wait_for(bob, lambda d: "after the restart" in text_of(d, "log")), text_of(bob, "log"))
        say(bob, "me too")
        check("ann receives again (re-subscribed)", wait_for(ann, lambda d: "me too" in text_of(d, "log")), text_of(ann, "log"))
        sent_while_down = ann.execute_script(
            "const c = window.chat.client; return c.queue.length;"
        )
        check("nothing left queued", sent_while_down == 0, str(sent_while_down))

        if nats_url:
            # lhttpd restarts while bob's page is away (its reconnect held back); ann talks on the new process;
            # bob comes back with its position from before the restart: the history is JetStream's, so the same
            # stream (same epoch) holds what it missed, and the page shows it once, in order.
            bob.execute_script(
                "const c = window.chat.client; window.chat.recovered = [];"
                "c.options.minDelay = 3600000; c.options.maxDelay = 3600000; c.socket.close();"
            )
            check("bob's page is away again", wait_for(bob, lambda d: text_of(d, "status") != "online"))
            server.stop()
            check("ann notices the restart", wait_for(ann, lambda d: text_of(d, "status") != "online"))
            server.start()
            check("ann is back", wait_for(ann, lambda d: text_of(d, "status") == "online", 30))
            say(ann, "while you were away 1")
            say(ann, "while you were away 2")
            check("ann's messages after the restart went out", wait_for(ann, lambda d: "while you were away 2" in text_of(d, "log")), text_of(ann, "log"))
            bob.execute_script("const c = window.chat.client; clearTimeout(c.timer); c.timer = null; c.connect();")
            check("bob's page is back after the restart", wait_for(bob, lambda d: text_of(d, "status") == "online", 30))
            check("bob's SDK recovered across the lhttpd restart (JetStream)", wait_for(bob, lambda d: any(
                r["recovered"] and r["missed"] >= 2 for r in d.execute_script("return window.chat.recovered;"))),
                json.dumps(bob.execute_script("return window.chat.recovered;")))
            texts = [m["text"] for m in bob.execute_script("return window.chat.messages;")]
            check("bob's page shows what was said across the restart, once, in order",
                  texts.count("while you were away 1") == 1 and texts.count("while you were away 2") == 1
                  and texts.index("while you were away 1") < texts.index("while you were away 2"),
                  json.dumps(texts))

        # Join and leave (issue 16): alice's page lists bob when his page joins the room (the join event, not the
        # presence answer: bob is not in the room when alice asks), and drops him once his page has been gone for
        # longer than leave_grace_s (the leave event).
        alice_token = sign_token(secret, "u-alice", "alice")
        join(ann, url, "alice", "members", alice_token)
        check("alice's page lists alice only", wait_for(ann, lambda d: text_of(d, "people").split("\n") == ["alice"]), text_of(ann, "people"))
        join(bob, url, "bob", "members", bob_token)
        check("alice's page lists bob after he joined (join event)", wait_for(ann, lambda d: "bob" in text_of(d, "people")), text_of(ann, "people"))
        check("alice's page says bob joined", wait_for(ann, lambda d: "bob joined" in text_of(d, "log")), text_of(ann, "log"))
        check("bob's page lists alice and bob", wait_for(bob, lambda d: sorted(text_of(d, "people").split("\n")) == ["alice", "bob"]), text_of(bob, "people"))
        gone = time.time()
        # bob's page closes: its websocket with it (headless Chromium may keep a page left by navigation alive in
        # its back-forward cache, socket and all, so the page closes its client itself, as a closing tab does).
        bob.execute_script("window.chat.client.close();")
        bob.get("about:blank")
        check("alice's page drops bob after the grace (leave event)", wait_for(ann, lambda d: "bob" not in text_of(d, "people"), 15), text_of(ann, "people"))
        elapsed = time.time() - gone
        check("the leave waited for leave_grace_s", elapsed >= 0.9, "%.2f s" % elapsed)
        check("alice's page says bob left", wait_for(ann, lambda d: "bob left" in text_of(d, "log")), text_of(ann, "log"))
        # Without a token the demo works as before: anonymous, listed (by the presence answer) as a guest.
        join(bob, url, "carol", "members")
        check("an anonymous page lists alice and itself as a guest", wait_for(
            bob, lambda d: "alice" in text_of(d, "people") and "guest" in text_of(d, "people")), text_of(bob, "people"))
        say(bob, "hello from a guest")
        check("alice sees the guest's message", wait_for(ann, lambda d: "hello from a guest" in text_of(d, "log")), text_of(ann, "log"))

        # The JS cases of Tests/JS (parser, history, tokens and presence), in this browser.
        page = os.path.join(workdir, "parser.html")
        shutil.copy(os.path.join(root, "public", "lhttp.js"), workdir)
        for cases in ("parser-cases.js", "recovery-cases.js", "token-cases.js"):
            shutil.copy(os.path.join(root, "Tests", "JS", cases), workdir)
        with open(page, "w") as f:
            f.write('<!doctype html><script src="lhttp.js"></script><script src="parser-cases.js"></script>'
                    '<script src="recovery-cases.js"></script><script src="token-cases.js"></script>'
                    '<script>window.results = runParserCases(LHTTP);'
                    'runRecoveryCases(LHTTP).then((r) => runTokenCases(LHTTP).then((t) => { window.recovery = r.concat(t); }));</script>')
        ann.get("file://" + page)
        wait_for(ann, lambda d: d.execute_script("return window.recovery !== undefined;"))
        results = (ann.execute_script("return window.results;") or []) + (ann.execute_script("return window.recovery;") or [])
        for result in results:
            check("parser (browser): " + result["name"], result["ok"], result.get("detail", ""))
        check("parser cases ran in the browser", len(results) >= 10, json.dumps(results)[:200])

        # TLS and the reverse proxy (issue 17): the demo over https, its SDK on wss, and a page of the app behind
        # lhttpd (a Python server) on the same port.
        cert, key = os.path.join(workdir, "tls.crt"), os.path.join(workdir, "tls.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        appdir = os.path.join(workdir, "app")
        os.makedirs(appdir)
        with open(os.path.join(appdir, "app.html"), "w") as f:
            f.write("<!doctype html><title>app</title><p id='app'>page of the app</p>")
        app_port = free_port()
        app = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", appdir, str(app_port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 10
            while True:  # until the app's server accepts connections (as Server.start waits for lhttpd)
                try:
                    socket.create_connection(("127.0.0.1", app_port), timeout=0.5).close()
                    break
                except OSError:
                    if time.time() > deadline or app.poll() is not None:
                        raise RuntimeError("the app's server did not listen on %d" % app_port)
                    time.sleep(0.05)
            secure = Server(os.path.abspath(args.lhttpd), root, workdir, secret, extra=(
                "tls:\n  cert_file: \"%s\"\n  key_file: \"%s\"\nproxy:\n  backend: \"http://127.0.0.1:%d\"\n" % (cert, key, app_port)),
                name="lhttpd-tls")
            secure.start()
            try:
                carol = browser(insecure=True)
                drivers.append(carol)
                tls_url = "https://localhost:%d/" % secure.port
                join(carol, tls_url, "carol", "secure", sign_token(secret, "u-carol", "carol"))
                check("the demo over https is online (its SDK on wss)", wait_for(carol, lambda d: text_of(d, "status") == "online"),
                      text_of(carol, "status"))
                check("the page's socket is wss", carol.execute_script("return window.chat.client.socket.url.startsWith('wss://');"))
                say(carol, "over wss")
                check("carol sees her message over wss", wait_for(carol, lambda d: "over wss" in text_of(d, "log")), text_of(carol, "log"))
                carol.get(tls_url + "app.html")
                check("the app's page comes through lhttpd over https", "page of the app" in carol.page_source, carol.page_source[:200])
            finally:
                secure.stop()
        finally:
            # SIGKILL: a SIGTERM the test runner's processes ignore is inherited (seen under `swift test`).
            app.kill()
            app.wait(10)
    finally:
        for driver in drivers:
            try:
                driver.quit()
            except Exception:
                pass
        server.stop()
        if nats and nats.poll() is None:
            nats.terminate()
            nats.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    print("%d failed" % len(failures), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
