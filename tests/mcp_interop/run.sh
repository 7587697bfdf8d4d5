#!/usr/bin/env bash
# Runs the MCP interop tests (ctest: mcp_interop): the official MCP
# TypeScript SDK, pinned in package-lock.json, as a real client of
# `shim mcp`, on a Node.js pinned there too.
#
# The tests bring their own Node: the npm package `node` (a dependency in
# package.json, its version locked in package-lock.json) downloads that
# Node's binary through the npm registry into node_modules/node/bin/node.
# The system's node and npm only install it: Debian 12's nodejs (18) is
# older than the SDK needs (>= 20), and the MCP conformance suite needs
# >= 22. `npm ci` installs both into this folder's node_modules (skipped
# while node_modules matches the lock file; npm's cache makes a reinstall
# work offline), then the pinned node runs `node --test` on *.test.mjs with
# SHIM_BIN set. Each test uses its own temp SHIM_HOME and socket.
# Usage: run.sh PATH_TO_SHIM
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
shim="${1:-${SHIM_BIN:-}}"
if [ -z "$shim" ] || [ ! -x "$shim" ]; then
  echo "mcp_interop: usage: run.sh PATH_TO_SHIM (got '${shim}', not an executable)" >&2
  exit 2
fi
node="$here/node_modules/node/bin/node"

# Install the pinned SDK and Node unless node_modules already matches the
# lock file.
stamp="$here/node_modules/.shim-package-lock.sha256"
want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x "$node" ]; then
  # ctest passes the npm CMake found; fall back to PATH.
  npm="${NPM:-}"
  [ -n "$npm" ] && [ -x "$npm" ] || npm="$(command -v npm || true)"
  if [ -z "$npm" ]; then
    echo "mcp_interop: FAILED: npm is required to install the pinned Node.js and MCP SDK;" \
         "install it (scripts/install-deps.sh installs Debian's npm)" >&2
    exit 1
  fi
  echo "mcp_interop: npm ci (pinned Node.js and @modelcontextprotocol/sdk)" >&2
  # The `node` package's install script runs npm again (by name, through
  # the shell) to fetch the binary: the same npm must come first in PATH.
  if ! PATH="$(dirname "$npm"):$PATH" "$npm" ci --prefix "$here" --no-audit --no-fund --prefer-offline --loglevel=error >&2; then
    echo "mcp_interop: FAILED: npm ci could not install the pinned Node.js and MCP SDK" \
         "(is the npm registry or cache reachable?)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
if ! version="$("$node" --version)"; then
  echo "mcp_interop: FAILED: the pinned node ($node) does not run; remove $here/node_modules and retry" >&2
  exit 1
fi
echo "mcp_interop: node $version ($node, pinned by package-lock.json)"

SHIM_BIN="$(cd "$(dirname "$shim")" && pwd)/$(basename "$shim")"
export SHIM_BIN
unset SHIM_SOCKET
cd "$here"
exec "$node" --test --test-concurrency=1 --test-timeout=60000 ./*.test.mjs
