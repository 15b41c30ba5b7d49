# shellcheck shell=bash
# The throwaway server sandbox shared by the script suites (tests/browser/run.sh, tests/openapi/run.sh):
# a clean environment (no TESSERA_* of the caller's shell), a temp dir, and a cleanup that stops the
# server the suite started (`server_pid`), shows the end of its log when the suite failed, and removes
# the temp dir. Source it, then call `sandbox NAME LOG_LINES`; it sets `tmp`, and `show_log` prints the
# last LOG_LINES lines of "$tmp/serve.log" once.

sandbox() {
  local name=$1
  sandbox_log_lines=$2
  # Only the settings a suite exports reach the server: nothing from the caller's shell or a tessera.toml.
  while read -r var; do unset "$var"; done < <(compgen -e | grep '^TESSERA_' || true)
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/tessera-$name.XXXXXX")"
  server_pid=""
  log_shown=""
  trap sandbox_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

show_log() {
  [ -z "$log_shown" ] && [ -f "$tmp/serve.log" ] || return 0
  log_shown=1
  echo "---- tessera serve log (last $sandbox_log_lines lines of $tmp/serve.log) ----" >&2
  tail -n "$sandbox_log_lines" "$tmp/serve.log" >&2 || true
  echo "---- end of serve log ----" >&2
}

sandbox_cleanup() {
  local rc=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  [ "$rc" -eq 0 ] || show_log
  rm -rf "$tmp"
  exit "$rc"
}
