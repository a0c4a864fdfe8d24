#!/usr/bin/env bash
# Instructions the server executes per request, counted by callgrind: a figure that does not
# move with the machine's load (this 2-core machine is noisy; req/s A/Bs need rounds and still
# disagree by 10 %). Compare two builds in one go:
#
#   bench/instructions.sh OLD_BINARY NEW_BINARY [SCENARIO]   # SCENARIO: introspect-opaque
#                                                             # (default), introspect, opaque, es256
#
# Each binary serves `serve --dev` on a fresh SQLite database under valgrind; `tessera bench`
# (of that binary, 4 connections) warms it for 10 s, callgrind's counters are zeroed, 20 s are
# measured and dumped, and the dump's total is divided by the requests answered. Under valgrind
# the server runs ~50x slower, so a run takes about a minute. Needs valgrind.
set -euo pipefail
scenario="${3:-introspect-opaque}"
case "$scenario" in
  introspect-opaque) kind=introspect; flags=(--introspection --opaque-access-tokens) ;;
  introspect) kind=introspect; flags=(--introspection) ;;
  opaque) kind=client-credentials; flags=(--opaque-access-tokens) ;;
  es256) kind=client-credentials; flags=() ;;
  *) echo "unknown scenario $scenario" >&2; exit 2 ;;
esac
command -v valgrind >/dev/null || { echo "needs valgrind (Debian package valgrind)" >&2; exit 1; }

per_request() {
  local bin="$1" work port pid secret n ir
  work="$(mktemp -d)"
  export TESSERA_DATABASE_URL="sqlite://$work/tessera.db"
  "$bin" migrate >/dev/null
  secret="$("$bin" client create --name bench --client-id bench --scope bench:read \
    --default-scope bench:read --json "${flags[@]}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  (cd "$work" && exec env TESSERA_LOG=warn TESSERA_CLIENT_RATE_LIMIT_PER_SECOND=1000000 \
    TESSERA_ACCESS_TOKEN_SIGNING_ALG=ES256 valgrind --tool=callgrind \
    --callgrind-out-file="$work/callgrind.%p" "$bin" serve --dev --listen "127.0.0.1:$port" \
    --database-url "$TESSERA_DATABASE_URL" >"$work/server.log" 2>&1) &
  pid=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
  load() {
    TESSERA_BENCH_CLIENT_SECRET="$secret" "$bin" bench --issuer "http://127.0.0.1:$port" \
      --scenario "$kind" --client-id bench --connections 4 --warmup 0s --duration "$1" --json
  }
  load 10s >/dev/null
  callgrind_control -z "$pid" >/dev/null 2>&1
  n="$(load 20s | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests_ok"])')"
  callgrind_control -d "$pid" >/dev/null 2>&1
  sleep 1
  ir="$(callgrind_annotate "$work"/callgrind.*.1 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$work"
  echo "$((ir / n))"
}

old="$(per_request "$1")"
new="$(per_request "$2")"
python3 -c "print(f'$scenario: {$old:,} -> {$new:,} instructions per request (new/old {$new/$old:.3f})')"
