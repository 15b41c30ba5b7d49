#!/bin/sh
# Start the node-oidc-provider benchmark peer (env passes through: PORT, ALG, FORMAT, WORKERS).
# WORKERS=N with N > 1: N processes on one port through node's cluster module (cluster.mjs).
set -eu
cd "$(dirname "$0")"
if [ ! -d node_modules ]; then
  npm ci --silent
fi
if [ "${WORKERS:-1}" -gt 1 ]; then
  exec node cluster.mjs
fi
exec node server.mjs
