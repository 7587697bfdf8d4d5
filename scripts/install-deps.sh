#!/usr/bin/env bash
# Installs the Debian packages shim needs to build and test, only those missing.
# Idempotent and quiet when everything is already there; must run as root
# (or through sudo) on Debian 12.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  librocksdb-dev libboost-dev libboost-system-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev libjemalloc-dev libcli11-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  clang-format
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# npm for the MCP interop test (tests/mcp_interop): it installs the pinned
# MCP SDK and the pinned Node.js the test runs on, so any Node that runs
# npm will do (Debian's npm brings Debian 12's nodejs 18). Checked by
# command, not package: a nodejs from another repository bundles npm.
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
