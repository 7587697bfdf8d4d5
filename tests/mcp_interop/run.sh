#!/usr/bin/env bash
# Runs the MCP interop tests (ctest: mcp_interop): the official MCP
# TypeScript SDK, pinned in package-lock.json, as a real client of
# `shim mcp`. Installs the SDK with `npm ci` into this folder's node_modules
# (skipped while node_modules matches the lock file; npm's cache makes a
# reinstall work offline), then runs `node --test` on *.test.mjs with
# SHIM_BIN set. Each test uses its own temp SHIM_HOME and socket.
# Usage: run.sh PATH_TO_SHIM
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
shim="${1:-${SHIM_BIN:-}}"
if [ -z "$shim" ] || [ ! -x "$shim" ]; then
  echo "mcp_interop: usage: run.sh PATH_TO_SHIM (got '${shim}', not an executable)" >&2
  exit 2
fi

# ctest passes what CMake found; fall back to PATH.
node="${NODE:-}"
[ -n "$node" ] && [ -x "$node" ] || node="$(command -v node || true)"
npm="${NPM:-}"
[ -n "$npm" ] && [ -x "$npm" ] || npm="$(command -v npm || true)"
if [ -z "$node" ] || [ -z "$npm" ]; then
  echo "mcp_interop: FAILED: node and npm are required to run the MCP interop tests;" \
       "install them (scripts/install-deps.sh installs the Debian packages nodejs and npm)" >&2
  exit 1
fi
major="$("$node" -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
  echo "mcp_interop: FAILED: node >= 20 is required (found $("$node" --version))" >&2
  exit 1
fi

# Install the pinned SDK unless node_modules already matches the lock file.
stamp="$here/node_modules/.shim-package-lock.sha256"
want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "mcp_interop: npm ci (pinned @modelcontextprotocol/sdk)" >&2
  if ! "$npm" ci --prefix "$here" --no-audit --no-fund --prefer-offline --loglevel=error >&2; then
    echo "mcp_interop: FAILED: npm ci could not install the MCP SDK (is the npm registry or cache reachable?)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi

SHIM_BIN="$(cd "$(dirname "$shim")" && pwd)/$(basename "$shim")"
export SHIM_BIN
unset SHIM_SOCKET
cd "$here"
exec "$node" --test --test-concurrency=1 --test-timeout=60000 ./*.test.mjs
