#!/usr/bin/env bash
# The README's doc test: runs every ```sh block of README.md, in order, as a reader pastes them into a new
# shell, against a fresh server, so the README cannot drift from the binary.
#
# What differs from a reader's machine, and why:
#   - `tessera` is target/debug/tessera (built by `cargo test`), put first on PATH; a `cargo` shim answers
#     `cargo install --path .` with it (a release build here would take CI ten minutes) and refuses
#     any other cargo command, so a README block that needs one must be marked skipped.
#   - The README's port (8080, on 127.0.0.1 or localhost) becomes a free loopback port (no test may use
#     a fixed port).
#   - Everything runs in a new temp dir with no TESSERA_* variables of the caller.
#   - A block with a `tessera serve` line runs in the background (the reader's second terminal); the next
#     block starts when /readyz answers. At the end the server gets Ctrl-C (SIGINT) and must exit 0.
#   - The other blocks run one after another in ONE bash with `set -euo pipefail`, and `curl` fails on
#     an HTTP error status (--fail-with-body): a refused credential fails the test.
# Blocks not meant to run here say so just above themselves: <!-- readme-test: skip REASON -->.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin="$root/target/debug/tessera"
if [ ! -x "$bin" ]; then
  echo "readme: $bin is missing: run \`cargo build\` (or \`cargo test\`) first" >&2
  exit 1
fi
for tool in jq curl python3; do
  command -v "$tool" >/dev/null || { echo "readme: $tool is needed (apt-get install $tool)" >&2; exit 1; }
done
while IFS='=' read -r name _; do
  case "$name" in TESSERA_*) unset "$name" ;; esac
done < <(env)

tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/bin" "$tmp/blocks" "$tmp/work"
ln -s "$bin" "$tmp/bin/tessera"
cat > "$tmp/bin/cargo" <<'SHIM'
#!/usr/bin/env bash
if [ "$*" = "install --path ." ]; then
  echo "(readme test: \`cargo install --path .\` is the already built target/debug/tessera)"
  exit 0
fi
echo "readme test: this cargo command is not run here: cargo $*; mark its block <!-- readme-test: skip REASON -->" >&2
exit 1
SHIM
chmod +x "$tmp/bin/cargo"
readme_port=8080
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

python3 "$root/tests/readme/extract.py" "$root/README.md" "$tmp/blocks" > "$tmp/blocks/index"
ran=0
skipped=0
session="$tmp/session.sh"
{
  echo 'set -euo pipefail'
  echo 'curl() { command curl --fail-with-body "$@"; }'
  echo "export PATH=\"$tmp/bin:\$PATH\""
  echo "cd \"$tmp/work\""
} > "$session"
while read -r n kind line reason; do
  file="$tmp/blocks/$n.sh"
  case "$kind" in
    skip)
      echo "readme: block $n (README.md:$line) skipped: $reason"
      skipped=$((skipped + 1))
      continue
      ;;
  esac
  sed -i "s/127\.0\.0\.1:$readme_port/127.0.0.1:$port/g; s/localhost:$readme_port/localhost:$port/g" "$file"
  ran=$((ran + 1))
  if [ "$kind" = serve ]; then
    cat >> "$session" <<BLOCK
echo "== block $n (README.md:$line): in the background, as in a second terminal"
( export PATH="$tmp/bin:\$PATH" TESSERA_BIND=127.0.0.1:$port TESSERA_ISSUER=http://127.0.0.1:$port; exec bash "$file" ) > "$tmp/serve.log" 2>&1 &
echo \$! > "$tmp/server.pid"
for _ in \$(seq 1 600); do
  command curl -s -o /dev/null "http://127.0.0.1:$port/readyz" && break
  kill -0 \$(cat "$tmp/server.pid") 2>/dev/null || { echo "readme: the server of block $n exited" >&2; cat "$tmp/serve.log" >&2; exit 1; }
  sleep 0.1
done
BLOCK
  else
    {
      echo "echo '== block $n (README.md:$line)'"
      cat "$file"
    } >> "$session"
  fi
done < "$tmp/blocks/index"

status=0
TESSERA_BIND=127.0.0.1:$port TESSERA_ISSUER=http://127.0.0.1:$port bash "$session" || status=$?
if [ -f "$tmp/server.pid" ]; then
  # The README's `tessera serve` runs under bash: Ctrl-C reaches the whole foreground group; here the
  # signal goes to the server process itself.
  server_pid=$(pgrep -P "$(cat "$tmp/server.pid")" tessera || cat "$tmp/server.pid")
  kill -INT "$server_pid" 2>/dev/null || true
  for _ in $(seq 1 200); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "readme: the server did not stop within 20 s of Ctrl-C" >&2
    status=1
  fi
  wait "$(cat "$tmp/server.pid")" 2>/dev/null || true
  if ! grep -q 'tessera stopped' "$tmp/serve.log"; then
    echo "readme: the server did not log a graceful stop after Ctrl-C" >&2
    status=1
  fi
fi
if [ "$status" -ne 0 ]; then
  echo "---- server log (last 60 lines)" >&2
  tail -n 60 "$tmp/serve.log" >&2 2>/dev/null || true
  echo "readme: FAILED ($ran blocks, $skipped skipped)"
  exit 1
fi
echo "readme: $ran blocks run, $skipped skipped, 0 failed"
