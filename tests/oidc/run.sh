#!/usr/bin/env bash
# OpenID Connect relying-party tests: the strict `openid-client` library (npm, pinned in
# package.json) against the real Tessera binary, with Node's built-in test runner. openid-client
# refuses plain-http issuers unless a check is relaxed, so nothing is relaxed: Debian's nginx
# terminates TLS in front of a throwaway Tessera (SQLite in a temp dir, free loopback ports), with a
# throwaway self-signed certificate for 127.0.0.1 that Node trusts through NODE_EXTRA_CA_CERTS, and
# TESSERA_ISSUER is the https URL of nginx.
#
#   bash tests/oidc/run.sh                                  # every test
#   bash tests/oidc/run.sh --test-name-pattern='logout'     # extra arguments go to `node --test`
#
# Needs: target/debug/tessera (built by `cargo build` / `cargo test`), openssl, curl, nginx (Debian's
# package is installed when missing), and `npm ci` run once in tests/oidc.
# Prints `oidc: N passed, M failed` last; exit status: non-zero when any test fails.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/target/debug/tessera"

fail() { printf 'oidc: FAIL: %s\n' "$1" >&2; exit 1; }

[ -x "$bin" ] || fail "$bin is missing: build it first (cargo build, or cargo test, which .ci/run runs before this step)"
[ -d "$here/node_modules/openid-client" ] || fail "tests/oidc/node_modules is missing: run (cd tests/oidc && npm ci --no-audit --no-fund)"
command -v node >/dev/null || fail "node is missing (Node 20 or newer is needed)"
command -v openssl >/dev/null || fail "openssl is missing"
command -v curl >/dev/null || fail "curl is missing"
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "nginx is missing: installing Debian's nginx"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx
  fi
fi
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"

# shellcheck source=../lib/sandbox.sh
source "$root/tests/lib/sandbox.sh"
sandbox oidc 200

# nginx is stopped before the sandbox's own cleanup (which stops Tessera and removes the temp dir).
nginx_started=""
oidc_cleanup() {
  local rc=$?
  set +e
  if [ -n "$nginx_started" ]; then
    "$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" -s stop 2>/dev/null || true
    for _ in $(seq 1 50); do [ -f "$tmp/nginx/nginx.pid" ] || break; sleep 0.1; done
  fi
  (exit "$rc") # sandbox_cleanup reads the exit status from $?
  sandbox_cleanup
}
trap oidc_cleanup EXIT

free_port() { node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'; }
hex32() { node -e 'console.log(require("crypto").randomBytes(32).toString("hex"))'; }
field() { node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s)[process.argv[1]]))' "$1"; }

port="$(free_port)"
tls_port="$(free_port)"
while [ "$tls_port" = "$port" ]; do tls_port="$(free_port)"; done

# The throwaway certificate: self-signed, for the IP address 127.0.0.1, valid one day.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" \
  -keyout "$tmp/tls.key" -out "$tmp/tls.crt" >"$tmp/openssl.log" 2>&1 \
  || { cat "$tmp/openssl.log" >&2; fail "openssl could not make the certificate"; }

export TESSERA_DATABASE_URL="sqlite://$tmp/t.db"
export TESSERA_BIND="127.0.0.1:$port"
export TESSERA_ISSUER="https://127.0.0.1:$tls_port"
# Every request comes through nginx on loopback: its X-Forwarded-For names the client.
export TESSERA_TRUSTED_PROXIES="127.0.0.1/32"
export TESSERA_SECRET_PEPPER="$(hex32)"
export TESSERA_MASTER_KEY="$(hex32)"
export TESSERA_AUTH_RATE_LIMIT=100000
export TESSERA_IP_RATE_LIMIT=100000

user_email="rp-user@example.com"
user_password="correct horse battery staple"
redirect_uri="http://127.0.0.1/oidc/callback"
post_logout_uri="http://127.0.0.1/oidc/signed-out"

# From the temp dir, so that no ./tessera.toml of the caller's is read.
cd "$tmp"
"$bin" migrate >"$tmp/migrate.log" 2>&1 || { cat "$tmp/migrate.log" >&2; fail "tessera migrate failed"; }
printf '%s' "$user_password" | "$bin" user create --email "$user_email" --password-stdin >"$tmp/user.log" 2>&1 \
  || { cat "$tmp/user.log" >&2; fail "tessera user create failed"; }

# make_client FILE ARGS...: a client for the relying party, its JSON in FILE.
make_client() {
  local out=$1
  shift
  "$bin" client create --redirect-uri "$redirect_uri" \
    --grant-type authorization_code --grant-type refresh_token \
    --scope openid --scope profile --scope email --scope offline_access \
    --post-logout-redirect-uri "$post_logout_uri" --json "$@" >"$tmp/$out" 2>"$tmp/client.log" \
    || { cat "$tmp/client.log" "$tmp/$out" >&2; fail "tessera client create $* failed"; }
}
make_client public.json --name "openid-client (public)" --public
make_client basic.json --name "openid-client (client_secret_basic)" --auth-method client_secret_basic
make_client es256.json --name "openid-client (ES256)" --public --id-token-alg ES256
make_client eddsa.json --name "openid-client (EdDSA)" --public --id-token-alg EdDSA

"$bin" serve >"$tmp/serve.log" 2>&1 &
server_pid=$!

ready=""
for _ in $(seq 1 300); do
  kill -0 "$server_pid" 2>/dev/null || fail "tessera serve exited before it was ready"
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)" = "200" ]; then
    ready=1
    break
  fi
  sleep 0.1
done
[ -n "$ready" ] || fail "tessera serve was not ready (GET /readyz != 200) within 30 s"

# nginx as the TLS terminator, with a private prefix (as tests/twonode/run.sh runs it).
mkdir -p "$tmp/nginx/tmp"
cat >"$tmp/nginx/nginx.conf" <<EOF
user $(id -un) $(id -gn);
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 256; }
http {
    access_log $tmp/nginx/access.log;
    client_body_temp_path $tmp/nginx/tmp/body;
    proxy_temp_path $tmp/nginx/tmp/proxy;
    fastcgi_temp_path $tmp/nginx/tmp/fastcgi;
    uwsgi_temp_path $tmp/nginx/tmp/uwsgi;
    scgi_temp_path $tmp/nginx/tmp/scgi;

    server {
        listen 127.0.0.1:$tls_port ssl;
        ssl_certificate $tmp/tls.crt;
        ssl_certificate_key $tmp/tls.key;
        ssl_protocols TLSv1.2 TLSv1.3;

        location / {
            proxy_pass http://127.0.0.1:$port;
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF
"$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" -t >"$tmp/nginx-t.log" 2>&1 \
  || { cat "$tmp/nginx-t.log" >&2; fail "nginx refuses the configuration"; }
"$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" || fail "nginx does not start"
nginx_started=1

ready=""
for _ in $(seq 1 100); do
  if [ "$(curl -s --cacert "$tmp/tls.crt" -o /dev/null -w '%{http_code}' "$TESSERA_ISSUER/readyz" || true)" = "200" ]; then
    ready=1
    break
  fi
  sleep 0.1
done
[ -n "$ready" ] || { cat "$tmp/nginx/error.log" >&2 || true; fail "nginx did not pass GET /readyz through to tessera within 10 s"; }
echo "oidc: tessera at http://127.0.0.1:$port behind nginx at $TESSERA_ISSUER (data in $tmp)"

tap="$tmp/results.tap"
set +e
NODE_EXTRA_CA_CERTS="$tmp/tls.crt" \
  OIDC_ISSUER="$TESSERA_ISSUER" USER_EMAIL="$user_email" USER_PASSWORD="$user_password" \
  REDIRECT_URI="$redirect_uri" POST_LOGOUT_REDIRECT_URI="$post_logout_uri" \
  PUBLIC_CLIENT_ID="$(field client_id <"$tmp/public.json")" \
  BASIC_CLIENT_ID="$(field client_id <"$tmp/basic.json")" \
  BASIC_CLIENT_SECRET="$(field client_secret <"$tmp/basic.json")" \
  ES256_CLIENT_ID="$(field client_id <"$tmp/es256.json")" \
  EDDSA_CLIENT_ID="$(field client_id <"$tmp/eddsa.json")" \
  node --test \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" \
    "$@" "$here"/*.test.mjs
rc=$?
set -e

passed="$(awk '/^# pass /{print $3}' "$tap" | tail -n 1)"
failed="$(awk '/^# fail /{print $3}' "$tap" | tail -n 1)"
skipped="$(awk '/^# skipped /{print $3}' "$tap" | tail -n 1)"
passed="${passed:-0}"
failed="${failed:-0}"
skipped="${skipped:-0}"
if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
  show_log
  echo "---- nginx error log ----" >&2
  cat "$tmp/nginx/error.log" >&2 || true
fi
if [ "$skipped" -ne 0 ]; then
  echo "oidc: $passed passed, $failed failed, $skipped skipped"
else
  echo "oidc: $passed passed, $failed failed"
fi
if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
  [ "$rc" -ne 0 ] || rc=1
  exit "$rc"
fi
if [ "$passed" -eq 0 ]; then
  fail "no oidc test ran"
fi
