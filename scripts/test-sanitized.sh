#!/usr/bin/env bash
# Builds shim and its tests with a sanitizer and runs them under it.
#
#   scripts/test-sanitized.sh asan   # ASan + UBSan, the whole suite (make test-sanitize)
#   scripts/test-sanitized.sh tsan   # TSan, the net and e2e tests   (make test-tsan)
#
# Every process of the run (test binaries, the `shim serve` children they
# start, `shim worker run`, `shim mcp` and the daemon it starts) writes its
# sanitizer reports to one fresh directory through log_path; a run passes
# only if ctest passes AND that directory stays empty, so a report from a
# server that a test killed or stopped is not lost in its log. Reports are
# printed at the end. The variables reach those processes through the
# environment; where a test starts one through a library that passes only
# some variables (the MCP SDK's stdio transport), the test forwards them
# (tests/mcp_interop/helpers.mjs, childEnv; checked by environment.test.mjs).
# Environment: JOBS (default 2), SAN_BUILD_DIR, CTEST_ARGS (extra ctest
# arguments, e.g. "-R StateTest"), UNITY (default ON: a unity build, as in
# the Makefile; OFF to compile file by file).
set -euo pipefail
cd "$(dirname "$0")/.."

kind=${1:-}
case "$kind" in
  asan)
    dir=${SAN_BUILD_DIR:-build-asan}
    cmake_flags=(-DSHIM_SANITIZE=ON)
    targets=(all)
    select=()
    ;;
  tsan)
    dir=${SAN_BUILD_DIR:-build-tsan}
    cmake_flags=(-DSHIM_TSAN=ON)
    # The threaded code is the server: the Asio io thread, the engine
    # thread and the committer. The net and e2e tests drive all three.
    targets=(shim net_tests e2e_tests)
    select=(-L 'net|e2e')
    ;;
  *)
    echo "usage: $0 asan|tsan" >&2
    exit 2
    ;;
esac
jobs=${JOBS:-2}

cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHIM_BUILD_BENCH=OFF \
  -DCMAKE_UNITY_BUILD="${UNITY:-ON}" "${cmake_flags[@]}" >/dev/null
for target in "${targets[@]}"; do
  cmake --build "$dir" -j"$jobs" --target "$target"
done

reports=$(mktemp -d "${TMPDIR:-/tmp}/shim-$kind-reports.XXXXXX")
supp="$PWD/scripts/sanitizers"
# halt_on_error: a report fails the process at once (UBSan would go on).
# ASan: detect_leaks checks every process that exits normally (the servers
# the tests stop with SIGTERM included); ubsan.supp / tsan.supp list
# third-party findings with the reason for each.
export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=0:strict_string_checks=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="log_path=$reports/ubsan:halt_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp"
# TSan goes on after a race so that one run lists them all.
export TSAN_OPTIONS="log_path=$reports/tsan:halt_on_error=0:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
export SHIM_SANITIZER_RUN=$kind

status=0
start=$(date +%s)
# shellcheck disable=SC2086
(cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 900 "${select[@]}" ${CTEST_ARGS:-}) || status=$?
echo "sanitizer run ($kind): ctest exit $status in $(( $(date +%s) - start )) s"

shopt -s nullglob
found=("$reports"/*)
if (( ${#found[@]} )); then
  echo "sanitizer reports ($kind): ${#found[@]} file(s) in $reports" >&2
  for f in "${found[@]}"; do
    echo "==== $f" >&2
    head -n 80 "$f" >&2
  done
  status=1
else
  echo "sanitizer reports ($kind): none"
  rmdir "$reports"
fi
exit "$status"
