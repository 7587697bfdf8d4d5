#!/usr/bin/env bash
# Runs each libFuzzer target of tests/fuzz for FUZZ_SECONDS (default 60)
# and prints the executions run per target (docs/fault-testing.md,
# "Fuzzing"). `make fuzz` builds the targets into build-fuzz first.
#
# Each run reads the seed corpus in tests/fuzz/corpus/<target>/ and writes
# the units it finds to build-fuzz/corpus/<target>/ (kept between runs, not
# committed); a crash leaves its input in build-fuzz/artifacts/ and makes
# the script exit 1 after the other targets ran.
#
# Usage: scripts/fuzz.sh [BUILD_DIR] [TARGET...]
set -u
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(key_codec_fuzz jsonrpc_fuzz mcp_fuzz line_framer_fuzz)
seconds=${FUZZ_SECONDS:-60}

mkdir -p "$build/artifacts" "$build/logs"
status=0
summary=()
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/$t"
  name=${t%_fuzz}
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin is missing (build it with make fuzz)" >&2
    status=1
    continue
  fi
  mkdir -p "$build/corpus/$name"
  log="$build/logs/$t.log"
  echo "fuzz: $t for ${seconds}s (log: $log)"
  seeds="tests/fuzz/corpus/$name"
  [ -d "tests/fuzz/corpus/$t" ] && seeds="tests/fuzz/corpus/$t"  # newer layout: named as the target
  "$bin" "$build/corpus/$name" "$seeds" \
    -max_total_time="$seconds" -timeout=30 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$t-" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ $rc -ne 0 ]; then
    status=1
    artefact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    summary+=("$t: FAILED (exit $rc) after ${execs:-?} executions; input: ${artefact:-see $log}")
    grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|check failed|_fuzz: ' "$log" >&2 || true
  else
    summary+=("$t: ${execs:-?} executions in ${seconds}s, no crash")
  fi
done
echo "fuzz summary:"
for line in "${summary[@]}"; do echo "  $line"; done
exit $status
