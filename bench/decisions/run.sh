#!/usr/bin/env bash
# Decisions at blocklist scale (issue 10): N ban decisions (one IPv4 address
# each) imported through the API of `palisade up` with `palisade decisions
# import`, then a restart on the same data dir. Reports:
#
# - import time (the API call, parse to published);
# - time until live on the edge (palisade_decisions_active reaches N, and a
#   listed address gets 403 through the edge);
# - RSS added to the process (edge table, in-process mesh log and control
#   plane view: three copies in `up`; an edge alone holds one);
# - the fail-static files (DATA_DIR/decisions.snap + decisions.log);
# - restart to serving: from the start of `palisade up` on the data dir to a
#   listed address answered 403 (the persisted table loaded and installed in
#   the edge; its replay into the fresh in-process mesh runs in the background).
#
# Then, when `nats-server` is on PATH, the same against a cluster (nats-server
# -js, `palisade control`, EDGES `palisade edge` nodes, 5 by default): import
# time, time until live on every edge, each edge's own RSS added (one copy of
# the table), and the first edge's restart to serving (its table loaded from
# DATA_DIR before it serves).
#
#   bench/decisions/run.sh [N=1000000] [EDGES=5]
#
# Targets: import ≤ 10 s, live ≤ 30 s, ≤ 100 MiB per edge, restart ≤ 2 s.
# Binary: $PALISADE_BIN, else target/release/palisade (an optimized build:
# `cargo build --release -p palisade-cli`). Loopback only.
set -euo pipefail
N=${1:-1000000}
EDGES=${2:-5}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${PALISADE_BIN:-$root/target/release/palisade}
[ -x "$bin" ] || { echo "build $bin first: cargo build --release -p palisade-cli" >&2; exit 1; }
tmp=$(mktemp -d /tmp/palisade-decisions.XXXXXX)
pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; [ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
port=$(free_port); api=$(free_port); origin=$(free_port)
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
rss() { awk '/VmRSS/{print $2}' "/proc/$pid/status"; }
active() { curl -s "http://127.0.0.1:$api/metrics" | awk '/^palisade_decisions_active /{print $2}'; }
status_of() { curl -s -o /dev/null -w '%{http_code}' -H "X-Forwarded-For: $1" "http://127.0.0.1:$port/"; }

# The blocklist: N distinct addresses spread over 1.0.0.0-223.255.255.255.
python3 - "$N" > "$tmp/list.txt" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout
for i in range(n):
    a = (0x01000000 + (i * 2654435761) % (0xE0000000 - 0x01000000)) & 0xffffffff
    out.write(f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}\n")
PY
sort -u "$tmp/list.txt" -o "$tmp/list.txt"
N=$(wc -l < "$tmp/list.txt")
probe=$(sed -n "$((N / 2))p" "$tmp/list.txt")

"$bin" demo-origin --listen "127.0.0.1:$origin" >/dev/null 2>&1 &
opid=$!
trap 'kill $opid 2>/dev/null || true; if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; [ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
start_up() {
  "$bin" up --upstream "http://127.0.0.1:$origin" --data-dir "$tmp/data" --events "$tmp/events.jsonl" \
    --listen "127.0.0.1:$port" --api "127.0.0.1:$api" --threads 2 --trusted-proxy 127.0.0.1/32 \
    --max-decisions $((N + 1000)) >>"$tmp/up.log" 2>&1 &
  pid=$!
}
t0=$(now)
start_up
for _ in $(seq 600); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
sleep 1
rss0=$(rss)
export PALISADE_API="http://127.0.0.1:$api" PALISADE_TOKEN
PALISADE_TOKEN=$(cat "$tmp/data/admin.token")

t1=$(now)
"$bin" decisions import "$tmp/list.txt" --duration 24h --reason "bench blocklist" > "$tmp/import.txt"
import_s=$(since "$t1")
until [ "$(active)" -ge "$N" ] 2>/dev/null; do sleep 0.05; done
until [ "$(status_of "$probe")" = 403 ]; do sleep 0.05; done
live_s=$(since "$t1")
sleep 5 # the persister's snapshot, then a steady state
rss1=$(rss)
snap=$(stat -c %s "$tmp/data/decisions.snap" 2>/dev/null || echo 0)
log=$(stat -c %s "$tmp/data/decisions.log" 2>/dev/null || echo 0)

kill "$pid"; wait "$pid" 2>/dev/null || true
t2=$(now)
start_up
until [ "$(status_of "$probe" 2>/dev/null)" = 403 ]; do sleep 0.02; done
restart_s=$(since "$t2")
restored=$(active)

echo "decisions: $N ($(cat "$tmp/import.txt"))"
printf 'import through the API: %.2f s (target ≤ 10 s)\n' "$import_s"
printf 'live on the edge (all %d active, a listed address 403): %.2f s after the import started (target ≤ 30 s)\n' "$N" "$live_s"
echo "RSS: $((rss0 / 1024)) MiB before, $((rss1 / 1024)) MiB after: +$(((rss1 - rss0) / 1024)) MiB for edge + mesh log + control view ($(((rss1 - rss0) * 1024 / N)) bytes per decision)"
echo "fail-static files: decisions.snap $((snap / 1048576)) MiB, decisions.log $((log / 1048576)) MiB"
printf 'restart to serving with %s decisions: %.2f s (target ≤ 2 s)\n' "$restored" "$restart_s"

command -v nats-server >/dev/null || { echo "(nats-server not on PATH: no cluster run)"; exit 0; }
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
nport=$(free_port); cport=$(free_port)
eports=(); mports=(); epids=()
for i in $(seq "$EDGES"); do eports+=("$(free_port)"); mports+=("$(free_port)"); done
nats-server -js -a 127.0.0.1 -p "$nport" -sd "$tmp/nats" >/dev/null 2>&1 &
npid=$!
trap 'kill $opid $npid ${cpid:-} ${epids[*]:-} 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
sleep 1
token=bench-admin-token-0123456789
PALISADE_ADMIN_TOKEN=$token "$bin" control --api "127.0.0.1:$cport" --nats "nats://127.0.0.1:$nport" \
  --data-dir "$tmp/control" --max-decisions $((N + 1000)) >"$tmp/control.log" 2>&1 &
cpid=$!
start_edge() { # index (0-based)
  local i=$1
  "$bin" edge --node-id "edge-$((i + 1))" --listen "127.0.0.1:${eports[$i]}" --upstream "http://127.0.0.1:$origin" \
    --data-dir "$tmp/edge-$i" --nats "nats://127.0.0.1:$nport" --threads 1 --trusted-proxy 127.0.0.1/32 \
    --metrics "127.0.0.1:${mports[$i]}" --events "$tmp/edge-$i-events.jsonl" >>"$tmp/edge-$i.log" 2>&1 &
  epids[$i]=$!
}
for i in $(seq 0 $((EDGES - 1))); do start_edge "$i"; done
for i in $(seq 0 $((EDGES - 1))); do
  for _ in $(seq 600); do curl -s -o /dev/null "http://127.0.0.1:${eports[$i]}/" && break; sleep 0.05; done
done
for _ in $(seq 600); do curl -s -o /dev/null "http://127.0.0.1:$cport/healthz" && break; sleep 0.05; done
sleep 1
erss() { awk '/VmRSS/{print $2}' "/proc/${epids[$1]}/status"; }
eactive() { curl -s "http://127.0.0.1:${mports[$1]}/metrics" | awk '/^palisade_decisions_active /{print $2}'; }
estatus() { curl -s -o /dev/null -w '%{http_code}' -H "X-Forwarded-For: $2" "http://127.0.0.1:${eports[$1]}/"; }
erss0=(); for i in $(seq 0 $((EDGES - 1))); do erss0+=("$(erss "$i")"); done
t1=$(now)
PALISADE_API="http://127.0.0.1:$cport" PALISADE_TOKEN=$token \
  "$bin" decisions import "$tmp/list.txt" --duration 24h --reason "bench blocklist" > "$tmp/cimport.txt"
cimport_s=$(since "$t1")
clive=()
for i in $(seq 0 $((EDGES - 1))); do
  until [ "$(eactive "$i")" -ge "$N" ] 2>/dev/null; do sleep 0.05; done
  until [ "$(estatus "$i" "$probe")" = 403 ]; do sleep 0.05; done
  clive+=("$(since "$t1")")
done
clive_s=${clive[$((EDGES - 1))]}
sleep 5
erss1=(); for i in $(seq 0 $((EDGES - 1))); do erss1+=("$(erss "$i")"); done
esnap=$(stat -c %s "$tmp/edge-0/decisions.snap" 2>/dev/null || echo 0)
kill "${epids[0]}"; wait "${epids[0]}" 2>/dev/null || true
t2=$(now)
start_edge 0
until [ "$(estatus 0 "$probe" 2>/dev/null)" = 403 ]; do sleep 0.02; done
erestart_s=$(since "$t2")
echo
echo "cluster (nats-server, palisade control, $EDGES palisade edge): $(cat "$tmp/cimport.txt")"
printf 'import through the control plane: %.2f s (target ≤ 10 s)\n' "$cimport_s"
printf 'live on all %d edges: %.2f s after the import started (each edge, in the order checked: %s; target ≤ 30 s)\n' "$EDGES" "$clive_s" "${clive[*]}"
for i in $(seq 0 $((EDGES - 1))); do
  echo "edge-$((i + 1)) RSS: $((erss0[i] / 1024)) MiB before, $((erss1[i] / 1024)) MiB after: +$(((erss1[i] - erss0[i]) / 1024)) MiB ($(((erss1[i] - erss0[i]) * 1024 / N)) bytes per decision; target ≤ 100 MiB for 1,000,000)"
done
echo "edge fail-static snapshot: $((esnap / 1048576)) MiB"
printf 'edge restart to serving with %s decisions: %.2f s (target ≤ 2 s)\n' "$(eactive 0)" "$erestart_s"
