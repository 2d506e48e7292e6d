#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
#   1. release build (-Werror): every CTest test (unit, stress, crash, fuzz
#      seed replays), then the benchmark gate in quick mode;
#   2. ThreadSanitizer build: the concurrency-labelled tests;
#   3. AddressSanitizer + UBSan build: every test;
#   4. libFuzzer (clang-14): a short run of every fuzz target.
# Env: NV_JOBS (build parallelism, default 2), NV_FUZZ_SECS (per target, 20),
#      NV_SKIP_BENCH=1 to skip the gate, NV_SKIP_FUZZ=1 to skip fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
J=${NV_JOBS:-2}
bash scripts/install-deps.sh

step() { printf '\n==== %s (%s)\n' "$1" "$(date +%T)"; }

step "release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNUVOM_WERROR=ON >/dev/null
cmake --build build -j"$J"
step "release tests"
(cd build && ctest --output-on-failure -j2)

step "install: pkg-config and find_package consumers"
bash scripts/check-install.sh

if [ "${NV_SKIP_BENCH:-0}" != 1 ]; then
	step "benchmark gate (quick)"
	./build/bench/nuvom-bench --quick --gate --json build/bench.json
fi

step "ThreadSanitizer build"
cmake -S . -B build-tsan -DNUVOM_SANITIZE=thread -DNUVOM_WERROR=ON \
	-DNUVOM_BUILD_BENCH=OFF -DNUVOM_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-tsan -j"$J"
step "ThreadSanitizer tests (label concurrency)"
(cd build-tsan && NV_STRESS_SCALE=10 \
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$ROOT/tests/tsan.supp" \
	ctest -L concurrency --output-on-failure)

step "AddressSanitizer+UBSan build"
cmake -S . -B build-asan -DNUVOM_SANITIZE=address,undefined -DNUVOM_WERROR=ON \
	-DNUVOM_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$J"
step "AddressSanitizer+UBSan tests"
(cd build-asan && NV_STRESS_SCALE=25 \
	ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" \
	UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
	ctest --output-on-failure -j2)

if [ "${NV_SKIP_FUZZ:-0}" != 1 ]; then
	step "libFuzzer runs"
	bash scripts/fuzz.sh "${NV_FUZZ_SECS:-20}"
fi
step "all test stages passed"
