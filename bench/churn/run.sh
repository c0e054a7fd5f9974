#!/usr/bin/env bash
# Churn (issue 10): N requests from N distinct client addresses (X-Forwarded-For
# from a trusted loopback proxy) through `palisade up`, each blocked by a rule
# and counted by a rate limit, with an escalation that bans a source after 2
# blocks, so addresses flow through rate-limit counters, escalation counters,
# events, decisions and metrics. Reports RSS before and after and the number of
# metric series. Targets: ≤ 2,000 series, ≤ 100 MiB RSS growth for 1,000,000.
#
#   bench/churn/run.sh [N=1000000] [CONNECTIONS=32]
#
# Binary: $PALISADE_BIN, else target/dist/palisade. Loopback only; the load
# stops once N requests were sent (each thread stops after its half), or
# after DURATION seconds (default 600), whichever comes first. POLICY=FILE
# replaces the policy below (to measure one part at a time); KEEP=1 keeps the
# temporary directory (logs, events, the SQLite store).
set -euo pipefail
N=${1:-1000000}
CONN=${2:-32}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${PALISADE_BIN:-$root/target/dist/palisade}
[ -x "$bin" ] || { echo "build $bin first: cargo build --profile dist -p palisade-cli" >&2; exit 1; }
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/palisade-churn.XXXXXX)
trap 'kill $pid 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"' EXIT
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
api=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
cat > "$tmp/policy.toml" <<'P'
[[rules]]
id = "no-admin"
expression = 'http.request.uri.path starts_with "/admin"'
action = "block"

[[rate_limits]]
id = "per-ip"
expression = 'true'
characteristics = ["ip.src"]
requests = 100
period = "10s"

[[escalations]]
id = "repeat"
source = "ip"
threshold = 2
window = "1m"
duration = "10m"
P
[ -n "${POLICY:-}" ] && cp "$POLICY" "$tmp/policy.toml"
"$bin" up --policy "$tmp/policy.toml" --data-dir "$tmp/data" --events "$tmp/events.jsonl" \
  --listen "127.0.0.1:$port" --api "127.0.0.1:$api" --threads 2 --trusted-proxy 127.0.0.1/32 \
  >/dev/null 2>"$tmp/up.log" &
pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
sleep 1
rss() { awk '/VmRSS/{print $2}' /proc/$pid/status; }
hwm() { awk '/VmHWM/{print $2}' /proc/$pid/status; }
series() { curl -s "http://127.0.0.1:$api/metrics" | grep -vc '^#'; }
metric() { curl -s "http://127.0.0.1:$api/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
rss0=$(rss); s0=$(series)
# Each wrk thread walks its own range of addresses (10.x.y.z from a counter),
# so every request comes from a new address until N.
cat > "$tmp/churn.lua" <<L
-- \`tid\` is a global: setup() (main state) numbers the threads and sets it
-- in each thread's own state.
local n = 0
tid = 0
local per = math.floor($N / 2)
setup = function(thread) thread:set("tid", tid); tid = tid + 1 end
request = function()
  local i = tid * per + n
  n = n + 1
  local ip = string.format("10.%d.%d.%d", math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)
  return wrk.format("GET", "/admin/x", {["X-Forwarded-For"] = ip, ["Host"] = "shop.example"})
end
-- Each thread stops once it sent its share (requests in flight are answered).
response = function()
  if n >= per then wrk.thread:stop() end
end
L
# RSS every 2 s while the load runs (and after), for the peak and the shape.
( while kill -0 $pid 2>/dev/null; do echo "$(date +%s) $(rss)"; sleep 2; done ) > "$tmp/rss.txt" 2>/dev/null &
sampler=$!
start=$(date +%s.%N)
wrk -t2 -c"$CONN" -d"${DURATION:-600}s" -s "$tmp/churn.lua" "http://127.0.0.1:$port/" > "$tmp/wrk.txt" 2>&1 &
wrkpid=$!
# A wrk thread that stopped does not end wrk (it sleeps for its duration):
# once the proxy counted N requests, SIGINT makes it report and exit.
while kill -0 $wrkpid 2>/dev/null; do
  sleep 1
  done_=$(curl -s "http://127.0.0.1:$api/metrics" | awk '/^palisade_requests_total/{s+=$2} END{printf "%d", s}')
  [ "${done_:-0}" -ge "$N" ] && { kill -INT $wrkpid 2>/dev/null || true; break; }
done
wait $wrkpid || true
took=$(echo "$(date +%s.%N) - $start" | bc)
sleep 3
rss1=$(rss); s1=$(series)
# Settled: once the control plane has stored what was in flight (RSS still
# for 4 s; at most 60 s more).
for _ in $(seq 15); do
  r=$(rss); sleep 4; d=$(( $(rss) - r )); [ "${d#-}" -le 512 ] && break
done
rss2=$(rss); peak=$(hwm)
kill $sampler 2>/dev/null || true
reqs=$(awk '/requests in/{print $1}' "$tmp/wrk.txt")
echo "requests: $reqs from distinct addresses in ${took%.*} s (N=$N, ${CONN} connections)"
echo "RSS: $((rss0/1024)) MiB before, $((rss1/1024)) MiB 3 s after the load: +$(((rss1-rss0)/1024)) MiB (target ≤ 100 MiB for 1,000,000); settled $((rss2/1024)) MiB, peak $((peak/1024)) MiB"
echo "metric series: $s0 before, $s1 after (target ≤ 2,000)"
echo "rate-limit counters: $(metric palisade_ratelimit_keys); events dropped by the edge: $(metric palisade_events_dropped_total)"
echo "decisions active: $(curl -s "http://127.0.0.1:$api/metrics" | awk '/^palisade_decisions_active/{print $2}')"
