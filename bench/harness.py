"""What the Python benchmarks share: free loopback ports, child processes that
are all stopped at the end, waiting for a port, the management API, percentiles.

A script in bench/<name>/ imports it with:

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import harness
"""
import http.client, json, os, socket, subprocess, time

procs = []


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def start(args, env=None, log=None, preexec=None):
    """Starts a child process (stopped by `stop_all`); stderr to `log` when given."""
    p = subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                         stderr=open(log, "w") if log else subprocess.DEVNULL, preexec_fn=preexec)
    procs.append(p)
    return p


def stop_all():
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def wait_port(port, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} never opened")


def api(port, token, method, path, body=None, ctype="application/json"):
    """A call to the management API; exits with the answer when it is not 2xx."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body, headers={"Authorization": f"Bearer {token}", "Content-Type": ctype})
    r = c.getresponse(); data = r.read(); c.close()
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status} {data[:300]}")
    return json.loads(data or b"null")


def pct(xs, q):
    """The q-quantile of xs (nearest rank), NaN when empty."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")
