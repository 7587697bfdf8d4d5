#!/usr/bin/env bash
# Formatting kept by a tool: Debian's clang-format (14 on Debian 12) with
# the repository's .clang-format, over every C++ file git tracks.
#   scripts/format.sh         reformats them in place (`make format`)
#   scripts/format.sh check   changes nothing; lists the files that are not
#                             formatted, with the first lines that differ,
#                             and fails (`make test` runs it first)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v clang-format >/dev/null 2>&1; then
  echo "format: clang-format is missing; run: bash scripts/install-deps.sh" >&2
  exit 2
fi

if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "format: not a git checkout; the files to format are those git tracks" >&2
  exit 2
fi
mapfile -t files < <(git ls-files -- '*.cc' '*.h')
if [ "${1:-fix}" != "check" ]; then
  clang-format -i "${files[@]}"
  exit 0
fi

# One clang-format run over all files; it names each file that differs in
# lines "path:line:col: error: code should be clang-formatted".
mapfile -t unformatted < <(clang-format --dry-run --Werror "${files[@]}" 2>&1 |
  sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' | sort -u)
if [ ${#unformatted[@]} -eq 0 ]; then
  echo "format: ${#files[@]} C++ files formatted"
  exit 0
fi
echo "format: ${#unformatted[@]} of ${#files[@]} C++ files are not formatted as .clang-format says:" >&2
shown=0
for f in "${unformatted[@]}"; do
  echo "--- $f" >&2
  # The first lines that differ, for the first few files only.
  if [ $((shown++)) -lt 5 ]; then clang-format "$f" | diff -u "$f" - | sed -n '3,14p' >&2 || true; fi
done
echo "format: run 'make format' (scripts/format.sh) and commit the result" >&2
exit 1
