#!/usr/bin/env bash
# Builds and tests the Node.js package (client/node), from any directory.
#   client/node/test.sh
# IDEMKEYD=path/to/idemkeyd picks the server the integration tests start
# (default: build/server/daemon/idemkeyd of the repository; without one
# they are skipped, saying why).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# npm ci only when node_modules is missing or the lock changed since.
stamp=node_modules/.idemkey-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -d node_modules || ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
fi

npm run --silent build
# The TAP reporter ends with the runner's summary: tests, pass, fail, ...
npm test --silent
