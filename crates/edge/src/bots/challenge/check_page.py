#!/usr/bin/env python3
"""Checks the challenge interstitial (page.html) in a real browser.

Serves the template the way the edge does (placeholders filled, the edge's
CSP header, 403, no-store) from a throwaway http.server on 127.0.0.1, with
a verify endpoint that checks the proof of work with hashlib and answers
like the edge (200 + palisade_clearance cookie, or 403 + reason), then
drives headless Chromium through selenium:

  static   template size (< 12 KiB) and the required markup
  csp      the CSP-violation detector itself (a probe page must trip it)
  get      GET / is challenged, solved, reloaded: "origin reached"
           (once per --bits value; prints solve time and hashes/s)
  post     POST /submit from /form is challenged; after solving, the page
           says "submit your form again", does not reload, and its button
           goes back to the form; the resubmitted form goes through
  fail     the verify endpoint refuses: the reason and "Try again" show;
           "Try again" reloads and the second round succeeds
  fallback Workers removed: the page solves on the main thread in chunks
           and stays responsive
  shot     a screenshot while a hard (--shot-bits) challenge runs, in the
           light and the dark color scheme (--screenshot PATH)

Every pass also reads the browser console and fails on any CSP violation
or uncaught error. Exit status 0 when everything passed, 1 otherwise.

  python3 check_page.py                      # bits 16 and 18
  python3 check_page.py --bits 16,18,20 --runs 3 --screenshot /tmp/pal.png
  PALISADE_BITS=20 python3 check_page.py
"""

import argparse
import base64
import hashlib
import http.server
import os
import re
import secrets
import socketserver
import sys
import threading
import time
import urllib.parse

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

HERE = os.path.dirname(os.path.abspath(__file__))
VERIFY_PATH = "/.well-known/palisade/challenge"
CSP = (
    "default-src 'none'; script-src 'nonce-{n}'; worker-src blob:; "
    "style-src 'nonce-{n}'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
MAX_PAGE = 12 * 1024


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def new_token():
    """Same shape as the edge's: base64url(52 bytes) "." base64url(64 bytes)."""
    return b64url(secrets.token_bytes(52)) + "." + b64url(secrets.token_bytes(64))


def leading_zero_bits(digest):
    v = int.from_bytes(digest, "big")
    return len(digest) * 8 - v.bit_length()


def work_ok(token, counter, bits):
    d = hashlib.sha256(f"{token}:{counter}".encode()).digest()
    return leading_zero_bits(d) >= bits


def smallest_counter(token, bits, upto):
    """The smallest solution <= upto, or None."""
    prefix = hashlib.sha256(f"{token}:".encode())
    for n in range(upto + 1):
        h = prefix.copy()
        h.update(str(n).encode())
        if leading_zero_bits(h.digest()) >= bits:
            return n
    return None


class State:
    def __init__(self, template, bits):
        self.template = template
        self.bits = bits
        self.lock = threading.Lock()
        self.issued = {}  # token -> dict(bits, method, served)
        self.solves = []  # dicts: token, counter, bits, method, served, verified
        self.reject = None  # a reason: the verify endpoint refuses once
        self.log = []  # (method, path, has_cookie)

    def challenge(self, method):
        token, nonce = new_token(), b64url(secrets.token_bytes(16))
        rid = secrets.token_hex(8)
        page = self.template
        for k, v in (
            ("TOKEN", token),
            ("BITS", str(self.bits)),
            ("METHOD", method),
            ("REQUEST_ID", rid),
            ("NONCE", nonce),
            ("VERIFY_PATH", VERIFY_PATH),
        ):
            page = page.replace("{{" + k + "}}", v)
        with self.lock:
            self.issued[token] = {"bits": self.bits, "method": method, "served": time.monotonic()}
        return page.encode(), nonce


def make_handler(state):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def cleared(self):
            return "palisade_clearance=ok" in (self.headers.get("Cookie") or "")

        def send(self, status, body, ctype="text/html; charset=utf-8", headers=()):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def send_challenge(self, method):
            body, nonce = state.challenge(method)
            self.send(403, body, headers=[("Content-Security-Policy", CSP.format(n=nonce))])

        def note(self):
            with state.lock:
                state.log.append((self.command, self.path, self.cleared()))

        def do_GET(self):
            self.note()
            path = urllib.parse.urlsplit(self.path).path
            if path == "/favicon.ico":
                return self.send(204, b"")
            if path == "/form":
                return self.send(200, FORM_PAGE)
            if path == "/csp-probe":
                nonce = b64url(secrets.token_bytes(16))
                return self.send(200, CSP_PROBE, headers=[("Content-Security-Policy", CSP.format(n=nonce))])
            if path == "/":
                if self.cleared():
                    return self.send(200, ORIGIN_PAGE)
                return self.send_challenge("GET")
            self.send(404, b"not found")

        do_HEAD = do_GET

        def do_POST(self):
            self.note()
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            path = urllib.parse.urlsplit(self.path).path
            if path == "/submit":
                if self.cleared():
                    return self.send(200, SUBMITTED_PAGE)
                return self.send_challenge("POST")
            if path == VERIFY_PATH:
                return self.verify(raw)
            self.send(404, b"not found")

        def verify(self, raw):
            now = time.monotonic()
            ctype = self.headers.get("Content-Type", "")
            form = urllib.parse.parse_qs(raw.decode("ascii", "replace"), keep_blank_values=True)
            token = (form.get("token") or [""])[0]
            counter = (form.get("counter") or [""])[0]
            with state.lock:
                issued = state.issued.get(token)
                reject, state.reject = state.reject, None
            reason = None
            if not ctype.startswith("application/x-www-form-urlencoded"):
                reason = "bad content type"
            elif issued is None:
                reason = "unknown challenge"
            elif not re.fullmatch(r"0|[1-9][0-9]{0,19}", counter):
                reason = "bad counter"
            elif not work_ok(token, int(counter), issued["bits"]):
                reason = "wrong answer"
            elif reject:
                reason = reject
            if reason:
                body = ('{"ok": false, "reason": "%s"}' % reason).encode()
                return self.send(403, body, "application/json")
            with state.lock:
                state.issued.pop(token, None)
                state.solves.append(
                    dict(token=token, counter=int(counter), bits=issued["bits"],
                         method=issued["method"], served=issued["served"], verified=now)
                )
            self.send(200, b'{"ok": true}', "application/json",
                      [("Set-Cookie", "palisade_clearance=ok; Path=/; HttpOnly; SameSite=Lax")])

    return Handler


ORIGIN_PAGE = b"<!DOCTYPE html><title>origin</title><p id=origin>origin reached</p>"
SUBMITTED_PAGE = b"<!DOCTYPE html><title>submitted</title><p id=submitted>form received</p>"
FORM_PAGE = (
    b"<!DOCTYPE html><title>form</title><form method=post action=/submit>"
    b"<input name=q value=hello><button id=send>Send</button></form>"
)
# An inline script without the nonce and an inline style attribute: both
# must be refused, and the console must say so.
CSP_PROBE = b"<!DOCTYPE html><title>probe</title><p style='color:red'>x</p><script>document.title='ran'</script>"


class Checker:
    def __init__(self, args, state, base):
        self.args, self.state, self.base = args, state, base
        self.failures = []
        self.results = []  # (label, bits, counter, solve_s, e2e_s)
        opts = webdriver.ChromeOptions()
        opts.binary_location = args.chromium
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,760",
                  "--disable-dev-shm-usage", "--no-first-run"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(args.chromedriver), options=opts)
        self.driver.set_page_load_timeout(30)
        # Also report violations the page sees as console errors.
        self.cdp("Page.addScriptToEvaluateOnNewDocument", {"source": (
            "document.addEventListener('securitypolicyviolation',function(e){"
            "console.error('CSP violation: '+e.violatedDirective+' '+e.blockedURI)});")})

    def cdp(self, cmd, params=None):
        return self.driver.execute_cdp_cmd(cmd, params or {})

    def fail(self, what):
        print(f"  FAIL {what}")
        self.failures.append(what)

    def ok(self, what):
        print(f"  ok   {what}")

    def console(self, label, allow=()):
        """Fails on CSP violations and uncaught errors in the console since the last read."""
        bad = []
        for e in self.driver.get_log("browser"):
            msg = e.get("message", "")
            if any(a in msg for a in allow):
                continue
            if ("Content Security Policy" in msg or "CSP violation" in msg or "Refused to" in msg
                    or "Uncaught" in msg or (e.get("level") == "SEVERE" and "Failed to load resource" not in msg)):
                bad.append(msg)
        if bad:
            for m in bad:
                self.fail(f"{label}: console: {m[:300]}")
        else:
            self.ok(f"{label}: no CSP violation or error in the console")
        return bad

    def wait(self, cond, timeout):
        try:
            WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(lambda d: cond(d))
            return True
        except TimeoutException:
            return False

    def text(self):
        try:
            return self.driver.find_element(By.TAG_NAME, "body").text
        except Exception:
            return ""

    def fresh(self):
        self.driver.get("about:blank")
        self.cdp("Network.clearBrowserCookies")
        self.driver.get_log("browser")

    # --- passes ---------------------------------------------------------

    def check_static(self):
        print("static")
        t = self.state.template
        size = len(t.encode())
        (self.ok if size < MAX_PAGE else self.fail)(f"template is {size} bytes (limit {MAX_PAGE})")
        filled, _ = self.state.challenge("GET")
        (self.ok if len(filled) < MAX_PAGE else self.fail)(f"filled page is {len(filled)} bytes")
        left = re.findall(r"\{\{[A-Z_]+\}\}", filled.decode())
        (self.fail if left else self.ok)(f"placeholders left after filling: {left}")
        need = {
            'html lang="en"': r'<html lang="en"',
            "viewport meta": r'<meta name="viewport"',
            "<main>": r"<main\b",
            "<h1>": r"<h1\b",
            "<progress> with a <label for>": r'<label for="([^"]+)">.*<progress id="\1"',
            'role="status" aria-live="polite"': r'role="status" aria-live="polite"',
            "<noscript>": r"<noscript>",
            "request id": r"\{\{REQUEST_ID\}\}",
            "nonce on every <script>/<style>": None,
        }
        for name, rx in need.items():
            if rx is None:
                tags = re.findall(r"<(script|style)\b[^>]*>", t)
                good = tags and all('nonce="{{NONCE}}"' in m for m in re.findall(r"<(?:script|style)\b[^>]*>", t))
                (self.ok if good else self.fail)(name)
                continue
            (self.ok if re.search(rx, t, re.S) else self.fail)(name)
        ext = re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", t) + re.findall(r"url\(", t)
        (self.fail if ext else self.ok)(f"no external assets ({len(ext)} found)")
        (self.fail if re.search(r"<img\b", t) else self.ok)("no images")
        (self.fail if re.search(r"\sstyle\s*=", t) else self.ok)("no style attributes (CSP would refuse them)")

    def check_csp_detector(self):
        print("csp detector")
        self.fresh()
        self.driver.get(self.base + "/csp-probe")
        time.sleep(0.3)
        logs = [e["message"] for e in self.driver.get_log("browser")]
        caught = [m for m in logs if "Content Security Policy" in m or "CSP violation" in m]
        (self.ok if caught and self.driver.title != "ran" else self.fail)(
            f"a page breaking the CSP is caught ({len(caught)} console messages)")

    def solve_get(self, bits, label="get"):
        self.state.bits = bits
        self.fresh()
        n_before = len(self.state.solves)
        t0 = time.monotonic()
        self.driver.get(self.base + "/")
        reached = self.wait(lambda d: "origin reached" in self.text(), self.args.timeout)
        e2e = time.monotonic() - t0
        if not reached:
            self.fail(f"{label} bits={bits}: 'origin reached' not shown within {self.args.timeout}s "
                      f"(page says: {self.text()[:200]!r})")
            self.console(label)
            return None
        s = self.state.solves[n_before] if len(self.state.solves) > n_before else None
        if s is None:
            self.fail(f"{label} bits={bits}: origin reached without a verified solve")
            return None
        solve = s["verified"] - s["served"]
        rate = (s["counter"] + 1) / solve if solve > 0 else 0
        self.results.append((label, bits, s["counter"], solve, e2e, rate))
        self.ok(f"{label} bits={bits}: origin reached; counter {s['counter']}, "
                f"solve {solve:.3f}s (page served -> verify POST), end to end {e2e:.3f}s, "
                f"{rate / 1e6:.2f} M hashes/s")
        smallest = smallest_counter(s["token"], bits, s["counter"])
        (self.ok if smallest == s["counter"] else self.fail)(
            f"{label} bits={bits}: counter is the smallest solution (python: {smallest})")
        self.console(label)
        return s

    def check_post(self, bits):
        print("post")
        self.state.bits = bits
        self.fresh()
        self.driver.get(self.base + "/form")
        with self.state.lock:
            mark = len(self.state.log)
        self.driver.find_element(By.ID, "send").click()
        if not self.wait(lambda d: d.find_element(By.ID, "pal").get_attribute("data-state") in ("verified", "failed"),
                         self.args.timeout):
            self.fail(f"post: not verified within {self.args.timeout}s (page says {self.text()[:200]!r})")
            return
        time.sleep(0.5)  # a reload, if the page did one, would show up here
        st = self.driver.find_element(By.ID, "pal-status")
        (self.ok if "submit your form again" in st.text else self.fail)(f"post: status says {st.text!r}")
        focused = self.driver.execute_script("return document.activeElement && document.activeElement.id")
        (self.ok if focused == "pal-status" else self.fail)(f"post: the message has focus ({focused!r})")
        nav = self.driver.execute_script(
            "var e=performance.getEntriesByType('navigation')[0];return e&&e.type")
        with self.state.lock:
            after = self.state.log[mark:]
        submits = [x for x in after if x[1] == "/submit"]
        (self.ok if len(submits) == 1 and nav == "navigate" else self.fail)(
            f"post: no reload (requests to /submit: {len(submits)}, navigation type {nav!r})")
        s = self.state.solves[-1] if self.state.solves else None
        (self.ok if s and s["method"] == "POST" else self.fail)("post: the challenge carried METHOD=POST")
        btn = self.driver.find_element(By.ID, "pal-btn")
        (self.ok if btn.is_displayed() else self.fail)(f"post: button shown ({btn.text!r})")
        btn.click()
        back = self.wait(lambda d: d.current_url.endswith("/form"), 10)
        (self.ok if back else self.fail)(f"post: the button goes back to the form ({self.driver.current_url})")
        if back:
            self.wait(lambda d: d.find_elements(By.ID, "send"), 5)
            self.driver.find_element(By.ID, "send").click()
            got = self.wait(lambda d: "form received" in self.text(), 10)
            (self.ok if got else self.fail)("post: the form submitted again goes through with the clearance")
        self.console("post", allow=("status of 403",))

    def check_fail(self, bits):
        print("fail")
        self.state.bits = bits
        self.fresh()
        self.state.reject = "challenge expired"
        self.driver.get(self.base + "/")
        if not self.wait(lambda d: d.find_element(By.ID, "pal").get_attribute("data-state") == "failed",
                         self.args.timeout):
            self.fail(f"fail: failure not shown (page says {self.text()[:200]!r})")
            return
        st = self.driver.find_element(By.ID, "pal-status").text
        (self.ok if "challenge expired" in st else self.fail)(f"fail: reason shown: {st!r}")
        btn = self.driver.find_element(By.ID, "pal-btn")
        (self.ok if btn.is_displayed() and "Try again" in btn.text else self.fail)(f"fail: button {btn.text!r}")
        focused = self.driver.execute_script("return document.activeElement && document.activeElement.id")
        (self.ok if focused == "pal-status" else self.fail)(f"fail: the message has focus ({focused!r})")
        self.console("fail (before retry)", allow=("status of 403",))
        btn.click()
        got = self.wait(lambda d: "origin reached" in self.text(), self.args.timeout)
        (self.ok if got else self.fail)("fail: 'Try again' reloads and the next round reaches the origin")
        self.console("fail (retry)", allow=("status of 403",))

    def check_fallback(self, bits):
        print("fallback (no Worker)")
        sid = self.cdp("Page.addScriptToEvaluateOnNewDocument",
                       {"source": "try{delete window.Worker}catch(e){};window.Worker=undefined;"})["identifier"]
        try:
            self.state.bits = bits
            # A lucky counter can end the solve before anything is sampled:
            # then try again (a few times).
            for attempt in range(4):
                self.fresh()
                n_before = len(self.state.solves)
                t0 = time.monotonic()
                self.driver.get(self.base + "/")
                # The page must stay responsive while it works: a script
                # call made mid-solve must come back quickly.
                lags, modes = [], set()
                while "origin reached" not in self.text() and time.monotonic() - t0 < self.args.timeout:
                    t = time.monotonic()
                    try:
                        modes.add(self.driver.execute_script(
                            "var m=document.getElementById('pal');return m&&m.getAttribute('data-mode')"))
                    except Exception:
                        pass
                    lags.append(time.monotonic() - t)
                    time.sleep(0.02)
                modes.discard(None)
                reached = "origin reached" in self.text()
                if not reached or (modes and len(lags) >= 3):
                    break
                print(f"       solved too quickly to sample (counter {self.state.solves[-1]['counter']}); again")
            e2e = time.monotonic() - t0
            (self.ok if reached else self.fail)(f"fallback bits={bits}: origin reached ({e2e:.3f}s end to end)")
            if reached and len(self.state.solves) > n_before:
                s = self.state.solves[n_before]
                solve = s["verified"] - s["served"]
                rate = (s["counter"] + 1) / solve
                self.results.append(("fallback", bits, s["counter"], solve, e2e, rate))
                print(f"       counter {s['counter']}, solve {solve:.3f}s, {rate / 1e6:.2f} M hashes/s")
            (self.ok if modes == {"page"} else self.fail)(f"fallback: solved on the page (modes seen: {sorted(modes)})")
            worst = max(lags) if lags else 0
            (self.ok if lags and worst < 0.5 else self.fail)(
                f"fallback: page stayed responsive (slowest of {len(lags)} script calls {worst * 1000:.0f} ms)")
            self.console("fallback")
        finally:
            self.cdp("Page.removeScriptToEvaluateOnNewDocument", {"identifier": sid})

    def screenshots(self, path):
        print("screenshots")
        self.state.bits = self.args.shot_bits
        root, ext = os.path.splitext(path)
        for scheme, out in (("light", path), ("dark", f"{root}-dark{ext or '.png'}")):
            self.fresh()
            self.cdp("Emulation.setEmulatedMedia",
                     {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
            self.driver.get(self.base + "/")
            time.sleep(1.5)
            state = self.driver.find_element(By.ID, "pal").get_attribute("data-state")
            mode = self.driver.find_element(By.ID, "pal").get_attribute("data-mode")
            (self.ok if mode == "worker" else self.fail)(f"screenshot ({scheme}): solving in a Web Worker ({mode!r})")
            value = self.driver.execute_script("return document.getElementById('pal-bar').value")
            self.driver.save_screenshot(out)
            (self.ok if state == "solving" and value and value > 0 else self.fail)(
                f"screenshot ({scheme}) {out}: state {state!r}, progress {value:.0f} of 2^{self.args.shot_bits}")
            self.console(f"screenshot ({scheme})")
        self.cdp("Emulation.setEmulatedMedia", {"features": []})
        self.driver.get("about:blank")

    def close(self):
        try:
            self.driver.quit()
        except Exception:
            pass


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bits", default=os.environ.get("PALISADE_BITS", "16,18"),
                   help="comma-separated difficulties for the GET pass (env PALISADE_BITS; default 16,18); "
                        "the first is used for the post and fail passes")
    p.add_argument("--runs", type=int, default=1, help="GET solves per difficulty")
    p.add_argument("--screenshot", help="PNG path for a screenshot of the running challenge "
                                        "(a -dark twin is written next to it)")
    p.add_argument("--shot-bits", type=int, default=28, help="difficulty for the screenshot pass")
    p.add_argument("--fallback-bits", type=int, default=22,
                   help="difficulty for the no-Worker pass (long enough to sample responsiveness)")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--template", default=os.path.join(HERE, "page.html"))
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    p.add_argument("--skip", default="", help="comma-separated passes to skip: post,fail,fallback")
    args = p.parse_args()
    bits_list = [int(b) for b in str(args.bits).split(",") if b.strip()]
    skip = set(filter(None, args.skip.split(",")))

    with open(args.template, encoding="utf-8") as f:
        template = f.read()
    state = State(template, bits_list[0])

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

        def handle_error(self, request, client_address):
            # The browser drops connections it no longer needs (a reload
            # mid-request): not a failure of the page.
            if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                super().handle_error(request, client_address)

    httpd = Server(("127.0.0.1", 0), make_handler(state))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    print(f"serving {args.template} at {base}")

    checker = None
    try:
        checker = Checker(args, state, base)
        print(f"browser: {checker.driver.capabilities.get('browserVersion')}")
        checker.check_static()
        checker.check_csp_detector()
        print("get")
        for bits in bits_list:
            for _ in range(args.runs):
                checker.solve_get(bits)
        if "post" not in skip:
            checker.check_post(bits_list[0])
        if "fail" not in skip:
            checker.check_fail(bits_list[0])
        if "fallback" not in skip:
            checker.check_fallback(args.fallback_bits)
        if args.screenshot:
            checker.screenshots(args.screenshot)
    except Exception as e:  # a crash is a failure too
        if checker is None:
            print(f"could not start the browser: {e}")
            return 1
        checker.fail(f"harness error: {type(e).__name__}: {e}")
    finally:
        if checker:
            checker.close()
        httpd.shutdown()

    print("\nsolve times (headless Chromium)")
    print(f"  {'pass':<9} {'bits':>4} {'counter':>9} {'solve s':>8} {'e2e s':>7} {'M hash/s':>9}")
    for label, bits, counter, solve, e2e, rate in checker.results:
        print(f"  {label:<9} {bits:>4} {counter:>9} {solve:>8.3f} {e2e:>7.3f} {rate / 1e6:>9.2f}")
    if checker.failures:
        print(f"\nFAILED: {len(checker.failures)} check(s)")
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
