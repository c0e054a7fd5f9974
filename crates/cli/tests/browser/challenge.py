#!/usr/bin/env python3
"""A real browser through the challenge, across two edges (run by
crates/cli/tests/bots.rs, which starts NATS, a control plane, two edges
and the demo origin).

Headless Chromium (Debian's chromium + chromium-driver, driven by selenium)
loads a page of edge A, which challenges it; the page's Web Worker solves
the proof of work, gets the clearance cookie and reloads into the origin's
page. Then the same browser loads edge B (another port on 127.0.0.1: the
cookie jar is the same) and reaches the origin at once, with the clearance
edge A minted. A screenshot of the challenge page is kept (--screenshot).

Prints one JSON line with what it saw; exits 1 on any failure.
"""

import argparse
import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ORIGIN_MARK = "Palisade demo origin"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--edge-a", required=True)
    p.add_argument("--edge-b", required=True)
    p.add_argument("--screenshot", required=True)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    p.add_argument("--timeout", type=float, default=60.0)
    a = p.parse_args()

    opts = webdriver.ChromeOptions()
    opts.binary_location = a.chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,760",
                "--disable-dev-shm-usage", "--no-first-run"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(a.chromedriver), options=opts)
    d.set_page_load_timeout(30)
    out = {}
    try:
        # Keep the page still for the screenshot: stop the worker from
        # posting its answer until the picture is taken.
        d.get(a.edge_a + "/")
        title = d.title
        out["challenge_title"] = title
        if "Checking" not in title and "browser" not in d.page_source.lower():
            raise SystemExit(f"edge A did not challenge: {title!r}")
        d.save_screenshot(a.screenshot)
        t0 = time.time()
        while ORIGIN_MARK not in d.page_source:
            if time.time() - t0 > a.timeout:
                raise SystemExit("the challenge was not solved in time:\n" + d.page_source[:2000])
            time.sleep(0.1)
        out["solve_seconds"] = round(time.time() - t0, 2)
        cookies = {c["name"]: c for c in d.get_cookies()}
        if "palisade_clearance" not in cookies:
            raise SystemExit(f"no clearance cookie: {sorted(cookies)}")
        out["cookie_http_only"] = cookies["palisade_clearance"].get("httpOnly")
        # Edge B: the same clearance, no challenge.
        d.get(a.edge_b + "/")
        if ORIGIN_MARK not in d.page_source:
            raise SystemExit("edge B did not let the cleared browser through:\n" + d.page_source[:2000])
        out["edge_b"] = "origin"
        errors = [l for l in d.get_log("browser") if l.get("level") == "SEVERE"
                  and "favicon" not in l.get("message", "")
                  and "403" not in l.get("message", "")]
        if errors:
            raise SystemExit(f"browser errors: {errors}")
        print(json.dumps(out))
    finally:
        d.quit()


if __name__ == "__main__":
    try:
        main()
    except SystemExit as e:
        if e.code not in (None, 0):
            print(f"FAILED: {e.code}", file=sys.stderr)
            sys.exit(1)
