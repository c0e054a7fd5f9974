#!/usr/bin/env bash
# WAF load benchmark, one run, same machine, same origin, same requests:
#   nginx      Debian nginx as a plain proxy_pass (worker_processes THREADS)
#   modsec     the same nginx + libnginx-mod-http-modsecurity (libmodsecurity 3)
#              + Debian's modsecurity-crs (CRS 3.3.x), PL1, anomaly blocking,
#              SecRuleEngine On, request body access on
#   palisade   `palisade up --threads THREADS` with a policy whose only section
#              is [waf] (CRS at PL1, blocking, inbound threshold 5)
# Three request shapes, measured separately with wrk: a browser-like GET with
# query args and cookies, a 1 KiB urlencoded form POST, and an 8 KiB form POST
# sent chunked (Transfer-Encoding: chunked, eight 1 KiB chunks). Every stack is
# checked first: benign requests must get 200, attacks 403 (nginx+ModSecurity
# and palisade). Prints a markdown table: req/s, p99, ratios, RSS.
#
# Usage: bench/waf/run.sh [THREADS=1] [DURATION=8s] [CONNECTIONS=64] [ROUNDS=2]
# Env:   WRK_THREADS (2), WARMUP (3s), LIGHT_DURATION (5s; 0 skips the
#        one-connection latency run), PALISADE_CRS_DIR, SKIP_BUILD=1,
#        MODSEC_RESPONSE_BODY=off (default: as recommended, On),
#        PALISADE_BIN (default target/dist/palisade, the `dist` profile), KEEP_WORK=1,
#        PALISADE_FORCE=1 (measure palisade even if it fails the 403/200 checks),
#        PALISADE_BASELINE_BIN (another palisade binary, e.g. a build of main,
#        measured as a fourth stack "baseline" with the same policy)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
THREADS=${1:-${THREADS:-1}}
DURATION=${2:-${DURATION:-8s}}
CONNS=${3:-${CONNECTIONS:-64}}
ROUNDS=${4:-${ROUNDS:-2}}
WRK_THREADS=${WRK_THREADS:-2}
WARMUP=${WARMUP:-3s}
LIGHT_DURATION=${LIGHT_DURATION:-5s}

# --- packages ---------------------------------------------------------------
need=()
command -v nginx >/dev/null || need+=(nginx)
command -v wrk >/dev/null || need+=(wrk)
dpkg -s libnginx-mod-http-modsecurity >/dev/null 2>&1 || need+=(libnginx-mod-http-modsecurity)
dpkg -s modsecurity-crs >/dev/null 2>&1 || need+=(modsecurity-crs)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

MODSEC_SO=""
for f in /usr/lib/nginx/modules/ngx_http_modsecurity_module.so /usr/share/nginx/modules/ngx_http_modsecurity_module.so; do
  [ -f "$f" ] && { MODSEC_SO=$f; break; }
done
[ -n "$MODSEC_SO" ] || { echo "error: ngx_http_modsecurity_module.so not found" >&2; exit 1; }
# ModSecurity's recommended settings: /etc/modsecurity/modsecurity.conf-recommended
# where a package ships it (libapache2-mod-security2); Debian's nginx module
# ships the same file (libmodsecurity's modsecurity.conf-recommended) as
# /etc/nginx/modsecurity.conf and under /usr/share/nginx/docs/modsecurity/.
MODSEC_REC=""
for f in /etc/modsecurity/modsecurity.conf-recommended /etc/nginx/modsecurity.conf \
         /usr/share/nginx/docs/modsecurity/modsecurity.conf; do
  [ -f "$f" ] && { MODSEC_REC=$f; break; }
done
[ -n "$MODSEC_REC" ] || { echo "error: no modsecurity.conf-recommended found" >&2; exit 1; }
UNICODE_MAP=""
for f in "$(dirname "$MODSEC_REC")/unicode.mapping" /etc/nginx/unicode.mapping \
         /usr/share/nginx/docs/modsecurity/unicode.mapping /etc/modsecurity/unicode.mapping; do
  [ -f "$f" ] && { UNICODE_MAP=$f; break; }
done
DEB_CRS=/usr/share/modsecurity-crs/rules
DEB_CRS_SETUP=/etc/modsecurity/crs/crs-setup.conf
[ -f "$DEB_CRS_SETUP" ] || DEB_CRS_SETUP=/usr/share/modsecurity-crs/crs-setup.conf.example
[ -f "$DEB_CRS_SETUP" ] || { echo "error: no crs-setup.conf from modsecurity-crs" >&2; exit 1; }

if [ -n "${PALISADE_CRS_DIR:-}" ]; then CRS_DIR=$PALISADE_CRS_DIR
elif [ -d "$ROOT/../shared/crs/rules" ]; then CRS_DIR=$ROOT/../shared/crs/rules
else CRS_DIR=$DEB_CRS; fi
CRS_DIR=$(cd "$CRS_DIR" && pwd)
crs_version() { grep -ho "ver:'OWASP_CRS/[0-9.]*" "$1"/REQUEST-901-INITIALIZATION.conf 2>/dev/null | head -1 | cut -d/ -f2; }

# --- palisade binary ----------------------------------------------------------
BIN=${PALISADE_BIN:-$ROOT/target/dist/palisade}
PALISADE_OK=1; PALISADE_WHY=""
if [ "${SKIP_BUILD:-0}" != 1 ] && [ -z "${PALISADE_BIN:-}" ]; then
  echo "building palisade (cargo build --profile dist -p palisade-cli)..." >&2
  if ! cargo build --profile dist -p palisade-cli >/dev/null 2>&1; then
    # again, showing the errors (a first failure can be a tree caught mid-edit)
    BUILD_LOG=$(mktemp /tmp/palisade-wafbench-build.XXXXXX)
    if ! cargo build --profile dist -p palisade-cli 2>"$BUILD_LOG"; then
      tail -20 "$BUILD_LOG" >&2
      PALISADE_OK=0; PALISADE_WHY="cargo build failed"
    fi
    rm -f "$BUILD_LOG"
  fi
fi
[ -x "$BIN" ] || { PALISADE_OK=0; PALISADE_WHY="no binary at $BIN"; }

# --- work dir, ports, cleanup -------------------------------------------------
ORIGIN_PORT=18281; NGINX_PORT=18282; MODSEC_PORT=18283; PALISADE_PORT=18284; API_PORT=18285; MODSEC_CHECK_PORT=18286
BASE_PORT=18287; BASE_API_PORT=18288
BASE_BIN=${PALISADE_BASELINE_BIN:-}
for port in $ORIGIN_PORT $NGINX_PORT $MODSEC_PORT $PALISADE_PORT $API_PORT $MODSEC_CHECK_PORT $BASE_PORT $BASE_API_PORT; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "error: port $port is already in use (a previous run still alive?)" >&2; exit 1
  fi
done
WORK=$(mktemp -d /tmp/palisade-wafbench.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/logs" "$WORK/tmp" && chmod 1777 "$WORK/logs" "$WORK/tmp"
PAL_PID=""; BASE_PID=""
cleanup() {
  if [ -n "$PAL_PID" ]; then kill "$PAL_PID" 2>/dev/null || true; fi
  if [ -n "$BASE_PID" ]; then kill "$BASE_PID" 2>/dev/null || true; fi
  for n in origin nginx modsec modsec-check; do
    [ -f "$WORK/$n.pid" ] && kill "$(cat "$WORK/$n.pid")" 2>/dev/null || true
  done
  sleep 0.5
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# --- requests -----------------------------------------------------------------
HOST=shop.example.com
GET_PATH="/shop/search?q=running+shoes&category=sport&page=2&sort=price_asc"
POST_PATH="/shop/contact"
# Chrome 131 on Windows, navigating inside the shop.
cat > "$WORK/headers.txt" <<EOF
Host: $HOST
sec-ch-ua: "Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"
sec-ch-ua-mobile: ?0
sec-ch-ua-platform: "Windows"
Upgrade-Insecure-Requests: 1
User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7
Sec-Fetch-Site: same-origin
Sec-Fetch-Mode: navigate
Sec-Fetch-User: ?1
Sec-Fetch-Dest: document
Referer: https://$HOST/shop/
Accept-Encoding: gzip, deflate, br, zstd
Accept-Language: en-US,en;q=0.9,de;q=0.8
Cookie: sessionid=8f2c1e9a4b7d6c3e5f0a1b2c3d4e5f6a; csrftoken=Jx7kQ2mN9pR4sT6vW8yZ1aB3cD5eF7gH; prefs=lang-en_currency-EUR_theme-dark; _ga=GA1.1.1234567890.1732550400
EOF
python3 - "$WORK" "$HOST" "$POST_PATH" <<'PY'
import sys, urllib.parse
work, host, post_path = sys.argv[1:4]
fields = [
    ("name", "Jane Doe"),
    ("email", "jane.doe@example.com"),
    ("phone", "+1 555 0100"),
    ("address", "42 Baker Street, Apartment 3B"),
    ("city", "Springfield"),
    ("zip", "12345"),
    ("country", "US"),
    ("subject", "Question about my order"),
    ("order", "A-100234"),
    ("newsletter", "yes"),
    ("comment",
     "Hello, I ordered a pair of running shoes last week and the package arrived "
     "today in good condition. Unfortunately the shoes are a little too small for me, "
     "so I would like to exchange them for the next size up, if it is still in stock. "
     "The box is unopened apart from trying them on once indoors. Could you please tell "
     "me how the exchange works and whether I need to print a return label myself? "
     "I would also like to know how long the refund or exchange usually takes, because "
     "I am training for a race next month and would like to have the new pair in time. "
     "Thank you very much for your help and have a nice day. Best regards, Jane"),
]
body = urllib.parse.urlencode(fields)
pad = 1024 - len(body) - len("&ref=")
assert pad > 0, len(body)
body += "&ref=" + ("7c4a8d09ca3762af61e59520943dc26494f8941b" * 30)[:pad]
assert len(body) == 1024
open(f"{work}/post.body", "w").write(body)
headers = [l.split(": ", 1) for l in open(f"{work}/headers.txt").read().splitlines() if l]
def lua(method, extra, body=None):
    out = [f'wrk.method = "{method}"']
    for k, v in headers + extra:
        out.append(f"wrk.headers[ [[{k}]] ] = [[{v}]]")
    if body is not None:
        out.append(f"wrk.body = [[{body}]]")
    return "\n".join(out) + "\n"
open(f"{work}/get.lua", "w").write(lua("GET", []))
post_extra = [("Content-Type", "application/x-www-form-urlencoded"),
              ("Origin", f"https://{host}"), ("Cache-Control", "max-age=0")]
open(f"{work}/post.lua", "w").write(lua("POST", post_extra, body))
open(f"{work}/post-headers.txt", "w").write("".join(f"{k}: {v}\n" for k, v in post_extra))
# The 8 KiB form: the 1 KiB one eight times over (distinct field names), sent
# chunked in eight 1 KiB chunks. wrk adds a Content-Length to any wrk.body, so
# this script builds the raw request itself.
big = "&".join(f"p{i}_" + body.replace("&", f"&p{i}_") for i in range(8))
big = (big + "&pad=" + "x" * 8192)[:8192]
assert len(big) == 8192
open(f"{work}/post8k.body", "w").write(big)
chunks = "".join(f"{len(big[i:i + 1024]):x}\r\n{big[i:i + 1024]}\r\n" for i in range(0, 8192, 1024)) + "0\r\n\r\n"
head = "".join(f"{k}: {v}\r\n" for k, v in headers + post_extra + [("Transfer-Encoding", "chunked")])
raw = f"POST {post_path} HTTP/1.1\r\n{head}\r\n{chunks}"
lua_str = raw.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n")
open(f"{work}/post8k.lua", "w").write(f'local raw = "{lua_str}"\nrequest = function() return raw end\n')
PY
# wrk's own Host header would be the numeric IP (CRS 920350 scores that); the
# lua scripts set Host: shop.example.com and every check below sends the same.

# --- origin and the two nginx stacks -----------------------------------------
BODY=$(head -c 600 /dev/zero | tr '\0' 'x')
NGX_COMMON="
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $WORK/tmp/client_body;
  proxy_temp_path $WORK/tmp/proxy;
  fastcgi_temp_path $WORK/tmp/fastcgi;
  uwsgi_temp_path $WORK/tmp/uwsgi;
  scgi_temp_path $WORK/tmp/scgi;"
cat > "$WORK/origin.conf" <<CONF
worker_processes 1;
pid $WORK/origin.pid;
error_log $WORK/logs/origin-error.log warn;
events { worker_connections 4096; }
http {$NGX_COMMON
  server {
    listen 127.0.0.1:$ORIGIN_PORT reuseport;
    location / { default_type text/html; return 200 "$BODY"; }
  }
}
CONF

# multi_accept: a worker that spends milliseconds per request (ModSecurity)
# would otherwise accept wrk's 64 connections one per event-loop turn, and the
# last ones wait a second or more: that start-up transient, not the steady
# state, would be the p99.
proxy_conf() { # name port module-line server-lines [log-level]
  cat > "$WORK/$1.conf" <<CONF
$3
worker_processes $THREADS;
pid $WORK/$1.pid;
error_log $WORK/logs/$1-error.log ${5:-warn};
events { worker_connections 4096; multi_accept on; }
http {$NGX_COMMON
  upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 256; }
  server {
    listen 127.0.0.1:$2 reuseport;
    error_log $WORK/logs/$1-error.log ${5:-warn};
    $4
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
}
proxy_conf nginx $NGINX_PORT "" ""
MODSEC_SERVER="modsecurity on; modsecurity_rules_file $WORK/modsec/main.conf;"
proxy_conf modsec $MODSEC_PORT "load_module $MODSEC_SO;" "$MODSEC_SERVER"
# A separate, short-lived copy of the modsec stack that logs at level info
# (where the connector reports every matched rule), used only to check that
# the benign requests match no rule. Not a second server in the measured
# nginx: every server with rules holds its own copy of them (+17 MB RSS).
proxy_conf modsec-check $MODSEC_CHECK_PORT "load_module $MODSEC_SO;" "$MODSEC_SERVER" info

# ModSecurity: the recommended settings, copied, with the engine switched from
# DetectionOnly to On and its files moved into the work dir; then Debian's
# crs-setup.conf, PL1 and the inbound threshold made explicit, and the rules.
mkdir -p "$WORK/modsec"
sed -e 's/^SecRuleEngine .*/SecRuleEngine On/' \
    -e "s|^SecAuditLog .*|SecAuditLog $WORK/logs/modsec_audit.log|" \
    -e "s|^SecTmpDir .*|SecTmpDir $WORK/tmp|" \
    -e "s|^SecDataDir .*|SecDataDir $WORK/tmp|" \
    -e 's/^SecStatusEngine .*/SecStatusEngine Off/' \
    "$MODSEC_REC" > "$WORK/modsec/modsecurity.conf"
# MODSEC_RESPONSE_BODY=off: no response body inspection (the recommended file
# turns it on; a request-only WAF in front pays nothing for responses).
case ${MODSEC_RESPONSE_BODY:-recommended} in
  off|Off|0) sed -i 's/^SecResponseBodyAccess .*/SecResponseBodyAccess Off/' "$WORK/modsec/modsecurity.conf";;
esac
MODSEC_RESP=$(awk '/^SecResponseBodyAccess/ {print $2}' "$WORK/modsec/modsecurity.conf")
[ -n "$UNICODE_MAP" ] && cp "$UNICODE_MAP" "$WORK/modsec/unicode.mapping"
grep -q '^SecRequestBodyAccess On' "$WORK/modsec/modsecurity.conf" || echo 'SecRequestBodyAccess On' >> "$WORK/modsec/modsecurity.conf"
cat > "$WORK/modsec/main.conf" <<CONF
Include $WORK/modsec/modsecurity.conf
Include $DEB_CRS_SETUP
SecAction "id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level=1"
SecAction "id:900110,phase:1,nolog,pass,t:none,setvar:tx.inbound_anomaly_score_threshold=5,setvar:tx.outbound_anomaly_score_threshold=4"
Include $DEB_CRS/*.conf
CONF

for n in origin nginx modsec modsec-check; do
  if ! nginx -e "$WORK/logs/$n-error.log" -p "$WORK" -c "$WORK/$n.conf" 2>"$WORK/logs/$n-start.log"; then
    echo "error: nginx ($n) did not start:" >&2; cat "$WORK/logs/$n-start.log" "$WORK/logs/$n-error.log" >&2 2>/dev/null; exit 1
  fi
done

# --- palisade -----------------------------------------------------------------
cat > "$WORK/palisade-policy.toml" <<EOF
# bench/waf: the WAF section alone, no custom rules.
[waf]
crs_dir = "$CRS_DIR"
mode = "block"
blocking_paranoia_level = 1
inbound_threshold = 5
EOF
# CRS 3.x has a few PCRE-only rules (look-around, back-references): the
# engine leaves them out (and logs each) only when asked to.
if ! grep -qs "OWASP_CRS/4\." "$CRS_DIR/REQUEST-901-INITIALIZATION.conf"; then
  echo "skip_unsupported_rules = true" >> "$WORK/palisade-policy.toml"
fi
if [ $PALISADE_OK = 1 ]; then
  if ! "$BIN" policy validate "$WORK/palisade-policy.toml" >"$WORK/logs/validate.log" 2>&1; then
    echo "warning: palisade policy validate rejects the [waf] policy:" >&2
    sed 's/^/  /' "$WORK/logs/validate.log" >&2
  fi
  PALISADE_ADMIN_TOKEN=bench "$BIN" up --listen 127.0.0.1:$PALISADE_PORT --api 127.0.0.1:$API_PORT \
    --upstream http://127.0.0.1:$ORIGIN_PORT --policy "$WORK/palisade-policy.toml" \
    --threads "$THREADS" --data-dir "$WORK/data" --events "$WORK/logs/events.jsonl" \
    2>"$WORK/logs/palisade.log" &
  PAL_PID=$!
  if [ -n "$BASE_BIN" ]; then
    PALISADE_ADMIN_TOKEN=bench "$BASE_BIN" up --listen 127.0.0.1:$BASE_PORT --api 127.0.0.1:$BASE_API_PORT \
      --upstream http://127.0.0.1:$ORIGIN_PORT --policy "$WORK/palisade-policy.toml" \
      --threads "$THREADS" --data-dir "$WORK/base-data" --events "$WORK/logs/base-events.jsonl" \
      2>"$WORK/logs/baseline.log" &
    BASE_PID=$!
  fi
fi

wait_up() { # port [pid] -- up to 60 s (palisade compiles CRS at start)
  for _ in $(seq 1 600); do
    [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null && return 1
    curl -s -o /dev/null -H "Host: $HOST" "http://127.0.0.1:$1/" && return 0
    sleep 0.1
  done
  return 1
}
for port in $ORIGIN_PORT $NGINX_PORT $MODSEC_PORT $MODSEC_CHECK_PORT; do
  wait_up $port || { echo "error: nothing answers on $port" >&2; exit 1; }
done
if [ $PALISADE_OK = 1 ] && ! wait_up $PALISADE_PORT "$PAL_PID"; then
  PALISADE_OK=0; PALISADE_WHY="palisade up did not start (or exited) with the [waf] policy"
  echo "error: $PALISADE_WHY; its log:" >&2; tail -20 "$WORK/logs/palisade.log" | sed 's/^/  /' >&2
fi
BASE_OK=0
if [ -n "$BASE_PID" ]; then
  if wait_up $BASE_PORT "$BASE_PID"; then BASE_OK=1
  else echo "error: the baseline palisade ($BASE_BIN) did not start; its log:" >&2; tail -20 "$WORK/logs/baseline.log" | sed 's/^/  /' >&2; fi
fi

# --- enforcement checks -------------------------------------------------------
code() { # port method path [body-file]
  local args=(-s -o /dev/null -w '%{http_code}' --max-time 5 -H @"$WORK/headers.txt")
  [ "$2" = POST ] && args+=(-H @"$WORK/post-headers.txt" --data-binary @"$4")
  [ "${5:-}" = chunked ] && args+=(-H "Transfer-Encoding: chunked")
  curl "${args[@]}" "http://127.0.0.1:$1$3" || true
}
printf '%s' "name=Jane&comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E" > "$WORK/attack.body"
SQLI="/shop/search?q=1%27%20OR%20%271%27%3D%271"
XSS="/shop/search?x=%3Cscript%3Ealert(1)%3C%2Fscript%3E"
check() { # name port expect-attack-code -> prints a line, returns 1 on mismatch
  local g p s x b ok=0
  g=$(code "$2" GET "$GET_PATH"); p=$(code "$2" POST "$POST_PATH" "$WORK/post.body")
  c=$(code "$2" POST "$POST_PATH" "$WORK/post8k.body" chunked)
  s=$(code "$2" GET "$SQLI"); x=$(code "$2" GET "$XSS"); b=$(code "$2" POST "$POST_PATH" "$WORK/attack.body")
  printf '  %-9s benign GET %s, benign POST %s, benign chunked 8K POST %s | sqli GET %s, xss GET %s, xss POST body %s\n' "$1" "$g" "$p" "$c" "$s" "$x" "$b"
  [ "$g" = 200 ] && [ "$p" = 200 ] && [ "$c" = 200 ] || ok=1
  [ -z "$3" ] || { [ "$s" = "$3" ] && [ "$x" = "$3" ] && [ "$b" = "$3" ]; } || ok=1
  return $ok
}
echo "enforcement checks (expect benign 200, attacks 403 behind a WAF):"
check nginx $NGINX_PORT "" || { echo "error: plain nginx does not answer 200 to the benign requests" >&2; exit 1; }
check modsec $MODSEC_PORT 403 || { echo "error: nginx+ModSecurity does not enforce as expected (see above)" >&2; tail -5 "$WORK/logs/modsec-error.log" >&2; exit 1; }
# The benign requests must not match any CRS rule at all (a score below the
# threshold would still mean extra work and a skewed comparison).
code $MODSEC_CHECK_PORT GET /warm >/dev/null; sleep 0.2
MARK=$(wc -l < "$WORK/logs/modsec-check-error.log")
code $MODSEC_CHECK_PORT GET "$GET_PATH" >/dev/null; code $MODSEC_CHECK_PORT POST "$POST_PATH" "$WORK/post.body" >/dev/null
code $MODSEC_CHECK_PORT GET "$SQLI" >/dev/null; sleep 0.2
HITS=$(tail -n +"$((MARK + 1))" "$WORK/logs/modsec-check-error.log" | grep -o 'ModSecurity: Warning.*\[id "[0-9]*"\]' | grep -o '\[id "[0-9]*"\]' | tr -dc '0-9\n' | sort -u | tr '\n' ' ')
BENIGN_HITS=$(tail -n +"$((MARK + 1))" "$WORK/logs/modsec-check-error.log" | grep 'ModSecurity: Warning' | grep -v 'request: "GET /shop/search?q=1%27' | grep -c . || true)
if [ -z "$HITS" ]; then
  echo "warning: ModSecurity logged no rule match for the attack; cannot tell whether the benign requests match rules" >&2
elif [ "$BENIGN_HITS" != 0 ]; then
  echo "warning: CRS rules matched the benign requests under ModSecurity (score below the threshold, but the figures include that work):" >&2
  tail -n +"$((MARK + 1))" "$WORK/logs/modsec-check-error.log" | grep 'ModSecurity: Warning' | grep -v 'request: "GET /shop/search?q=1%27' \
    | grep -o '\[id "[0-9]*"\].*\[msg "[^"]*"\]' | sed 's/\] \[file[^]]*\]//; s/\[line[^]]*\] //; s/\[rev[^]]*\] //' | sort | uniq -c >&2
else
  echo "  modsec    benign requests matched no CRS rule (the attack matched rules $HITS)"
fi
kill -QUIT "$(cat "$WORK/modsec-check.pid")" 2>/dev/null || true
PALISADE_NOTE=""
if [ $PALISADE_OK = 1 ] && ! check palisade $PALISADE_PORT 403; then
  PALISADE_WHY="palisade does not enforce CRS (an attack not answered 403 or a benign request not 200; see above)"
  if [ "${PALISADE_FORCE:-0}" = 1 ]; then
    PALISADE_NOTE="⚠ measured anyway (PALISADE_FORCE=1) although it failed the enforcement checks"
    echo "warning: $PALISADE_WHY; measuring it anyway (PALISADE_FORCE=1)" >&2
  else
    PALISADE_OK=0
    echo "error: $PALISADE_WHY; skipping palisade (PALISADE_FORCE=1 measures it anyway)" >&2
  fi
fi
if [ $PALISADE_OK != 1 ] && [ -n "$PAL_PID" ]; then kill "$PAL_PID" 2>/dev/null || true; PAL_PID=""; fi
if [ $BASE_OK = 1 ]; then
  # The baseline may predate chunked-body inspection: only the benign requests must pass.
  check baseline $BASE_PORT "" || { echo "warning: the baseline does not answer the benign requests with 200" >&2; }
fi

# --- load ---------------------------------------------------------------------
STACKS=(nginx modsec); [ $PALISADE_OK = 1 ] && STACKS+=(palisade); [ $BASE_OK = 1 ] && STACKS+=(baseline)
SHAPES=(get post post8k)
port_of() { case $1 in nginx) echo $NGINX_PORT;; modsec) echo $MODSEC_PORT;; palisade) echo $PALISADE_PORT;; baseline) echo $BASE_PORT;; esac; }
path_of() { case $1 in get) echo "$GET_PATH";; post|post8k) echo "$POST_PATH";; esac; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
worker_pid() { pgrep -P "$(cat "$WORK/$1.pid")" | head -1; }
pid_of() { case $1 in palisade) echo "$PAL_PID";; baseline) echo "$BASE_PID";; *) worker_pid "$1";; esac; }

run() { # out stack shape duration [wrk-threads connections]
  wrk -t"${5:-$WRK_THREADS}" -c"${6:-$CONNS}" -d"$4" --latency -s "$WORK/$3.lua" \
    "http://127.0.0.1:$(port_of "$2")$(path_of "$3")" > "$1"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; } # utime+stime, all threads
parse() { # wrk-output -> "rps p50 p99 non2xx sockerr requests"
  python3 - "$1" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", t, re.M))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
err = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
n = re.search(r"(\d+) requests in", t).group(1)
print(f"{rps:.0f} {ms(p['50']):.3f} {ms(p['99']):.3f} {bad.group(1) if bad else 0} {sum(map(int, err.groups())) if err else 0} {n}")
PY
}

echo
echo "warmup ($WARMUP per stack and shape)..."
declare -A RSS_WARM
for s in "${STACKS[@]}"; do
  for shape in "${SHAPES[@]}"; do run "$WORK/warm-$s-$shape.out" "$s" "$shape" "$WARMUP"; done
  RSS_WARM[$s]=$(rss_kib "$(pid_of "$s")")
done

echo "measuring: threads=$THREADS connections=$CONNS duration=$DURATION rounds=$ROUNDS wrk_threads=$WRK_THREADS"
printf '  %-9s %-5s %-6s %10s %9s %9s %7s %7s %9s\n' stack shape round req/s p50_ms p99_ms non2xx sockerr cpu_us/req
: > "$WORK/all.txt"
for r in $(seq 1 "$ROUNDS"); do
  for shape in "${SHAPES[@]}"; do
    for s in "${STACKS[@]}"; do
      pid=$(pid_of "$s"); c0=$(cpu_ticks "$pid")
      run "$WORK/$s-$shape-$r.out" "$s" "$shape" "$DURATION"
      c1=$(cpu_ticks "$pid")
      read -r rps p50 p99 bad err n < <(parse "$WORK/$s-$shape-$r.out")
      cpu_us=$(( (c1 - c0) * 1000000 / $(getconf CLK_TCK) / (n > 0 ? n : 1) ))
      printf '  %-9s %-5s %-6s %10s %9s %9s %7s %7s %9s\n' "$s" "$shape" "$r" "$rps" "$p50" "$p99" "$bad" "$err" "$cpu_us"
      echo "$s $shape $rps $p50 $p99 $bad $err $n $((c1 - c0))" >> "$WORK/all.txt"
    done
  done
done
: > "$WORK/rss.txt"
for s in "${STACKS[@]}"; do echo "$s ${RSS_WARM[$s]} $(rss_kib "$(pid_of "$s")")" >> "$WORK/rss.txt"; done
# One connection, one wrk thread: no queueing, so the latency is what one
# request pays going through each stack (the WAF's own cost shows directly).
: > "$WORK/light.txt"
if [ "$LIGHT_DURATION" != 0 ]; then
  echo "one connection ($LIGHT_DURATION):"
  for shape in "${SHAPES[@]}"; do
    for s in "${STACKS[@]}"; do
      run "$WORK/$s-$shape-light.out" "$s" "$shape" "$LIGHT_DURATION" 1 1
      read -r rps p50 p99 bad err _ < <(parse "$WORK/$s-$shape-light.out")
      printf '  %-9s %-5s %-6s %10s %9s %9s %7s %7s\n' "$s" "$shape" "c1" "$rps" "$p50" "$p99" "$bad" "$err"
      echo "$s $shape $rps $p50 $p99 $bad $err" >> "$WORK/light.txt"
    done
  done
fi

echo
echo "## WAF benchmark ($(date -u +%Y-%m-%d), $(nproc) cores, threads=$THREADS, wrk -t$WRK_THREADS -c$CONNS -d$DURATION, $ROUNDS rounds, medians)"
echo
echo "- nginx $(nginx -v 2>&1 | cut -d/ -f2); ModSecurity: libmodsecurity $(dpkg-query -W -f='${Version}' libmodsecurity3 2>/dev/null), connector $(dpkg-query -W -f='${Version}' libnginx-mod-http-modsecurity 2>/dev/null), CRS $(crs_version "$DEB_CRS") ($DEB_CRS), settings from $MODSEC_REC (SecRuleEngine On, SecRequestBodyAccess On, SecResponseBodyAccess ${MODSEC_RESP:-?})"
if [ $PALISADE_OK = 1 ]; then
  echo "- palisade: $BIN, CRS $(crs_version "$CRS_DIR") ($CRS_DIR)${PALISADE_NOTE:+ — $PALISADE_NOTE}"
  if [ "$(crs_version "$CRS_DIR")" != "$(crs_version "$DEB_CRS")" ]; then
    echo "- ⚠ the two WAFs run different CRS releases ($(crs_version "$DEB_CRS") vs $(crs_version "$CRS_DIR")): PALISADE_CRS_DIR=$DEB_CRS runs palisade on the same rules"
  fi
else
  echo "- palisade: SKIPPED — $PALISADE_WHY"
fi
[ $BASE_OK = 1 ] && echo "- baseline: $BASE_BIN, same policy"
echo "- GET: \`$GET_PATH\` + $(grep -c . "$WORK/headers.txt") Chrome headers incl. 4 cookies; POST: \`$POST_PATH\`, $(wc -c < "$WORK/post.body")-byte urlencoded form; POST 8K chunked: $(wc -c < "$WORK/post8k.body")-byte form, Transfer-Encoding: chunked, 1 KiB chunks"
echo
WRK_THREADS=$WRK_THREADS CONNS=$CONNS python3 - "$WORK/all.txt" "$WORK/rss.txt" "$PALISADE_OK" "$WORK/light.txt" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
light = {(l.split()[0], l.split()[1]): l.split() for l in open(sys.argv[4])}
rss = {l.split()[0]: (int(l.split()[1]), int(l.split()[2])) for l in open(sys.argv[2])}
pal = sys.argv[3] == "1"
import os
WT, C = os.environ["WRK_THREADS"], os.environ["CONNS"]
CLK = os.sysconf("SC_CLK_TCK")
names = {"nginx": "nginx proxy", "modsec": "nginx + ModSecurity + CRS", "palisade": "palisade + CRS", "baseline": "palisade baseline + CRS"}
SHAPES = ("get", "post", "post8k")
med, flags = {}, {}
for s in names:
    for shape in SHAPES:
        rs = [r for r in rows if r[0] == s and r[1] == shape]
        if not rs:
            continue
        med[s, shape] = (st.median(float(r[2]) for r in rs), st.median(float(r[4]) for r in rs),
                         sum(int(r[8]) for r in rs) / CLK * 1e6 / max(1, sum(int(r[7]) for r in rs)))
        flags[s, shape] = sum(int(r[5]) + int(r[6]) for r in rs)
def cell(s, shape):
    if (s, shape) not in med:
        return ["n/a"] * 4
    rps, p99, cpu = med[s, shape]
    f = " ⚠" if flags[s, shape] else ""
    l = light.get((s, shape))
    lc = "n/a" if l is None else f"{float(l[3]):.3f} / {float(l[4]):.3f} ms" + (" ⚠" if int(l[5]) + int(l[6]) else "")
    return [f"{rps:,.0f}{f}", f"{p99:.2f} ms", f"{cpu:,.0f} µs", lc]
labels = {"get": "GET", "post": "POST", "post8k": "POST 8K chunked"}
cols = [f"{labels[sh]} {c}" for sh in SHAPES for c in ("req/s", "p99", "CPU/req", "p50 / p99, 1 conn")]
print("| stack | " + " | ".join(cols) + " | RSS after warmup | RSS at end |")
print("|---|" + "---|" * (len(cols) + 2))
for s, label in names.items():
    if s in rss:
        w, e = rss[s]
        r = [f"{w/1024:.1f} MiB", f"{e/1024:.1f} MiB"]
    else:
        r = ["n/a", "n/a"]
    if s not in rss:
        continue
    print("| " + " | ".join([label] + [c for sh in SHAPES for c in cell(s, sh)] + r) + " |")
def ratio(a, b):
    out = []
    for shape in SHAPES:
        if (a, shape) in med and (b, shape) in med:
            out += [f"{med[a, shape][i] / med[b, shape][i]:.2f}×" for i in range(3)]
        else:
            out += ["n/a"] * 3
        la, lb = light.get((a, shape)), light.get((b, shape))
        out += [f"{float(la[3]) / float(lb[3]):.2f}× / {float(la[4]) / float(lb[4]):.2f}×" if la and lb else "n/a"]
    if a in rss and b in rss:
        out += [f"{rss[a][0] / rss[b][0]:.2f}×", f"{rss[a][1] / rss[b][1]:.2f}×"]
    else:
        out += ["n/a", "n/a"]
    return out
print("| **palisade / nginx+ModSecurity** | " + " | ".join(ratio("palisade", "modsec")) + " |")
print("| **palisade / nginx** | " + " | ".join(ratio("palisade", "nginx")) + " |")
print("| nginx+ModSecurity / nginx | " + " | ".join(ratio("modsec", "nginx")) + " |")
if "baseline" in rss:
    print("| **palisade / baseline** | " + " | ".join(ratio("palisade", "baseline")) + " |")
print()
print(f"req/s and p99: wrk -t{WT} -c{C}, median over rounds; at saturation p99 is mostly queueing (≈ connections / throughput).")
print("1 conn: wrk -t1 -c1, no queueing: the latency one request pays through the stack.")
print("CPU/req: user+system CPU of the nginx worker / the palisade process over the saturated runs, divided by requests (origin and wrk not counted); less sensitive to other load on the machine than req/s.")
print("RSS: VmRSS of the nginx worker process (master not counted) and of the whole `palisade up` process.")
if any(flags.values()):
    print("⚠ = some responses were not 2xx/3xx or wrk saw socket errors: that figure is not valid.")
PY
