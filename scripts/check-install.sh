#!/usr/bin/env bash
# Installs the release build into build/_install and builds a small program
# against it twice: with pkg-config and with CMake's find_package(nuvom).
set -euo pipefail
cd "$(dirname "$0")/.."
P=$(pwd)/build/_install
rm -rf "$P" build/_consumer
cmake --install build --prefix "$P" >/dev/null
mkdir -p build/_consumer
cat > build/_consumer/main.c <<'C'
#include <nuvom.h>
#include <stdio.h>
static int hello(nv_ctx *c, const void *a, size_t l)
{ (void)a; (void)l; return nv_ctx_set_result(c, "hi", 2); }
int main(void)
{
	nv_engine *e; nv_job_id id; nv_status st = NV_PENDING;
	if (nv_engine_open(&e, NULL) || nv_task_register(e, "hello", hello, NULL, 0) ||
	    nv_engine_start(e) || nv_delay(e, "hello", NULL, 0, &id))
		return 1;
	int rc = nv_job_wait(e, id, 10000, &st);
	nv_engine_stop(e, 1000); nv_engine_close(e);
	printf("installed nuvom: job %s\n", nv_status_name(st));
	return rc != 0 || st != NV_SUCCESS;
}
C
cat > build/_consumer/CMakeLists.txt <<'C'
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(nuvom REQUIRED)
add_executable(consumer main.c)
target_link_libraries(consumer PRIVATE nuvom::nuvom)
C
gcc build/_consumer/main.c $(PKG_CONFIG_PATH=$P/lib/pkgconfig pkg-config --cflags --libs nuvom) \
	-Wl,-rpath,"$P/lib" -o build/_consumer/pc && ./build/_consumer/pc
cmake -S build/_consumer -B build/_consumer/b -DCMAKE_PREFIX_PATH="$P" >/dev/null
cmake --build build/_consumer/b >/dev/null
LD_LIBRARY_PATH="$P/lib" ./build/_consumer/b/consumer
