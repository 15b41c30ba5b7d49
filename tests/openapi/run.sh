#!/usr/bin/env bash
# The OpenAPI description checked against the running server by schemathesis (PyPI): starts a
# throwaway Tessera (SQLite in a temp dir, a free loopback port, an admin, a full-access API key and a
# confidential client made with the CLI), then has schemathesis call every operation of
# /openapi.json with generated requests. Fails on any 5xx and on any response whose status, content
# type, headers or body the description does not document.
#
#   bash tests/openapi/run.sh                       # every operation
#   bash tests/openapi/run.sh --include-path-regex '^/v1/keys'   # extra arguments go to `schemathesis run`
#   OPENAPI_EXAMPLES=300 bash tests/openapi/run.sh  # more generated requests per operation (default 100)
#
# Needs: target/debug/tessera (built by `cargo build` / `cargo test`), python3 with venv and pip.
# schemathesis is installed once, pinned, into ~/.cache/tessera/schemathesis-<version>.
set -euo pipefail

SCHEMATHESIS_VERSION="4.32.5"

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/target/debug/tessera"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/tessera/schemathesis-$SCHEMATHESIS_VERSION"
examples="${OPENAPI_EXAMPLES:-100}"

fail() { printf 'openapi: FAIL: %s\n' "$1" >&2; exit 1; }

[ -x "$bin" ] || fail "$bin is missing: build it first (cargo build, or cargo test, which .ci/run runs before this step)"
command -v python3 >/dev/null || fail "python3 is missing"
command -v curl >/dev/null || fail "curl is missing"

if [ ! -x "$venv/bin/schemathesis" ] || [ "$("$venv/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $SCHEMATHESIS_VERSION" ]; then
  echo "openapi: installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# shellcheck source=../lib/sandbox.sh
source "$root/tests/lib/sandbox.sh"
sandbox openapi 100

py() { python3 -c "$@"; }
port="$(py 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
hex32() { py 'import secrets; print(secrets.token_hex(32))'; }
field() { py 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

export TESSERA_DATABASE_URL="sqlite://$tmp/t.db"
export TESSERA_BIND="127.0.0.1:$port"
export TESSERA_ISSUER="http://127.0.0.1:$port"
export TESSERA_SECRET_PEPPER="$(hex32)"
export TESSERA_MASTER_KEY="$(hex32)"
# Generated requests come fast from one IP: the limits must not turn the run into 429s.
export TESSERA_AUTH_RATE_LIMIT=1000000
export TESSERA_IP_RATE_LIMIT=1000000
export TESSERA_TOKEN_RATE_LIMIT=1000000
export TESSERA_API_KEY_RATE_LIMIT=1000000

admin_email="admin@example.com"
admin_password="correct horse battery staple"

# From the temp dir, so that no ./tessera.toml of the caller's is read.
cd "$tmp"
"$bin" migrate >"$tmp/migrate.log" 2>&1 || { cat "$tmp/migrate.log" >&2; fail "tessera migrate failed"; }
printf '%s' "$admin_password" | "$bin" user create --email "$admin_email" --password-stdin --admin >"$tmp/user.log" 2>&1 \
  || { cat "$tmp/user.log" >&2; fail "tessera user create failed"; }
# Two full-access keys: a `test` one manages keys (so the keys it lists, and may revoke or rotate
# when schemathesis follows links, are `test` keys, itself included), a `live` one, out of its
# reach, is presented to forward-auth.
"$bin" key create --name schemathesis-admin --type sk --env test --json >"$tmp/admin-key.json" 2>"$tmp/key.log" \
  || { cat "$tmp/key.log" >&2; fail "tessera key create failed"; }
admin_key="$(field key <"$tmp/admin-key.json")"
"$bin" key create --name schemathesis-gateway --type sk --env live --json >"$tmp/live-key.json" 2>"$tmp/key.log" \
  || { cat "$tmp/key.log" >&2; fail "tessera key create failed"; }
live_key="$(field key <"$tmp/live-key.json")"
"$bin" client create --name schemathesis --redirect-uri http://127.0.0.1/callback \
  --grant-type client_credentials --grant-type refresh_token --json >"$tmp/client.json" 2>"$tmp/client.log" \
  || { cat "$tmp/client.log" >&2; fail "tessera client create failed"; }
client_id="$(field client_id <"$tmp/client.json")"
client_secret="$(field client_secret <"$tmp/client.json")"

"$bin" serve >"$tmp/serve.log" 2>&1 &
server_pid=$!

ready=""
for _ in $(seq 1 300); do
  kill -0 "$server_pid" 2>/dev/null || fail "tessera serve exited before it was ready"
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "$TESSERA_ISSUER/readyz" || true)" = "200" ]; then
    ready=1
    break
  fi
  sleep 0.1
done
[ -n "$ready" ] || fail "tessera serve was not ready (GET /readyz != 200) within 30 s"
echo "openapi: tessera serving at $TESSERA_ISSUER (data in $tmp)"

# An administrator's session for /v1/users: the sign-in form with its CSRF token.
jar="$tmp/cookies.txt"
csrf="$(curl -s -c "$jar" -b "$jar" "$TESSERA_ISSUER/login" \
  | py 'import re, sys; m = re.search(r"name=\"csrf_token\" value=\"([^\"]+)\"", sys.stdin.read()); print(m.group(1) if m else "")')"
[ -n "$csrf" ] || fail "the sign-in page has no csrf_token"
status="$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" \
  --data-urlencode "email=$admin_email" --data-urlencode "password=$admin_password" \
  --data-urlencode "csrf_token=$csrf" "$TESSERA_ISSUER/login")"
[ "$status" = "303" ] || fail "signing in answered $status, not 303"
session="$(awk '$6 == "tessera_session" {print $7}' "$jar")"
[ -n "$session" ] || fail "signing in set no tessera_session cookie"

# Credentials per security scheme of the description (schemathesis applies the first scheme listed
# by an operation that it has credentials for): the `test` key as Bearer (/v1/keys), the `live` key
# as X-API-Key (forward-auth lists it first), the client for HTTP Basic, the session (/v1/users).
cat >"$tmp/schemathesis.toml" <<EOF
[auth.openapi.bearer]
bearer = "$admin_key"

[auth.openapi.x_api_key]
api_key = "$live_key"

[auth.openapi.client_basic]
username = "$client_id"
password = "$client_secret"

[auth.openapi.session]
api_key = "$session"
EOF

# No 5xx, and every answer as documented: status, content type, headers, body; a method the
# description does not list answers 405; an operation that needs credentials refuses a request
# without them; what was deleted stays gone. Not checked: whether the server accepts every request
# the schemas allow or refuses every one they do not (`positive_data_acceptance`,
# `negative_data_rejection`): a schema cannot say all that a grant or a scope list must satisfy, and
# forward-auth ignores a body it cannot use. Nor `allow_header_conformance`: `/v1/keys/{id}` also
# matches `/v1/keys/verify`, so its `Allow` rightly names GET, which that path's entry cannot list.
checks="not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance"
checks="$checks,response_schema_conformance,unsupported_method,ignored_auth,missing_required_header"
checks="$checks,use_after_free,ensure_resource_availability"

set +e
"$venv/bin/schemathesis" --no-color --config-file "$tmp/schemathesis.toml" run "$TESSERA_ISSUER/openapi.json" \
  --checks "$checks" \
  --max-examples "$examples" \
  --seed 13 \
  --workers 1 \
  --request-timeout 30 \
  --report junit,har --report-junit-path "$tmp/junit.xml" --report-har-path "${OPENAPI_HAR:-$tmp/requests.har}" \
  "$@" 2>&1 | tee "$tmp/schemathesis.log"
rc=${PIPESTATUS[0]}
set -e

failures="$(py 'import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("?"); sys.exit()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
print(sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites))' "$tmp/junit.xml")"
# The operations schemathesis tested (it leaves out /openapi.json, the document itself).
operations="$(sed -n 's/^ *Tested: *\([0-9][0-9]*\).*/\1/p' "$tmp/schemathesis.log" | tail -n 1)"
operations="${operations:-0}"
if [ "$rc" -ne 0 ] || [ "$failures" != "0" ]; then
  echo "openapi: $operations operations, $failures failures (schemathesis exit $rc)"
  show_log
  [ "$rc" -ne 0 ] || rc=1
  exit "$rc"
fi
[ "$operations" -gt 0 ] || fail "schemathesis tested no operation"
echo "openapi: $operations operations, 0 failures"
