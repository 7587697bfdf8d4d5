#!/usr/bin/env bash
# Runs a libFuzzer campaign per fuzz target of tests/fuzz and prints the
# executions run per target (docs/fault-testing.md, "Fuzzing"). `make fuzz`
# builds the targets into build-fuzz first.
#
# The targets are found by convention, as tests/fuzz/CMakeLists.txt finds
# them: tests/fuzz/<name>_fuzz.cc, seed corpus tests/fuzz/corpus/<name>_fuzz/
# (required), dictionary tests/fuzz/<name>_fuzz.dict and libFuzzer options
# tests/fuzz/<name>_fuzz.options (name=value lines), both optional.
#
# Each campaign stops after FUZZ_RUNS executions (default 10,000,000) or,
# if FUZZ_SECONDS is set, after that many seconds, whichever comes first.
# It reads the seed corpus and writes the units it finds to
# BUILD_DIR/corpus/<target>/ (kept between runs, not committed); a crash
# leaves its input in BUILD_DIR/artifacts/ and makes the script exit 1
# after the other targets ran.
#
# Usage: scripts/fuzz.sh [BUILD_DIR] [TARGET...]
set -u
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for source in tests/fuzz/*_fuzz.cc; do
    name=$(basename "$source" .cc)
    targets+=("$name")
  done
fi
runs=${FUZZ_RUNS:-10000000}
seconds=${FUZZ_SECONDS:-}
limits=(-runs="$runs")
[ -n "$seconds" ] && limits+=(-max_total_time="$seconds")

mkdir -p "$build/artifacts" "$build/logs"
status=0
summary=()
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/$t"
  seeds="tests/fuzz/corpus/$t"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin is missing (build it with make fuzz)" >&2
    summary+=("$t: MISSING binary")
    status=1
    continue
  fi
  if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds")" ]; then
    echo "fuzz: $t has no seed corpus in $seeds" >&2
    summary+=("$t: MISSING seed corpus $seeds")
    status=1
    continue
  fi
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  # tests/fuzz/<target>.options: one libFuzzer option name=value a line.
  options=()
  if [ -f "tests/fuzz/$t.options" ]; then
    while IFS= read -r line; do
      case "$line" in ''|'#'*) continue ;; esac
      options+=("-$line")
    done < "tests/fuzz/$t.options"
  fi
  mkdir -p "$build/corpus/$t"
  log="$build/logs/$t.log"
  echo "fuzz: $t, ${runs} executions${seconds:+ or ${seconds} s} (log: $log)"
  start=$(date +%s)
  # -rss_limit_mb: the engine targets keep one store and engine for the
  # whole campaign, as a long-lived server does; RocksDB's caches and the
  # memtables grow with it.
  "$bin" "$build/corpus/$t" "$seeds" "${limits[@]}" "${dict[@]}" "${options[@]}" \
    -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$t-" >"$log" 2>&1
  rc=$?
  elapsed=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ $rc -ne 0 ]; then
    status=1
    artefact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    summary+=("$t: FAILED (exit $rc) after ${execs:-?} executions in ${elapsed} s; input: ${artefact:-see $log}")
    grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|check failed|_fuzz: |fuzz engine: ' "$log" >&2 || true
  else
    summary+=("$t: ${execs:-?} executions in ${elapsed} s, no crash")
  fi
done
echo "fuzz summary:"
for line in "${summary[@]}"; do echo "  $line"; done
exit $status
