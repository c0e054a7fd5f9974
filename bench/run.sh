#!/usr/bin/env bash
# Load benchmark, one run, same machine: (a) the origin direct, (b) Debian nginx
# as a plain proxy_pass, (c) palisade up with the 50-rule example policy, a
# rate limit and 100k active decisions, and (d) the same palisade built from
# BASE_REV (the main this wave started from), so that what a change costs is
# measured in the same run. Same origin, same request, same wrk connection
# count; nginx worker_processes = palisade --threads. Each proxy runs in its own
# process: its CPU time per request is read from /proc/PID/stat.
#
# Usage: bench/run.sh [THREADS] [DURATION] [CONNECTIONS] [ROUNDS]
#   CONNECTIONS may list several counts: "32 256".
#   BASE_REV=<rev> (default dde0907, main before issue 10); BASE_REV=none skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-1}
DURATION=${2:-10s}
CONNS_LIST=${3:-"32 256"}
ROUNDS=${4:-3}
WRK_THREADS=${WRK_THREADS:-2}
BASE_REV=${BASE_REV:-dde0907}

need=()
command -v nginx >/dev/null || need+=(nginx)
command -v wrk >/dev/null || need+=(wrk)
command -v cmake >/dev/null || need+=(cmake)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The fastest binary: the `dist` profile (fat LTO, one codegen unit).
cargo build --profile dist -p palisade-cli >/dev/null 2>&1 || cargo build --profile dist -p palisade-cli
BIN=target/dist/palisade
# The baseline: the same build of BASE_REV, in a worktree of its own (kept, so
# a second run does not rebuild it).
BASE_BIN=""
if [ "$BASE_REV" != none ]; then
  BASE_SHA=$(git rev-parse --short "$BASE_REV")
  BASE_TREE=target/bench-base/$BASE_SHA
  if [ ! -x "$BASE_TREE/target/dist/palisade" ]; then
    [ -d "$BASE_TREE" ] || git worktree add --detach "$BASE_TREE" "$BASE_SHA" >/dev/null
    (cd "$BASE_TREE" && cargo build --profile dist -p palisade-cli >/dev/null 2>&1 || cargo build --profile dist -p palisade-cli)
  fi
  BASE_BIN=$BASE_TREE/target/dist/palisade
fi

WORK=$(mktemp -d /tmp/palisade-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/origin.pid" ] && kill "$(cat "$WORK/origin.pid")" 2>/dev/null || true
  [ -f "$WORK/proxy.pid" ] && kill "$(cat "$WORK/proxy.pid")" 2>/dev/null || true
  sleep 0.5; rm -rf "$WORK"
}
trap cleanup EXIT

ORIGIN_PORT=18181; NGINX_PORT=18182; PALISADE_PORT=18183; API_PORT=18184
BASE_PORT=18185; BASE_API_PORT=18186
BODY=$(head -c 600 /dev/zero | tr '\0' 'x')

# Origin: nginx serving a fixed 600-byte body, one worker.
cat > "$WORK/origin.conf" <<CONF
worker_processes 1;
pid $WORK/origin.pid;
error_log $WORK/origin-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$ORIGIN_PORT reuseport;
    location / { default_type text/html; return 200 "$BODY"; }
  }
}
CONF
nginx -c "$WORK/origin.conf" -p "$WORK"

# Peer: nginx as a plain reverse proxy with upstream keepalive.
cat > "$WORK/proxy.conf" <<CONF
worker_processes $THREADS;
pid $WORK/proxy.pid;
error_log $WORK/proxy-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX_PORT reuseport;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
nginx -c "$WORK/proxy.conf" -p "$WORK"

# 100k active decisions (none matches the benchmark client 127.0.0.1).
python3 - "$WORK/decisions.jsonl" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(100_000):
        a, b, c = (i >> 16) & 255, (i >> 8) & 255, i & 255
        f.write('{"scope":"ip","value":"100.%d.%d.%d","duration":"24h","reason":"bench"}\n' % (64 + a, b, c))
PY

start_palisade() { # bin port api_port name
  PALISADE_ADMIN_TOKEN=bench "$1" up --listen 127.0.0.1:$2 --api 127.0.0.1:$3 \
    --upstream http://127.0.0.1:$ORIGIN_PORT --policy examples/bench-policy.toml \
    --decisions "$WORK/decisions.jsonl" --threads "$THREADS" --data-dir "$WORK/data-$4" \
    --events "$WORK/events-$4.jsonl" 2>"$WORK/$4.log" &
  PIDS+=($!)
  echo $! > "$WORK/$4.pid"
}
start_palisade "$BIN" $PALISADE_PORT $API_PORT palisade
PEERS="origin nginx palisade"
if [ -n "$BASE_BIN" ]; then
  start_palisade "$BASE_BIN" $BASE_PORT $BASE_API_PORT base
  PEERS="$PEERS base"
fi

for port in $ORIGIN_PORT $NGINX_PORT $PALISADE_PORT $([ -n "$BASE_BIN" ] && echo $BASE_PORT); do
  for _ in $(seq 1 300); do curl -fs -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done
DECISIONS=$(curl -s http://127.0.0.1:$API_PORT/metrics | awk '/^palisade_decisions_active/ {print $2}')
RULES=$(curl -s http://127.0.0.1:$API_PORT/metrics | awk '/^palisade_policy_rules/ {print $2}')

HDRS=(-H "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
      -H "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
      -H "Accept-Language: en-US,en;q=0.9" -H "Cookie: session=abc123; theme=dark")
URLPATH="/products/view?id=42&ref=home"

port_of() { case $1 in origin) echo $ORIGIN_PORT;; nginx) echo $NGINX_PORT;; palisade) echo $PALISADE_PORT;; base) echo $BASE_PORT;; esac; }
# The processes of a peer: nginx's master and workers, palisade's one process.
pids_of() {
  case $1 in
    origin) m=$(cat "$WORK/origin.pid"); echo "$m $(pgrep -P "$m" | tr '\n' ' ')";;
    nginx) m=$(cat "$WORK/proxy.pid"); echo "$m $(pgrep -P "$m" | tr '\n' ' ')";;
    *) cat "$WORK/$1.pid";;
  esac
}
cpu_ticks() { # utime + stime of every pid given, in clock ticks
  local t=0
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo $t
}
TCK=$(getconf CLK_TCK)

run() { # name port threads conns peer -> "rps p50 p90 p99 non2xx cpu_us_per_req" (latencies in ms)
  local pids; pids=$(pids_of "$5")
  local c0; c0=$(cpu_ticks $pids)
  wrk -t"$3" -c"$4" -d"$DURATION" --latency "${HDRS[@]}" "http://127.0.0.1:$2$URLPATH" > "$WORK/$1.out"
  local c1; c1=$(cpu_ticks $pids)
  python3 - "$WORK/$1.out" "$((c1 - c0))" "$TCK" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
ticks, hz = int(sys.argv[2]), int(sys.argv[3])
def ms(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
total = int(re.search(r"(\d+) requests in", t).group(1))
p = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", t, re.M))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
cpu_us = ticks / hz * 1e6 / max(total, 1)
print(f"{rps:.0f} {ms(p['50']):.3f} {ms(p['90']):.3f} {ms(p['99']):.3f} {non2xx.group(1) if non2xx else 0} {cpu_us:.1f}")
PY
}

FEATURES="50 custom rules and a rate limit (examples/bench-policy.toml), 100,000 decisions, path normalization, request smuggling checks (framing), h2c sniffing, connection defence at its defaults when the binary has it, WAF off"
echo "palisade bench: threads=$THREADS connections=[$CONNS_LIST] duration=$DURATION rounds=$ROUNDS rules=$RULES decisions=$DECISIONS base=${BASE_REV}"
echo "on in palisade and base: $FEATURES"
printf "%-10s %-6s %-6s %10s %9s %9s %9s %8s %9s\n" peer conns round req/s p50_ms p90_ms p99_ms non2xx cpu_us/req
for c in $CONNS_LIST; do
  for r in $(seq 1 "$ROUNDS"); do
    for peer in $PEERS; do
      read -r rps p50 p90 p99 bad cpu < <(run "$peer-$c-$r" "$(port_of "$peer")" "$WRK_THREADS" "$c" "$peer")
      printf "%-10s %-6s %-6s %10s %9s %9s %9s %8s %9s\n" "$peer" "$c" "$r" "$rps" "$p50" "$p90" "$p99" "$bad" "$cpu"
      echo "$peer $c $rps $p50 $p90 $p99 $cpu" >> "$WORK/all.txt"
    done
  done
done
# Latency at light load (4 connections, one wrk thread): what a request pays
# when nothing is saturated, so the added latency of each proxy is visible.
for r in $(seq 1 "$ROUNDS"); do
  for peer in $PEERS; do
    read -r rps p50 p90 p99 bad cpu < <(run "$peer-light-$r" "$(port_of "$peer")" 1 4 "$peer")
    echo "$peer 4 $rps $p50 $p90 $p99 $cpu" >> "$WORK/light.txt"
  done
done
python3 - "$WORK/all.txt" "$WORK/light.txt" "$PEERS" <<'PY'
import sys, statistics as st
peers = sys.argv[3].split()
def medians(path):
    rows = [l.split() for l in open(path)]
    out = {}
    for r in rows:
        out.setdefault((r[0], r[1]), []).append([float(x) for x in r[2:]])
    return {k: [st.median(v[i] for v in vs) for i in range(5)] for k, vs in out.items()}
med = medians(sys.argv[1])
print()
print("median over rounds (req/s, latency, CPU µs per request of the proxy process):")
for conns in sorted({k[1] for k in med}, key=int):
    for p in peers:
        v = med.get((p, conns))
        if v:
            print(f"  c={conns:<4} {p:<9} {v[0]:>9.0f} req/s  p50 {v[1]:.3f} ms  p99 {v[3]:.3f} ms  cpu {v[4]:.1f} us/req")
    n, pa = med.get(("nginx", conns)), med.get(("palisade", conns))
    if n and pa:
        print(f"  c={conns:<4} palisade/nginx req/s {pa[0]/n[0]:.2f}x, CPU per request {pa[4]/n[4]:.2f}x nginx's")
    b = med.get(("base", conns))
    if b and pa:
        print(f"  c={conns:<4} palisade vs base: CPU per request {100*(pa[4]/b[4]-1):+.1f}%, req/s {100*(pa[0]/b[0]-1):+.1f}%")
lt = medians(sys.argv[2])
print()
print("light load (1 wrk thread, 4 connections), median over rounds:")
for p in peers:
    v = lt[(p, "4")]
    print(f"  {p:<9} {v[0]:>9.0f} req/s  p50 {v[1]:.3f} ms  p99 {v[3]:.3f} ms  cpu {v[4]:.1f} us/req")
o = lt[("origin", "4")]
for p in peers[1:]:
    v = lt[(p, "4")]
    print(f"added latency over direct at light load: {p} p50 {v[1]-o[1]:+.3f} ms, p99 {v[3]-o[3]:+.3f} ms")
PY
