/* baseline_queues.h - one ops table for every queue the ring bench runs. */
#ifndef NV_BENCH_BASELINE_QUEUES_H
#define NV_BENCH_BASELINE_QUEUES_H

#include <stdbool.h>
#include <stddef.h>

struct nvb_queue_ops {
	const char *name;
	void *(*create)(size_t cap);
	void (*destroy)(void *q);
	bool (*push)(void *q, void *item); /* false: full (or timed out) */
	bool (*pop)(void *q, void **item); /* false: empty (or timed out) */
	size_t (*push_bulk)(void *q, void *const *items, size_t n); /* opt. */
	size_t (*pop_bulk)(void *q, void **items, size_t n);        /* opt. */
	bool blocks; /* push/pop wait by themselves (condvar queue) */
};

extern const struct nvb_queue_ops nvb_q_nv_ring, nvb_q_vyukov, nvb_q_ck,
	nvb_q_wfcq, nvb_q_mutex;

#endif
