# The two commands the README promises: `make run` and `make test`.
# Both install missing Debian packages first, so a fresh Debian 12 machine
# needs nothing else.
BUILD_DIR ?= build
JOBS ?= 2
CMAKE_FLAGS ?=
# A unity build (CMake batches of 8 .cc files per compiler run) halves a
# fresh build: 4.3 instead of 7 minutes on 2 cores. UNITY=OFF compiles file
# by file, which is faster when you rebuild after editing one file.
UNITY ?= ON
export UNITY

# Targets run one after the other even under `make -j`: each build already
# uses JOBS cores, and test-optimized and test-sanitize side by side would
# compete for them and break the timing bounds of the tests.
.NOTPARALLEL:

.PHONY: all deps configure build install run test test-optimized test-sanitize test-tsan format format-check bench fault-soak fuzz clean

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_UNITY_BUILD=$(UNITY) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j$(JOBS)

# Installs shim into $(DESTDIR)$(PREFIX)/bin (PREFIX=/usr/local unless
# given; DESTDIR stages it elsewhere, as packagers do).
PREFIX ?= /usr/local
install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD_DIR) --prefix $(PREFIX)

run: build
	./$(BUILD_DIR)/shim serve $(ARGS)

# Every test twice: on the optimised build that `make run` starts (where
# the memory and latency bounds are tight), then under ASan+UBSan. This is
# what CI runs (.ci/run): 884 s from a clean clone on the first 2-core
# host, 483-550 s on the faster one since.
test: format-check test-optimized test-sanitize

# Formatting is kept by Debian's clang-format with .clang-format
# (scripts/format.sh): `make format` reformats every C++ file git tracks;
# `make format-check`, the first step of `make test`, changes nothing and
# fails, naming the files, if one is not formatted.
format: deps
	@bash scripts/format.sh

format-check: deps
	@bash scripts/format.sh check

test-optimized: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS) --timeout 600

# The suite under sanitizers, each in its own build dir (scripts/test-sanitized.sh):
# ASan+UBSan over every test, TSan over the net and e2e tests. A run fails on
# a failing test or on any sanitizer report from any process it started.
test-sanitize: deps
	@bash scripts/test-sanitized.sh asan

test-tsan: deps
	@bash scripts/test-sanitized.sh tsan

bench: build
	./$(BUILD_DIR)/bench/storage_bench
	./$(BUILD_DIR)/bench/codec_bench
	./$(BUILD_DIR)/bench/engine_bench

# The crash loop of tests/fault/ with 500 SIGKILLs instead of the 20 of
# `make test` (docs/fault-testing.md); prints the checks passed. Override
# with FAULT_KILLS=N, replay with FAULT_SEED=S.
FAULT_KILLS ?= 500
fault-soak: build
	SHIM_FAULT_KILLS=$(FAULT_KILLS) SHIM_FAULT_SEED=$(FAULT_SEED) \
	  ./$(BUILD_DIR)/tests/fault_tests --gtest_filter='CrashLoopTest.*' --gtest_brief=1

# libFuzzer campaigns over the targets of tests/fuzz (docs/fault-testing.md,
# "Fuzzing"): clang builds them with ASan+UBSan into build-fuzz, then each
# runs from its seed corpus in tests/fuzz/corpus/<target>/ for FUZZ_RUNS
# executions (default 10,000,000), or FUZZ_SECONDS seconds if set and
# reached first; the executions per target are printed. Needs clang
# (Debian's clang package). `make test` only replays the seed corpora.
FUZZ_RUNS ?= 10000000
FUZZ_SECONDS ?=
FUZZ_BUILD_DIR ?= build-fuzz
fuzz:
	@command -v clang++ >/dev/null || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHIM_FUZZ=ON \
	  -DSHIM_BUILD_TESTS=OFF -DSHIM_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(FUZZ_BUILD_DIR) -j$(JOBS) --target fuzz_targets
	FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR)
