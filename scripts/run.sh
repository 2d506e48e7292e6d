#!/usr/bin/env bash
# The main job: installs what is missing, builds a release, runs the demo
# (real jobs through the engine) and the benchmark harness in quick mode.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"${NV_JOBS:-2}"
if [ -x build/examples/demo ]; then
	./build/examples/demo
fi
./build/bench/nuvom-bench --quick --json build/bench.json "$@"
