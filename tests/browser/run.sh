#!/usr/bin/env bash
# Browser tests: starts a throwaway Tessera (SQLite in a temp dir, a free loopback port, an admin
# user), then drives Debian's Chromium through playwright-core with Node's built-in test runner.
#
#   bash tests/browser/run.sh                                 # every scenario
#   bash tests/browser/run.sh --test-name-pattern='oauth'     # extra arguments go to `node --test`
#   BROWSER_CLIENT_FROM_CLI=1 bash tests/browser/run.sh       # OAuth scenarios use a CLI-made client
#
# Needs: target/debug/tessera (built by `cargo build` / `cargo test`), /usr/bin/chromium
# (`apt-get install -y chromium`), and `npm ci` run once in tests/browser.
# Screenshots: target/screenshots/<name>.png. Exit status: non-zero when any test fails.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/target/debug/tessera"
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"

fail() { printf 'browser: FAIL: %s\n' "$1" >&2; exit 1; }

[ -x "$bin" ] || fail "$bin is missing: build it first (cargo build, or cargo test, which .ci/run runs before this step)"
[ -x "$chromium" ] || fail "$chromium is missing: install Debian's Chromium (DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)"
[ -d "$here/node_modules/playwright-core" ] || fail "tests/browser/node_modules is missing: run (cd tests/browser && npm ci --no-audit --no-fund)"
command -v node >/dev/null || fail "node is missing (Node 20 or newer is needed)"

# shellcheck source=../lib/sandbox.sh
source "$root/tests/lib/sandbox.sh"
sandbox browser 200

port="$(node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')"
hex32() { node -e 'console.log(require("crypto").randomBytes(32).toString("hex"))'; }

export TESSERA_DATABASE_URL="sqlite://$tmp/t.db"
export TESSERA_BIND="127.0.0.1:$port"
export TESSERA_ISSUER="http://127.0.0.1:$port"
export TESSERA_SECRET_PEPPER="$(hex32)"
export TESSERA_MASTER_KEY="$(hex32)"
export TESSERA_AUTH_RATE_LIMIT=100000
export TESSERA_IP_RATE_LIMIT=100000

admin_email="admin@example.com"
admin_password="correct horse battery staple"

# From the temp dir, so that no ./tessera.toml of the caller's is read.
cd "$tmp"
"$bin" migrate >"$tmp/migrate.log" 2>&1 || { cat "$tmp/migrate.log" >&2; fail "tessera migrate failed"; }
printf '%s' "$admin_password" | "$bin" user create --email "$admin_email" --password-stdin --admin >"$tmp/user.log" 2>&1 \
  || { cat "$tmp/user.log" >&2; fail "tessera user create failed"; }

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
echo "browser: tessera serving at $TESSERA_ISSUER (data in $tmp)"

shots="$root/target/screenshots"
mkdir -p "$shots"
rm -f "$shots"/*.png

tap="$tmp/results.tap"
set +e
TESSERA_URL="$TESSERA_ISSUER" TESSERA_BIN="$bin" ADMIN_EMAIL="$admin_email" ADMIN_PASSWORD="$admin_password" \
  SCREENSHOT_DIR="$shots" CHROMIUM_PATH="$chromium" \
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
if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then show_log; fi
echo "screenshots: $shots"
if [ "$skipped" -ne 0 ]; then
  echo "browser: $passed passed, $failed failed, $skipped skipped"
else
  echo "browser: $passed passed, $failed failed"
fi
if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
  [ "$rc" -ne 0 ] || rc=1
  exit "$rc"
fi
if [ "$passed" -eq 0 ]; then
  fail "no browser test ran"
fi
