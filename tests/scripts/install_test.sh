#!/usr/bin/env bash
# `make install`'s rule (cmake --install, PREFIX and DESTDIR) staged into a
# temp directory: the installed `shim` runs and prints its version and
# help. Usage: install_test.sh BUILD_DIR
set -euo pipefail
build="$1"
src="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

DESTDIR="$work/stage" cmake --install "$build" --prefix /opt/shim-test > "$work/out.txt" 2>&1 ||
  fail "cmake --install failed: $(cat "$work/out.txt")"
bin="$work/stage/opt/shim-test/bin/shim"
[ -x "$bin" ] || fail "no executable at $bin; installed: $(find "$work/stage" -type f)"
[ "$(find "$work/stage" -type f | wc -l)" -eq 1 ] || fail "more than shim installed: $(find "$work/stage" -type f)"
"$bin" --version | grep -q "^shim 0.1.0" || fail "the installed shim --version says: $("$bin" --version 2>&1)"
"$bin" --help | grep -q "Exit codes" || fail "the installed shim --help lacks the exit codes"

# The Makefile passes PREFIX and DESTDIR on (dry run: nothing is built).
make -s -n -C "$src" install PREFIX=/opt/p DESTDIR="$work/d" BUILD_DIR="$build" > "$work/make.txt"
grep -q -- "cmake --install $build --prefix /opt/p" "$work/make.txt" ||
  fail "make install does not install with the PREFIX given: $(cat "$work/make.txt")"
grep -q -- "DESTDIR=\"$work/d\"" "$work/make.txt" ||
  fail "make install does not pass DESTDIR on: $(cat "$work/make.txt")"
echo "install: staged under DESTDIR, installed shim runs"
