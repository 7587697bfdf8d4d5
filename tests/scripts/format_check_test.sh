#!/usr/bin/env bash
# `scripts/format.sh check` (the first step of `make test`) in a scratch git
# repository: it passes on formatted files, fails on an unformatted one and
# names it, and `scripts/format.sh` (make format) fixes what it found.
set -euo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
git init -q .
mkdir scripts
cp "$src/scripts/format.sh" scripts/
cp "$src/.clang-format" .
fail() { echo "FAIL: $*" >&2; exit 1; }

printf 'int Add(int a, int b) { return a + b; }\n' > good.cc
git add -A
bash scripts/format.sh check > out.txt 2>&1 || fail "check failed on formatted files: $(cat out.txt)"

printf 'int  Sub(int a,int b){return a-b;}\n' > bad.cc
git add bad.cc
if bash scripts/format.sh check > out.txt 2>&1; then fail "check passed an unformatted file"; fi
grep -q -- "--- bad.cc" out.txt || fail "the failure does not name bad.cc: $(cat out.txt)"
if grep -q -- "--- good.cc" out.txt; then fail "the failure names good.cc, which is formatted"; fi
grep -q "make format" out.txt || fail "the failure does not say how to fix it"

bash scripts/format.sh
bash scripts/format.sh check > out.txt 2>&1 || fail "still unformatted after format.sh: $(cat out.txt)"
[ "$(cat bad.cc)" = "int Sub(int a, int b) { return a - b; }" ] || fail "unexpected result: $(cat bad.cc)"
echo "format check: passes formatted files, fails and names an unformatted one, format.sh fixes it"
