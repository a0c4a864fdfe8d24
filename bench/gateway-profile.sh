#!/usr/bin/env bash
# The gateway's cost per request in instructions (valgrind's callgrind counts them, so the
# figure holds on a loaded, shared machine where requests/s do not), and its resident memory
# with 1,000 open client connections. The setup is bench/gateway.sh's: a trivial upstream
# (nginx `return 200`), `tessera serve --dev` as the issuer, one route needing a scope, one
# JWT repeated (the cached-validation path, (b) of the benchmark), production JSON logging.
#
#   cargo build --release -p tessera -p tessera-gateway && bench/gateway-profile.sh
#   REQUESTS=20000 bench/gateway-profile.sh
#   SKIP_CALLGRIND=1 bench/gateway-profile.sh     # the memory figure only
#   ANONYMOUS=1 bench/gateway-profile.sh          # an anonymous route: no validation (floor)
#
# Prints instructions per request and RSS; leaves the callgrind profile in $OUT (default
# /tmp/gateway.callgrind) for `callgrind_annotate --inclusive=yes $OUT`. Needs valgrind,
# nginx, python3, taskset (the gateway runs on CPU 0, the load on CPU 1).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tessera-target}"
BIN="${TESSERA_BIN:-$CARGO_TARGET_DIR/release/tessera}"
GW_BIN="${GW_BIN:-$CARGO_TARGET_DIR/release/tessera-gateway}"
read -r -a GW_ARGS <<< "${GW_ARGS:-}"
NGINX="${NGINX:-/usr/sbin/nginx}"
REQUESTS="${REQUESTS:-10000}"
OUT="${OUT:-/tmp/gateway.callgrind}"
[ -x "$BIN" ] && [ -x "$GW_BIN" ] || {
  echo "build first: cargo build --release -p tessera -p tessera-gateway" >&2; exit 1; }
for tool in valgrind callgrind_control python3 taskset "$NGINX"; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

LOAD_PIN=()
# shellcheck source=bench/gateway-common.sh
. bench/gateway-common.sh profile
start_upstream
start_issuer
TOKEN=$(curl -s -d grant_type=client_credentials -d client_id=bench-gateway \
  -d "client_secret=$SECRET" -d "resource=$AUDIENCE" -d scope=bench:read "$ISSUER/token" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

# ANONYMOUS=1: the route lets every request through unchecked (the token is still sent): the
# floor of what the proxying itself costs, without validation.
if [ -n "${ANONYMOUS:-}" ]; then ROUTE_AUTH='anonymous = true'; else ROUTE_AUTH=$SCOPED_ROUTE; fi
write_gateway_toml "$WORK/gateway.toml" "$GW_PORT" "$ROUTE_AUTH"

# REQUESTS requests over 4 keep-alive connections, each answer checked.
load() { # PORT N
  taskset -c 1 python3 - "$1" "$2" "$TOKEN" <<'EOF'
import http.client, sys, threading
port, n, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def worker(count):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(count):
        conn.request("GET", "/api/x", headers={"Authorization": f"Bearer {token}"})
        r = conn.getresponse(); r.read()
        if r.status != 200:
            sys.exit(f"status {r.status}")
threads = [threading.Thread(target=worker, args=(n // 4,)) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
EOF
}

# 1. Instructions per request, under callgrind (counting only the measured requests).
if [ -z "${SKIP_CALLGRIND:-}" ]; then
# Pinned to one CPU as in bench/gateway.sh, so that it runs as it runs there (single-threaded:
# `tessera_gateway::cli::runtime`).
taskset -c 0 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT" \
  "$GW_BIN" "${GW_ARGS[@]}" --config "$WORK/gateway.toml" 2>/dev/null & VG_PID=$!
PIDS+=($VG_PID)
wait_http "http://127.0.0.1:$GW_PORT/readyz" 200
load "$GW_PORT" 400   # warm-up: pools, caches, lazy statics
callgrind_control -i on "$VG_PID" >/dev/null
load "$GW_PORT" "$REQUESTS"
callgrind_control -i off "$VG_PID" >/dev/null
callgrind_control -d "$VG_PID" >/dev/null
sleep 1
kill "$VG_PID"; wait "$VG_PID" 2>/dev/null || true
TOTAL=$(for f in "$OUT"*; do callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'; done | awk '{s += $1} END {print s}')
echo "instructions: $TOTAL for $REQUESTS requests = $(( TOTAL / REQUESTS )) per request"
fi

# 2. Resident memory with 1,000 open connections (each made one authorized request), the
#    gateway running natively.
GW_PORT2=$(free_port)
write_gateway_toml "$WORK/gateway2.toml" "$GW_PORT2" "$ROUTE_AUTH"
taskset -c 0 "$GW_BIN" "${GW_ARGS[@]}" --config "$WORK/gateway2.toml" 2>/dev/null & GW_PID=$!
PIDS+=($GW_PID)
wait_http "http://127.0.0.1:$GW_PORT2/readyz" 200
load "$GW_PORT2" 2000
echo "RSS after 2,000 requests: $(awk '/VmRSS/ {print $2}' /proc/$GW_PID/status) kB"
echo "$TOKEN" > "$WORK/token.txt"
rss_at_1000 "$GW_PORT2" "$WORK/token.txt" "$GW_PID"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
