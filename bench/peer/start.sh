#!/bin/sh
# Start the node-oidc-provider benchmark peer (env passes through: PORT, ALG, FORMAT).
set -eu
cd "$(dirname "$0")"
if [ ! -d node_modules ]; then
  npm ci --silent
fi
exec node server.mjs
