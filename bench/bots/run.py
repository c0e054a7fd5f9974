#!/usr/bin/env python3
"""Traffic-mix benchmark of the bot defence (issue 12), on loopback only.

A fleet: nats-server (JetStream), `palisade control`, three `palisade edge`
(trusting 127.0.0.1 as a proxy, so each client here has an address of its
own in X-Forwarded-For) and the demo origin, with the starter policy
bench/bots/policy.toml. Then, in turn:

  browsers     real headless Chromium sessions (Debian's chromium, selenium),
               a normal User-Agent, each with an address of its own (set by
               the DevTools protocol), browsing pages across the edges with a
               person's pauses; a navigation counts when the origin's page
               is what the browser ends on (after a challenge, if any)
  library      a scraper with a library User-Agent (python-requests)
  browser-ua   a scraper with a browser User-Agent and a library's headers
  stealthy     a scraper with a browser's full headers, at a steady pace,
               pages only, no cookies
  headless     a real HeadlessChrome scraper (Chromium's own headless UA)
  stuffing     one source trying 100 usernames at the login, across the edges
  guessing     one username tried from 200 sources, across the edges

and prints, for each: requests, how many reached the origin (overall and
after the first 20), or for the logins how many attempts the fleet let
through before it stopped them (challenged or banned).

  PALISADE_BIN=target/release/palisade python3 bench/bots/run.py
  BROWSERS=4 NAV=20 python3 bench/bots/run.py
  ONLY=stuffing,guessing KEEP=1 python3 bench/bots/run.py   # some phases; keep the logs
"""
import json, os, random, shutil, subprocess, sys, tempfile, threading, time
import urllib.error, urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("PALISADE_BIN", os.path.join(ROOT, "target/release/palisade"))
BROWSERS = int(os.environ.get("BROWSERS", "4"))
NAV = int(os.environ.get("NAV", "20"))
SCRAPES = int(os.environ.get("SCRAPES", "60"))
TOKEN = "bench-token-0123456789abcdef"
CHROME_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/156.0.0.0 Safari/537.36")
ORIGIN_MARKS = ("demo origin:", "Palisade demo origin", "Log in")


def fleet(tmp):
    nport = harness.free_port()
    nats = shutil.which("nats-server") or "nats-server"
    harness.start([nats, "-js", "-a", "127.0.0.1", "-p", str(nport), "-sd", os.path.join(tmp, "nats")],
                  log=os.path.join(tmp, "nats.log"))
    harness.wait_port(nport)
    nurl = f"nats://127.0.0.1:{nport}"
    oport = harness.free_port()
    harness.start([BIN, "demo-origin", "--listen", f"127.0.0.1:{oport}", "--threads", "1"])
    harness.wait_port(oport)
    cport = harness.free_port()
    harness.start([BIN, "control", "--api", f"127.0.0.1:{cport}", "--nats", nurl, "--node-id", "control",
                   "--data-dir", os.path.join(tmp, "control")],
                  env={"PALISADE_ADMIN_TOKEN": TOKEN}, log=os.path.join(tmp, "control.log"))
    harness.wait_port(cport)
    edges = []
    for i in range(3):
        port, mport = harness.free_port(), harness.free_port()
        harness.start([BIN, "edge", "--node-id", f"edge-{i}", "--listen", f"127.0.0.1:{port}",
                       "--upstream", f"http://127.0.0.1:{oport}", "--nats", nurl, "--threads", "1",
                       "--trusted-proxy", "127.0.0.1/32", "--metrics", f"127.0.0.1:{mport}",
                       "--data-dir", os.path.join(tmp, f"edge-{i}")],
                      log=os.path.join(tmp, f"edge-{i}.log"))
        harness.wait_port(port)
        edges.append(f"http://127.0.0.1:{port}")
    with open(os.path.join(HERE, "policy.toml")) as f:
        harness.api(cport, TOKEN, "PUT", "/api/v1/policy", f.read().encode(), "text/plain")
    # In force on every edge: a library agent is refused on pages.
    for e in edges:
        end = time.time() + 30
        while get(e, "/probe", "192.0.2.250", {"User-Agent": "curl/8.5"})[0] != 403:
            if time.time() > end:
                raise SystemExit(f"the policy did not reach {e}")
            time.sleep(0.2)
    return edges


def get(edge, path, ip, headers, method="GET", body=None):
    h = {"X-Forwarded-For": ip, **headers}
    req = urllib.request.Request(edge + path, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def reached(status, body):
    return status < 400 and any(m in body for m in ORIGIN_MARKS) or status == 401


def scraper(edges, name, ip, headers, n, pace):
    """`n` page requests from `ip`, one every `pace` s (± 5 %), across the edges."""
    out = []
    for i in range(n):
        s, b = get(edges[i % 3], f"/articles/{i}", ip, headers)
        out.append(reached(s, b))
        time.sleep(pace * random.uniform(0.95, 1.05))
    return {"kind": name, "requests": n, "origin": sum(out), "origin_after_20": sum(out[20:]),
            "after_20": max(0, n - 20)}


def chromium(ua=None, ip=None):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-first-run", "--window-size=1200,800"):
        o.add_argument(a)
    if ua:
        o.add_argument(f"--user-agent={ua}")
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.set_page_load_timeout(30)
    if ip:
        d.execute_cdp_cmd("Network.enable", {})
        d.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"X-Forwarded-For": ip}})
    return d


def browse(d, url, timeout=30):
    """Navigates and waits until the origin's page shows (a challenge first
    solves and reloads); whether it did."""
    d.get(url)
    end = time.time() + timeout
    while time.time() < end:
        src = d.page_source
        if any(m in src for m in ORIGIN_MARKS):
            return True
        time.sleep(0.1)
    return False


def browsers(edges, n, nav):
    results = []
    for s in range(n):
        ip = f"100.64.{s}.{10 + s}"
        d = chromium(CHROME_UA, ip)
        ok, challenged = 0, 0
        try:
            for i in range(nav):
                edge = edges[(s + i // 5) % 3]  # moves to another edge every 5 pages
                t0 = time.time()
                good = browse(d, f"{edge}/articles/{s}-{i}")
                ok += good
                challenged += (time.time() - t0) > 0.5 and good
                time.sleep(random.uniform(0.2, 1.5))  # reading
        finally:
            d.quit()
        results.append({"session": s, "navigations": nav, "origin": ok})
    total = sum(r["navigations"] for r in results)
    return {"kind": "browsers (real Chromium)", "sessions": n, "requests": total,
            "origin": sum(r["origin"] for r in results)}


def headless(edges, n):
    d = chromium(None, "100.64.200.1")
    out = []
    try:
        for i in range(n):
            d.get(f"{edges[i % 3]}/articles/h{i}")
            src = d.page_source
            out.append(any(m in src for m in ORIGIN_MARKS))
            time.sleep(0.2)
        ua = d.execute_script("return navigator.userAgent")
    finally:
        d.quit()
    return {"kind": "headless (HeadlessChrome)", "ua": ua[:60], "requests": n, "origin": sum(out),
            "origin_after_20": sum(out[20:]), "after_20": max(0, n - 20)}


FULL = {"User-Agent": CHROME_UA, "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
        "Accept-Language": "en-US,en;q=0.9", "Accept-Encoding": "gzip, deflate",
        "Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none",
        "Sec-CH-UA": '"Chromium";v="156"'}


def login(edge, ip, user):
    body = f"user={user}&password=wrong-{random.randint(0, 1 << 30)}".encode()
    s, _ = get(edge, "/login", ip, {**FULL, "Content-Type": "application/x-www-form-urlencoded"},
               "POST", body)
    return s


def stuffing(edges, n=100):
    ip = "203.0.113.66"
    statuses = [login(edges[i % 3], ip, f"user{i}@example.org") for i in range(n)]
    through = next((i for i, s in enumerate(statuses) if s != 401), n)
    return {"kind": "credential stuffing (1 source, 100 usernames)", "attempts": n,
            "reached_origin": statuses.count(401), "stopped_after": through}


def guessing(edges, n=200):
    # Each source in a /24 of its own.
    statuses = [login(edges[i % 3], f"10.{i}.7.9", "admin@example.org") for i in range(n)]
    through = next((i for i, s in enumerate(statuses) if s != 401), n)
    return {"kind": "distributed guessing (200 sources, 1 username)", "attempts": n,
            "reached_origin": statuses.count(401), "stopped_after": through}


def main():
    if not os.path.exists(BIN):
        raise SystemExit(f"{BIN} not found: cargo build --release -p palisade-cli (or set PALISADE_BIN)")
    tmp = tempfile.mkdtemp(prefix="palisade-bots-")
    try:
        edges = fleet(tmp)
        only = set(filter(None, os.environ.get("ONLY", "").split(",")))
        want = lambda name: not only or name in only  # noqa: E731
        rows = []
        if want("browsers"):
            rows.append(browsers(edges, BROWSERS, NAV))
        if want("library"):
            rows.append(scraper(edges, "library UA (python-requests)", "100.66.0.1",
                                {"User-Agent": "python-requests/2.31.0", "Accept": "*/*",
                                 "Accept-Encoding": "gzip, deflate"}, SCRAPES, 0.05))
        if want("browser-ua"):
            rows.append(scraper(edges, "browser UA, library headers", "100.66.0.2",
                                {"User-Agent": CHROME_UA, "Accept": "*/*",
                                 "Accept-Encoding": "gzip, deflate"}, SCRAPES, 0.05))
        if want("stealthy"):
            rows.append(scraper(edges, "browser UA, full headers, steady", "100.66.0.3", FULL,
                                SCRAPES, 0.1))
        if want("headless"):
            rows.append(headless(edges, 40))
        if want("stuffing"):
            rows.append(stuffing(edges))
        if want("guessing"):
            rows.append(guessing(edges))
        print(json.dumps(rows, indent=1))
        print()
        print(f"{'traffic':50} {'requests':>8} {'origin':>7} {'after 20':>9}")
        for r in rows:
            if "stopped_after" in r:
                print(f"{r['kind']:50} {r['attempts']:>8} {r['reached_origin']:>7}   stopped after {r['stopped_after']}")
            elif "after_20" in r:
                print(f"{r['kind']:50} {r['requests']:>8} {r['origin']:>7} {r['origin_after_20']:>4}/{r['after_20']}")
            else:
                print(f"{r['kind']:50} {r['requests']:>8} {r['origin']:>7} ({100 * r['origin'] / r['requests']:.1f}%)")
    finally:
        harness.stop_all()
        if os.environ.get("KEEP"):
            print("logs in", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
