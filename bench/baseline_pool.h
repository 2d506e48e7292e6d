/* baseline_pool.h - mutex+condvar thread pool (the engine's baseline). */
#ifndef NV_BENCH_BASELINE_POOL_H
#define NV_BENCH_BASELINE_POOL_H

#include <stddef.h>

typedef void (*nvb_pool_fn)(const void *args, size_t len);
struct nvb_pool;

struct nvb_pool *nvb_pool_create(unsigned nthreads);
void nvb_pool_submit(struct nvb_pool *p, nvb_pool_fn fn, const void *args,
		     size_t len);
void nvb_pool_destroy(struct nvb_pool *p); /* runs what is queued, joins */

#endif
