#!/usr/bin/env bash
# Runs `tessera bench` against a fresh `tessera serve --dev` (SQLite, loopback) and prints a
# Markdown table. Bounded: every run stops by itself after warm-up + duration.
#
#   bench/run.sh                      # release build, 32 connections, 15 s after 3 s warm-up
#   CONNECTIONS=128 DURATION=15s WARMUP=3s bench/run.sh
#
# The server is pinned to CPU 0 and the load generator to CPU 1 when `taskset` exists and the
# machine has at least 2 CPUs (SERVER_CPU / BENCH_CPU override; set PIN=0 to not pin).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tessera-target}"
BIN="${TESSERA_BIN:-$CARGO_TARGET_DIR/release/tessera}"
CONNECTIONS="${CONNECTIONS:-32}"
DURATION="${DURATION:-15s}"
WARMUP="${WARMUP:-3s}"
SCENARIOS="${SCENARIOS:-es256 rs256 opaque introspect introspect-mix jwks-verify}"
SERVER_CPU="${SERVER_CPU:-0}"
BENCH_CPU="${BENCH_CPU:-1}"

[ -x "$BIN" ] || { echo "build first: cargo build --release -p tessera" >&2; exit 1; }
if [ "${PIN:-1}" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin_server=(taskset -c "$SERVER_CPU"); pin_bench=(taskset -c "$BENCH_CPU")
else
  pin_server=(); pin_bench=()
fi

WORK="$(mktemp -d)"
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap 'stop_server; rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# start_server ALG: a fresh data directory each time, so that every scenario starts alike.
start_server() {
  local alg="$1"
  DATA="$WORK/data-$alg-$RANDOM"; mkdir -p "$DATA"
  PORT="$(free_port)"; ISSUER="http://127.0.0.1:$PORT"
  export TESSERA_DATABASE_URL="sqlite://$DATA/tessera.db"
  # Clients go in before the server starts (the CLI writes the same SQLite file).
  "$BIN" migrate >/dev/null
  CC_SECRET="$("$BIN" client create --name bench-cc --client-id bench-cc --scope bench:read --default-scope bench:read --json | json_field client_secret)"
  OPAQUE_SECRET="$("$BIN" client create --name bench-opaque --client-id bench-opaque --scope bench:read --default-scope bench:read \
    --opaque-access-tokens --json | json_field client_secret)"
  INTRO_SECRET="$("$BIN" client create --name bench-introspect --client-id bench-introspect --scope bench:read --default-scope bench:read \
    --introspection --json | json_field client_secret)"
  (cd "$DATA" && exec env TESSERA_LOG=warn TESSERA_CLIENT_RATE_LIMIT_PER_SECOND=1000000 \
    TESSERA_ACCESS_TOKEN_SIGNING_ALG="$alg" \
    "${pin_server[@]}" "$BIN" serve --dev --listen "127.0.0.1:$PORT" \
    --database-url "sqlite://$DATA/tessera.db" >"$DATA/server.log" 2>&1) &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -sf "$ISSUER/.well-known/openid-configuration" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -sf "$ISSUER/.well-known/openid-configuration" >/dev/null
  sleep 1
  IDLE_RSS_KB="$(ps -o rss= -p "$SERVER_PID" | tr -d ' ')"
}

# bench LABEL SCENARIO CLIENT SECRET: one run, its JSON kept in $WORK/LABEL.json, and the
# server's RSS sampled half-way through the measured period.
bench() {
  local label="$1" scenario="$2" client="$3" secret="$4"
  local mid; mid="$(python3 -c "import sys; print(${WARMUP%s} + ${DURATION%s}/2)")"
  ( sleep "$mid"; ps -o rss= -p "$SERVER_PID" | tr -d ' ' >"$WORK/$label.rss" ) &
  local sampler=$!
  TESSERA_BENCH_CLIENT_SECRET="$secret" "${pin_bench[@]}" "$BIN" bench --issuer "$ISSUER" \
    --scenario "$scenario" --client-id "$client" --connections "$CONNECTIONS" \
    --duration "$DURATION" --warmup "$WARMUP" --json >"$WORK/$label.json"
  wait "$sampler" || true
  echo "$label: $(cat "$WORK/$label.json")" >&2
}

for s in $SCENARIOS; do
  case "$s" in
    es256) start_server ES256; bench es256 client-credentials bench-cc "$CC_SECRET" ;;
    rs256) start_server RS256; bench rs256 client-credentials bench-cc "$CC_SECRET" ;;
    opaque) start_server ES256; bench opaque client-credentials bench-opaque "$OPAQUE_SECRET" ;;
    introspect) start_server ES256; bench introspect introspect bench-introspect "$INTRO_SECRET" ;;
    introspect-mix) start_server ES256; bench introspect-mix introspect-mix bench-introspect "$INTRO_SECRET" ;;
    jwks-verify) start_server ES256; bench jwks-verify jwks-verify bench-cc "$CC_SECRET" ;;
    *) echo "unknown scenario $s" >&2; exit 2 ;;
  esac
  echo "$IDLE_RSS_KB" >"$WORK/$s.idle"
  stop_server
done

# The table.
python3 - "$WORK" $SCENARIOS <<'EOF'
import json, sys, os
work, labels = sys.argv[1], sys.argv[2:]
print("| run | scenario | conns | req/s (ok) | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | server RSS idle / load (MB) |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
def rss(name):
    try:
        return f"{int(open(os.path.join(work, name)).read().strip()) / 1024:.1f}"
    except Exception:
        return "?"
for label in labels:
    r = json.load(open(os.path.join(work, label + ".json")))
    l = r["latency_ms"]
    errors = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "none"
    load = "n/a (no server in loop)" if r["scenario"] == "jwks-verify" else rss(label + ".rss")
    print(f"| {label} | {r['scenario']} | {r['connections']} | {r['rps']:,.0f} | {l['p50']} | {l['p90']} | {l['p99']} | {l['p999']} | {l['max']} | {errors} | {rss(label + '.idle')} / {load} |")
EOF
