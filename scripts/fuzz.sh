#!/usr/bin/env bash
# Builds every tests/fuzz/fuzz_*.c as a libFuzzer binary (clang-14, ASan +
# UBSan) and runs each for SECS seconds (default 20) from its seed corpus.
# A crash, leak or timeout fails the script and leaves the reproducer in
# build-fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
J=${NV_JOBS:-2}
CC=clang-14 cmake -S . -B build-fuzz -DNUVOM_FUZZ=ON -DNUVOM_BUILD_BENCH=OFF \
	-DNUVOM_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-fuzz -j"$J"
mkdir -p build-fuzz/artifacts
for bin in build-fuzz/tests/fuzz/fuzz_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin" | sed 's/^fuzz_//')
	work=build-fuzz/corpus/$name
	mkdir -p "$work"
	if [ -d "tests/fuzz/corpus/$name" ]; then
		cp -n tests/fuzz/corpus/"$name"/* "$work"/ 2>/dev/null || true
	fi
	echo "fuzz $name: ${SECS}s"
	timeout $((SECS + 60)) "$bin" -max_total_time="$SECS" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix=build-fuzz/artifacts/"$name"- "$work" 2>&1 |
		grep -E "^(stat::number_of_executed_units|stat::peak_rss|==|SUMMARY|Done)" || true
	# libFuzzer exits non-zero on a finding; PIPESTATUS keeps it.
	rc=${PIPESTATUS[0]}
	if [ "$rc" != 0 ]; then
		echo "fuzz $name: FAILED (exit $rc), see build-fuzz/artifacts/" >&2
		exit 1
	fi
done
