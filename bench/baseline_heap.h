/*
 * bench/baseline_heap.h - binary min-heap timer queue, the baseline the
 * timer wheel is measured against (bench/bench_wheel.c).
 *
 * Same contract shape as nuvom/wheel.h so both run behind one ops table:
 * intrusive timers, single owner thread, fire in (deadline, add order).
 * Each timer keeps its heap index, so cancel is O(log n) instead of a
 * search. The heap array keeps each entry's key inline, so comparisons do
 * not touch the timers; moving an entry writes its timer's index.
 *
 * Difference from the wheel kept on purpose simple: a callback that adds a
 * timer due by the advance's now_ms sees it fire in the same advance.
 */
#ifndef NV_BENCH_BASELINE_HEAP_H
#define NV_BENCH_BASELINE_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct nvb_heap nvb_heap;
typedef struct nvb_htimer nvb_htimer;
typedef void (*nvb_htimer_fn)(nvb_htimer *t, void *arg);

struct nvb_htimer {
	uint64_t deadline;
	size_t idx; /* position in the heap, or NVB_HEAP_IDLE */
	nvb_htimer_fn fn;
	void *arg;
};

#define NVB_HEAP_IDLE SIZE_MAX

/* Creates an empty heap with room for cap_hint timers. 0 or -1 (ENOMEM). */
int nvb_heap_create(nvb_heap **out, uint64_t now_ms, size_t cap_hint);
void nvb_heap_destroy(nvb_heap *h);
void nvb_htimer_init(nvb_htimer *t, nvb_htimer_fn fn, void *arg);
/* 0, or -1 when t is already pending or the array cannot grow. */
int nvb_heap_add(nvb_heap *h, nvb_htimer *t, uint64_t deadline_ms);
/* False if t was not pending. */
bool nvb_heap_cancel(nvb_heap *h, nvb_htimer *t);
/* Fires every timer with deadline <= now_ms; returns how many. */
size_t nvb_heap_advance(nvb_heap *h, uint64_t now_ms);
uint64_t nvb_heap_next_deadline(const nvb_heap *h); /* UINT64_MAX: empty */
size_t nvb_heap_count(const nvb_heap *h);

#endif
