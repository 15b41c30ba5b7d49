#!/usr/bin/env bash
# Two Tessera nodes on one PostgreSQL and one Redis behind nginx (Debian's package): a round-robin
# upstream of both nodes and the README's forward-auth recipe in front of a tiny test API. The
# scenarios (tests/twonode/scenarios.py) run the OAuth flows and key checks through nginx and show the
# shared rate limits, a signing-key rotation and a key revocation followed by the other node, and one
# node SIGKILLed under load. Prints `twonode: N passed, M failed` last; exits non-zero on any failure.
#
# Uses the debug binary `cargo test` built (target/debug/tessera; TESSERA_BIN overrides it) and builds
# nothing. Everything listens on loopback ports chosen free; everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

PG_URL="${TESSERA_CI_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
TESSERA="${TESSERA_BIN:-$PWD/target/debug/tessera}"
started=$(date +%s)

fail() {
  echo "twonode: $*" >&2
  echo "twonode: 0 passed, 1 failed"
  exit 1
}

[ -x "$TESSERA" ] || fail "$TESSERA is missing: run cargo test (or set TESSERA_BIN) first"
command -v python3 >/dev/null || fail "python3 is missing"
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "nginx is missing: installing Debian's nginx"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx
  fi
fi
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d /tmp/tessera-twonode.XXXXXX)
db="tessera_twonode_$(date +%s)_$$"
# A Redis database of its own, emptied before and after, so runs do not share counters.
redis_db=$((RANDOM % 15 + 1))
pids=()

cleanup() {
  set +e
  [ -f "$work/nginx.pid" ] && "$NGINX_BIN" -p "$work" -c "$work/nginx.conf" -e "$work/error.log" -s stop 2>/dev/null
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null
  done
  # At most 10 s for them to drain and exit.
  for _ in $(seq 1 50); do
    alive=0
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null && alive=1
    done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  redis-cli -h 127.0.0.1 -p 6379 -n "$redis_db" flushdb >/dev/null 2>&1
  psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  if [ "${keep_logs:-0}" = 1 ]; then
    echo "twonode: logs kept in $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits (at most 20 s) until URL answers 200.
wait_ready() {
  for _ in $(seq 1 100); do
    if curl -fs -o /dev/null --max-time 1 "$1"; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

psql "$PG_URL" -qc "CREATE DATABASE $db" >/dev/null || fail "cannot create the database $db"
redis-cli -h 127.0.0.1 -p 6379 -n "$redis_db" flushdb >/dev/null || fail "Redis is not reachable"

port1=$(free_port)
port2=$(free_port)
while [ "$port2" = "$port1" ]; do port2=$(free_port); done
api_port=$(free_port)
lb_port=$(free_port)

db_url=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$PG_URL" "$db")
export TESSERA_DATABASE_URL="$db_url"
export TESSERA_REDIS_URL="redis://127.0.0.1:6379/$redis_db"
export TESSERA_SECRET_PEPPER
TESSERA_SECRET_PEPPER=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
export TESSERA_MASTER_KEY
TESSERA_MASTER_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
export TESSERA_ISSUER="http://127.0.0.1:$lb_port"
export TESSERA_TRUSTED_PROXIES="127.0.0.1/32"
export TESSERA_LOG=json TESSERA_LOG_LEVEL=warn
export TESSERA_KEY_FILE="$work/never-written.key"
# As the README advises for several nodes: entries a node keeps may live 5 s; revocations are told.
export TESSERA_API_KEY_CACHE_TTL=5s

"$TESSERA" migrate >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log"; fail "tessera migrate failed"; }

# Background processes are disowned: the scenarios SIGKILL node 2, and bash need not report it.
TESSERA_BIND="127.0.0.1:$port1" "$TESSERA" serve >"$work/node1.log" 2>&1 &
pids+=($!)
disown
TESSERA_BIND="127.0.0.1:$port2" "$TESSERA" serve >"$work/node2.log" 2>&1 &
node2_pid=$!
pids+=("$node2_pid")
disown

# The protected test API: 200 "hello" to every GET.
python3 - "$api_port" >"$work/api.log" 2>&1 <<'PY' &
import http.server, sys
class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hello).serve_forever()
PY
pids+=($!)
disown

mkdir -p "$work/tmp"
cat >"$work/nginx.conf" <<EOF
user $(id -un) $(id -gn);
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 256; }
http {
    access_log $work/access.log;
    client_body_temp_path $work/tmp/body;
    proxy_temp_path $work/tmp/proxy;
    fastcgi_temp_path $work/tmp/fastcgi;
    uwsgi_temp_path $work/tmp/uwsgi;
    scgi_temp_path $work/tmp/scgi;

    upstream tessera {
        server 127.0.0.1:$port1 max_fails=1 fail_timeout=10s;
        server 127.0.0.1:$port2 max_fails=1 fail_timeout=10s;
    }
    upstream api_backend {
        server 127.0.0.1:$api_port;
    }

    server {
        listen 127.0.0.1:$lb_port;
        proxy_connect_timeout 1s;
        proxy_read_timeout 10s;
        proxy_next_upstream error timeout;
        proxy_set_header Host \$http_host;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
        # Which node answered (the scenarios check that both do).
        add_header X-Upstream \$upstream_addr always;

        location / {
            proxy_pass http://tessera;
        }

        # The README's forward-auth recipe.
        location /api/ {
            auth_request /_tessera;
            auth_request_set \$subject \$upstream_http_x_auth_subject;
            auth_request_set \$scopes  \$upstream_http_x_auth_scopes;
            proxy_set_header X-Subject \$subject;
            proxy_set_header X-Scopes  \$scopes;
            proxy_pass http://api_backend;
            # Here: the node that checked the key.
            auth_request_set \$auth_upstream \$upstream_addr;
            add_header X-Upstream \$auth_upstream always;
        }
        location = /_tessera {
            internal;
            proxy_pass http://tessera/v1/auth/check?scopes=read;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI \$request_uri;
        }
    }
}
EOF
"$NGINX_BIN" -p "$work" -c "$work/nginx.conf" -e "$work/error.log" -t >"$work/nginx-t.log" 2>&1 ||
  { cat "$work/nginx-t.log"; fail "nginx refuses the configuration"; }
"$NGINX_BIN" -p "$work" -c "$work/nginx.conf" -e "$work/error.log" || fail "nginx does not start"

wait_ready "http://127.0.0.1:$port1/readyz" || { keep_logs=1; fail "node 1 is not ready"; }
wait_ready "http://127.0.0.1:$port2/readyz" || { keep_logs=1; fail "node 2 is not ready"; }
wait_ready "http://127.0.0.1:$lb_port/healthz" || { keep_logs=1; fail "nginx does not answer"; }
echo "twonode: nodes on :$port1 and :$port2, nginx on :$lb_port, test API on :$api_port," \
  "PostgreSQL database $db, Redis db $redis_db, binary $TESSERA"

status=0
NGINX="http://127.0.0.1:$lb_port" NODE1="http://127.0.0.1:$port1" NODE2="http://127.0.0.1:$port2" \
  NODE2_PID="$node2_pid" TESSERA="$TESSERA" \
  timeout 150 python3 tests/twonode/scenarios.py 2>&1 | tee "$work/scenarios.log" || status=$?

passed=$(grep -c '^ok ' "$work/scenarios.log" || true)
failed=$(grep -c '^not ok ' "$work/scenarios.log" || true)
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1 # the scenarios did not finish (crash or timeout)
fi
if [ "$failed" -ne 0 ]; then
  keep_logs=1
fi
echo "twonode: took $(($(date +%s) - started)) s"
echo "twonode: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
