#!/usr/bin/env bash
# The gateway benchmark (issue 12): requests/s and p50/p99 of
#   (a) nginx proxy_pass alone, sent (b)'s requests, (b) the gateway with a cached JWT
#   validation (one token repeated), (c) the gateway with first-sight ES256 validation (every
#   request a new token), (d) the gateway on an anonymous route (no token checked: the proxying
#   alone), each in front of the same trivial upstream (nginx `return 200`);
# and the gateway's resident memory with 1,000 open client connections: on the gateway of the
# runs (its token memos full), and on a fresh one, each connection a client with its own token.
# The gateway is the `tessera-gateway` binary (`tessera gateway` runs the same code from the
# larger `tessera` binary; GW_BIN=…/tessera GW_ARGS=gateway measures that one).
#
#   cargo build --release -p tessera -p tessera-gateway && bench/gateway.sh
#   DURATION=10s CONNECTIONS=32 TOKENS=40000 bench/gateway.sh
#
# The proxy under test (nginx with one worker, or the gateway) is pinned to CPU 0; wrk, the
# upstream nginx and the authorization server to CPU 1. Every process started here is stopped
# at exit. Needs nginx, wrk, python3, taskset.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tessera-target}"
BIN="${TESSERA_BIN:-$CARGO_TARGET_DIR/release/tessera}"
GW_BIN="${GW_BIN:-$CARGO_TARGET_DIR/release/tessera-gateway}"
read -r -a GW_ARGS <<< "${GW_ARGS:-}"
NGINX="${NGINX:-/usr/sbin/nginx}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
TOKENS="${TOKENS:-40000}"
PROXY_CPU="${PROXY_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
[ -x "$BIN" ] && [ -x "$GW_BIN" ] || {
  echo "build first: cargo build --release -p tessera -p tessera-gateway" >&2; exit 1; }
for tool in wrk python3 taskset "$NGINX"; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

LOAD_PIN=(taskset -c "$LOAD_CPU")
# shellcheck source=bench/gateway-common.sh
. bench/gateway-common.sh bench
NGX_PORT=$(free_port)

# The upstream, and the nginx proxy under test (one worker, keep-alive to the upstream as the
# gateway's pool does).
start_upstream
nginx_conf "$WORK/ngx" "upstream u { server 127.0.0.1:$UP_PORT; keepalive 64; }
  server { listen 127.0.0.1:$NGX_PORT; keepalive_requests 100000;
    location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
taskset -c "$PROXY_CPU" "$NGINX" -p "$WORK/ngx" -c "$WORK/ngx/nginx.conf" & PIDS+=($!)

# The authorization server, a client for the gateway's audience, and the tokens.
start_issuer
echo "minting $TOKENS tokens…" >&2
python3 - "$ISS_PORT" "$SECRET" "$AUDIENCE" "$TOKENS" > "$WORK/tokens.txt" <<'EOF'
import http.client, json, sys, urllib.parse
port, secret, audience, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
conn = http.client.HTTPConnection("127.0.0.1", int(port))
body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": "bench-gateway",
    "client_secret": secret, "resource": audience, "scope": "bench:read"})
for _ in range(n):
    conn.request("POST", "/token", body, {"content-type": "application/x-www-form-urlencoded"})
    r = conn.getresponse(); doc = json.loads(r.read())
    if "access_token" not in doc:
        sys.exit(f"/token answered {r.status}: {doc}")
    print(doc["access_token"])
EOF
TOKEN=$(head -1 "$WORK/tokens.txt")

write_gateway_toml "$WORK/gateway.toml" "$GW_PORT" "$SCOPED_ROUTE"
# Production logging (the audit line of every request, JSON), written to /dev/null.
taskset -c "$PROXY_CPU" "$GW_BIN" "${GW_ARGS[@]}" --config "$WORK/gateway.toml" 2>/dev/null &
GW_PID=$!
PIDS+=($GW_PID)
wait_http "http://127.0.0.1:$GW_PORT/readyz" 200
ANON_PORT=$(free_port)
write_gateway_toml "$WORK/anonymous.toml" "$ANON_PORT" 'anonymous = true'
taskset -c "$PROXY_CPU" "$GW_BIN" "${GW_ARGS[@]}" --config "$WORK/anonymous.toml" 2>/dev/null &
PIDS+=($!)
wait_http "http://127.0.0.1:$ANON_PORT/readyz" 200
wait_http "http://127.0.0.1:$NGX_PORT/api/x" 200

cat > "$WORK/fresh.lua" <<EOF
local tokens = {}
for line in io.lines("$WORK/tokens.txt") do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i + 1
  if i > #tokens then i = 1 end
  return wrk.format("GET", "/api/x", { ["Authorization"] = "Bearer " .. tokens[i] })
end
EOF

run() { # NAME URL [wrk args…]
  local name=$1 url=$2; shift 2
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d2s "$@" "$url" >/dev/null  # warm-up
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url" > "$WORK/$name.txt"
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/$name.txt")
  p50=$(awk '$1=="50%" {print $2}' "$WORK/$name.txt")
  p99=$(awk '$1=="99%" {print $2}' "$WORK/$name.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$WORK/$name.txt"); non2xx=${non2xx:-0}
  printf '| %s | %s | %s | %s | %s |\n' "$name" "$rps" "$p50" "$p99" "$non2xx"
}

echo
echo "| setup | requests/s | p50 | p99 | non-2xx |"
echo "| --- | ---: | ---: | ---: | ---: |"
# nginx gets the same requests as (b), token included (it forwards it; the gateway does not).
run "(a) nginx proxy_pass" "http://127.0.0.1:$NGX_PORT/api/x" -H "Authorization: Bearer $TOKEN"
run "(b) gateway, cached JWT" "http://127.0.0.1:$GW_PORT/api/x" -H "Authorization: Bearer $TOKEN"
run "(c) gateway, first-sight ES256" "http://127.0.0.1:$GW_PORT/api/x" -s "$WORK/fresh.lua"
run "(d) gateway, anonymous route" "http://127.0.0.1:$ANON_PORT/api/x" -H "Authorization: Bearer $TOKEN"
echo
echo "tokens used in (c): $TOKENS distinct, cycled (the verified-token memory holds 16,384)"

# Memory with 1,000 open client connections, each having made one authorized request.
rss() { awk '/VmRSS/ {print $2}' "/proc/$GW_PID/status"; }
echo "gateway RSS after the runs: $(( $(rss) / 1024 )) MiB"
echo "on the gateway of the runs (one token):"
head -1 "$WORK/tokens.txt" > "$WORK/one-token.txt"
rss_at_1000 "$GW_PORT" "$WORK/one-token.txt" "$GW_PID"
FRESH_PORT=$(free_port)
write_gateway_toml "$WORK/fresh.toml" "$FRESH_PORT" "$SCOPED_ROUTE"
taskset -c "$PROXY_CPU" "$GW_BIN" "${GW_ARGS[@]}" --config "$WORK/fresh.toml" 2>/dev/null &
FRESH_PID=$!
PIDS+=($FRESH_PID)
wait_http "http://127.0.0.1:$FRESH_PORT/readyz" 200
echo "on a fresh gateway (1,000 clients, each its own token):"
rss_at_1000 "$FRESH_PORT" "$WORK/tokens.txt" "$FRESH_PID"
