# Sourced by bench/gateway.sh and bench/gateway-profile.sh: the setup both measure on.
#
#   - a scratch directory ($WORK) and every process started (PIDS) removed or stopped at exit;
#   - a trivial upstream, nginx `return 200` (nginx_conf, start_upstream);
#   - `tessera serve --dev` as the issuer with the client `bench-gateway` for the gateway's
#     audience (start_issuer: sets ISSUER, AUDIENCE, SECRET);
#   - the gateway's configuration, one route `/api` (write_gateway_toml);
#   - the resident memory of a gateway holding 1,000 open client connections (rss_at_1000).
#
# Expects BIN (the `tessera` binary: the issuer), GW_BIN (the gateway's binary, `tessera-gateway`)
# and NGINX set; LOAD_PIN (an array, e.g. (taskset -c 1)) pins the upstream and the issuer,
# empty for no pinning.

WORK="$(mktemp -d "/tmp/tessera-gw-$1.XXXXXX")"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # URL EXPECTED_STATUS
  for _ in $(seq 1 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = "$2" ] && return 0
    sleep 0.1
  done
  echo "no $2 from $1" >&2; exit 1
}

ISS_PORT=$(free_port); UP_PORT=$(free_port); GW_PORT=$(free_port)
ISSUER="http://127.0.0.1:$ISS_PORT"
AUDIENCE="http://127.0.0.1:$GW_PORT/api"

nginx_conf() { # DIR SERVER_BLOCK: one worker, no access log
  mkdir -p "$1"
  cat > "$1/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $1/body; proxy_temp_path $1/proxy; fastcgi_temp_path $1/fcgi;
  uwsgi_temp_path $1/uwsgi; scgi_temp_path $1/scgi;
  $2
}
EOF
}

start_upstream() {
  nginx_conf "$WORK/up" "server { listen 127.0.0.1:$UP_PORT; keepalive_requests 1000000; location / { return 200 \"ok\n\"; } }"
  "${LOAD_PIN[@]}" "$NGINX" -p "$WORK/up" -c "$WORK/up/nginx.conf" & PIDS+=($!)
}

# No per-client limit at /token: tokens are minted as fast as the server goes.
start_issuer() {
  (cd "$WORK" && TESSERA_LOG=warn TESSERA_CLIENT_RATE_LIMIT_PER_SECOND=1000000 \
    exec "${LOAD_PIN[@]}" "$BIN" serve --dev --listen "127.0.0.1:$ISS_PORT" >/dev/null 2>&1) & PIDS+=($!)
  wait_http "$ISSUER/readyz" 200
  SECRET=$(cd "$WORK" && "$BIN" client create --name bench-gateway --client-id bench-gateway \
    --grant-type client_credentials --auth-method client_secret_post --scope bench:read \
    --audience "$AUDIENCE" --json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
}

write_gateway_toml() { # FILE PORT ROUTE_AUTH (the route's audience/scopes or anonymous lines)
  cat > "$1" <<EOF
listen = "127.0.0.1:$2"
public_url = "http://127.0.0.1:$2"
issuers = ["$ISSUER"]
allow_private_networks = true
[[routes]]
name = "api"
path_prefix = "/api"
upstream = "http://127.0.0.1:$UP_PORT"
$3
EOF
}
SCOPED_ROUTE="audience = \"$AUDIENCE\"
scopes = [\"bench:read\"]"

# PORT TOKENS PID: opens 1,000 connections at once, each making one authorized request with
# the next line of the file TOKENS (cycled: one line is one token for all).
rss_at_1000() {
  python3 - "$1" "$2" "$3" <<'EOF'
import os, socket, sys, time
port, tokens, pid = int(sys.argv[1]), open(sys.argv[2]).read().split(), sys.argv[3]
conns = []
for i in range(1000):
    token = tokens[i % len(tokens)]
    request = (f"GET /api/x HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(request)
    conns.append(s)
for s in conns:
    if not s.recv(4096).startswith(b"HTTP/1.1 200"):
        sys.exit("a connection was not answered 200")
time.sleep(1)
status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status"))
rss = int(status["VmRSS"].split()[0])
print(f"gateway RSS with 1,000 open connections: {rss // 1024} MiB ({rss} kB)")
print("open descriptors:", len(os.listdir(f"/proc/{pid}/fd")), "threads:", status["Threads"].strip())
print("".join(l for l in open(f"/proc/{pid}/smaps_rollup") if l.split(":")[0] in ("Rss", "Anonymous", "Private_Dirty", "Shared_Clean", "Private_Clean")), end="")
EOF
}
