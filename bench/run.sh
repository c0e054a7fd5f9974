#!/usr/bin/env bash
# Load benchmark, one run, same machine: (a) the origin direct, (b) Debian nginx
# as a plain proxy_pass, (c) palisade up with the 50-rule example policy, a
# rate limit and 100k active decisions. Same origin, same request, same wrk
# connection count; nginx worker_processes = palisade --threads.
#
# Usage: bench/run.sh [THREADS] [DURATION] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-1}
DURATION=${2:-10s}
CONNS=${3:-64}
ROUNDS=${4:-3}
WRK_THREADS=${WRK_THREADS:-2}

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

PALISADE_ADMIN_TOKEN=bench "$BIN" up --listen 127.0.0.1:$PALISADE_PORT --api 127.0.0.1:$API_PORT \
  --upstream http://127.0.0.1:$ORIGIN_PORT --policy examples/bench-policy.toml \
  --decisions "$WORK/decisions.jsonl" --threads "$THREADS" --data-dir "$WORK/data" \
  --events "$WORK/events.jsonl" 2>"$WORK/palisade.log" &
PIDS+=($!)

for port in $ORIGIN_PORT $NGINX_PORT $PALISADE_PORT; do
  for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done
DECISIONS=$(curl -s http://127.0.0.1:$API_PORT/metrics | awk '/^palisade_decisions_active/ {print $2}')
RULES=$(curl -s http://127.0.0.1:$API_PORT/metrics | awk '/^palisade_policy_rules/ {print $2}')

HDRS=(-H "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
      -H "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
      -H "Accept-Language: en-US,en;q=0.9" -H "Cookie: session=abc123; theme=dark")
URLPATH="/products/view?id=42&ref=home"

run() { # name port [threads conns] -> "rps p50 p90 p99 non2xx" (latencies in ms)
  wrk -t"${3:-$WRK_THREADS}" -c"${4:-$CONNS}" -d"$DURATION" --latency "${HDRS[@]}" "http://127.0.0.1:$2$URLPATH" > "$WORK/$1.out"
  python3 - "$WORK/$1.out" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", t, re.M))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
errs = re.search(r"Socket errors: (.*)", t)
print(f"{rps:.0f} {ms(p['50']):.3f} {ms(p['90']):.3f} {ms(p['99']):.3f} {non2xx.group(1) if non2xx else 0}")
PY
}

echo "palisade bench: threads=$THREADS connections=$CONNS duration=$DURATION rounds=$ROUNDS rules=$RULES decisions=$DECISIONS"
printf "%-10s %-6s %10s %9s %9s %9s %8s\n" peer round req/s p50_ms p90_ms p99_ms non2xx
declare -A BEST
for r in $(seq 1 "$ROUNDS"); do
  for peer in origin nginx palisade; do
    case $peer in origin) port=$ORIGIN_PORT;; nginx) port=$NGINX_PORT;; palisade) port=$PALISADE_PORT;; esac
    read -r rps p50 p90 p99 bad < <(run "$peer" "$port")
    printf "%-10s %-6s %10s %9s %9s %9s %8s\n" "$peer" "$r" "$rps" "$p50" "$p90" "$p99" "$bad"
    echo "$peer $rps $p50 $p90 $p99" >> "$WORK/all.txt"
  done
done
# Latency at light load (4 connections, one wrk thread): what a request pays
# when nothing is saturated, so the added latency of each proxy is visible.
for r in $(seq 1 "$ROUNDS"); do
  for peer in origin nginx palisade; do
    case $peer in origin) port=$ORIGIN_PORT;; nginx) port=$NGINX_PORT;; palisade) port=$PALISADE_PORT;; esac
    read -r rps p50 p90 p99 bad < <(run "$peer-light" "$port" 1 4)
    echo "$peer $rps $p50 $p90 $p99" >> "$WORK/light.txt"
  done
done
python3 - "$WORK/all.txt" "$WORK/light.txt" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for peer in ("origin", "nginx", "palisade"):
    rs = [r for r in rows if r[0] == peer]
    med[peer] = [st.median(float(r[i]) for r in rs) for i in range(1, 5)]
o, n, p = med["origin"], med["nginx"], med["palisade"]
print()
print("median over rounds:")
for k in ("origin", "nginx", "palisade"):
    v = med[k]; print(f"  {k:<9} {v[0]:>9.0f} req/s  p50 {v[1]:.3f} ms  p90 {v[2]:.3f} ms  p99 {v[3]:.3f} ms")
print(f"palisade/nginx requests/s: {p[0]/n[0]:.2f}x")
rows = [l.split() for l in open(sys.argv[2])]
lt = {}
for peer in ("origin", "nginx", "palisade"):
    rs = [r for r in rows if r[0] == peer]
    lt[peer] = [st.median(float(r[i]) for r in rs) for i in range(1, 5)]
print()
print("light load (1 wrk thread, 4 connections), median over rounds:")
for k in ("origin", "nginx", "palisade"):
    v = lt[k]; print(f"  {k:<9} {v[0]:>9.0f} req/s  p50 {v[1]:.3f} ms  p99 {v[3]:.3f} ms")
print(f"added latency over direct at light load: palisade p50 {lt['palisade'][1]-lt['origin'][1]:+.3f} ms, p99 {lt['palisade'][3]-lt['origin'][3]:+.3f} ms; nginx p50 {lt['nginx'][1]-lt['origin'][1]:+.3f} ms, p99 {lt['nginx'][3]-lt['origin'][3]:+.3f} ms")
PY
