/*
 * tests/schedtest.h - helpers shared by the schedule tests
 * (test_schedule.c, test_schedule_api.c).
 *
 * Header-only (static functions), included once by each test executable
 * after testutil.h. Every job of these tests gets a pointer to the test's
 * own record in its args (struct targ) and counts its runs there with
 * atomics; the tests wait for counts with nv_test_wait_until and generous
 * deadlines. "Never again" is shown with a barrier, not a sleep: a later
 * marker schedule fires, the engine drains (every dispatched job
 * finished), and only then are the counts compared.
 *
 * It provides: struct rec and its tasks (count, selfcancel, overlap, and
 * slow/mark for the priority test), engine_open/up/down (an engine with
 * those tasks registered), add/add_ok, and the waits (quiet, wait_runs,
 * barrier, list_count).
 */
#ifndef NV_SCHEDTEST_H
#define NV_SCHEDTEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"

struct rec {
	uint64_t runs;	    /* atomic: runs recorded (release) */
	uint64_t slot;	    /* atomic: next start_ns/epoch_ms index */
	uint64_t cap;	    /* entries of start_ns / epoch_ms */
	uint64_t *start_ns; /* mono ns of run k (in start order) */
	int64_t *epoch_ms;  /* epoch ms of run k, optional */
	uint32_t *hits;	    /* runs per args index, optional */
	uint64_t *idx_ns;   /* mono ns of the run of args index, optional */
	int fail;	    /* the task returns failure */
	/* cancel-from-job */
	nv_schedule_id self; /* atomic: id of the job's own schedule */
	uint64_t cancel_at;  /* cancel during this run */
	int cancel_rc;	     /* atomic: rc of that cancel */
	int cancel_rc2;	     /* atomic: rc of a cancel in a later run */
	/* overlap */
	uint64_t overlap_seen; /* atomic: run 1 saw run 2 start */
};

struct targ {
	struct rec *r;
	uint64_t idx;
};

static inline void
rec_init(struct rec *r, uint64_t cap)
{
	memset(r, 0, sizeof(*r));
	r->cap = cap;
	r->start_ns = calloc(cap ? cap : 1, sizeof(*r->start_ns));
	r->epoch_ms = calloc(cap ? cap : 1, sizeof(*r->epoch_ms));
	assert_non_null(r->start_ns);
	assert_non_null(r->epoch_ms);
}

static inline void
rec_free(struct rec *r)
{
	free(r->start_ns);
	free(r->epoch_ms);
	free(r->hits);
	free(r->idx_ns);
}

static inline uint64_t
runs_of(struct rec *r)
{
	return __atomic_load_n(&r->runs, __ATOMIC_ACQUIRE);
}

static inline int
count_task(nv_ctx *c, const void *args, size_t len)
{
	struct targ a;
	(void)c;
	if (len != sizeof(a))
		return 2; /* no cmocka asserts off the main thread */
	memcpy(&a, args, sizeof(a));
	uint64_t now = nv__mono_ns();
	int64_t ep = nv__epoch_ms();
	uint64_t k = __atomic_fetch_add(&a.r->slot, 1, __ATOMIC_RELAXED);
	if (k < a.r->cap) {
		a.r->start_ns[k] = now;
		a.r->epoch_ms[k] = ep;
	}
	if (a.r->hits != NULL)
		__atomic_fetch_add(&a.r->hits[a.idx], 1, __ATOMIC_RELAXED);
	if (a.r->idx_ns != NULL)
		a.r->idx_ns[a.idx] = now;
	/* Release after the writes above: a reader that sees this run
	 * counted (acquire) sees its record. */
	__atomic_fetch_add(&a.r->runs, 1, __ATOMIC_RELEASE);
	return a.r->fail ? 1 : 0;
}

/* Cancels its own schedule during run cancel_at (and once more later). */
static inline int
selfcancel_task(nv_ctx *c, const void *args, size_t len)
{
	struct targ a;
	if (len != sizeof(a))
		return 2;
	memcpy(&a, args, sizeof(a));
	struct rec *r = a.r;
	uint64_t k = __atomic_add_fetch(&r->runs, 1, __ATOMIC_ACQ_REL);
	nv_schedule_id id = __atomic_load_n(&r->self, __ATOMIC_ACQUIRE);
	if (k == r->cancel_at)
		__atomic_store_n(&r->cancel_rc,
				 nv_schedule_cancel(nv_ctx_engine(c), id),
				 __ATOMIC_RELEASE);
	else if (k > r->cancel_at)
		__atomic_store_n(&r->cancel_rc2,
				 nv_schedule_cancel(nv_ctx_engine(c), id),
				 __ATOMIC_RELEASE);
	return 0;
}

/* Run 1 stays until run 2 has started (or 10 s pass). */
static inline int
overlap_task(nv_ctx *c, const void *args, size_t len)
{
	struct targ a;
	(void)c;
	if (len != sizeof(a))
		return 2;
	memcpy(&a, args, sizeof(a));
	uint64_t k = __atomic_add_fetch(&a.r->runs, 1, __ATOMIC_ACQ_REL);
	if (k != 1)
		return 0;
	uint64_t end = nv__mono_ms() + 10000;
	while (runs_of(a.r) < 2 && nv__mono_ms() < end) {
		struct timespec ts = {0, 200000};
		nanosleep(&ts, NULL);
	}
	__atomic_store_n(&a.r->overlap_seen, runs_of(a.r) >= 2,
			 __ATOMIC_RELEASE);
	return 0;
}

/* Ordinary work for the priority test: 2 ms each, records its place. */
static uint64_t order_seq;
static inline int
slow_task(nv_ctx *c, const void *args, size_t len)
{
	(void)c;
	(void)args;
	(void)len;
	struct timespec ts = {0, 2000000};
	nanosleep(&ts, NULL);
	__atomic_fetch_add(&order_seq, 1, __ATOMIC_ACQ_REL);
	return 0;
}

static uint64_t mark_place; /* atomic: order_seq when the mark ran */
static inline int
mark_task(nv_ctx *c, const void *args, size_t len)
{
	(void)c;
	(void)args;
	(void)len;
	__atomic_store_n(&mark_place,
			 __atomic_load_n(&order_seq, __ATOMIC_ACQUIRE) + 1,
			 __ATOMIC_RELEASE);
	return 0;
}

static inline nv_engine *
engine_open(unsigned workers, nv_misfire_policy misfire, size_t max_args)
{
	nv_engine *e;
	nv_config cfg;
	nv_task_opts discard = {.discard_result = true};
	nv_config_init(&cfg);
	cfg.workers = workers;
	cfg.misfire = misfire;
	cfg.log_level = NV_LOG_ERROR;
	if (max_args)
		cfg.max_args = max_args;
	assert_int_equal(nv_engine_open(&e, &cfg), 0);
	assert_int_equal(nv_task_register(e, "count", count_task, &discard, 0),
			 0);
	assert_int_equal(
	    nv_task_register(e, "selfcancel", selfcancel_task, &discard, 0), 0);
	assert_int_equal(
	    nv_task_register(e, "overlap", overlap_task, &discard, 0), 0);
	assert_int_equal(nv_task_register(e, "slow", slow_task, &discard, 0),
			 0);
	assert_int_equal(nv_task_register(e, "mark", mark_task, &discard, 0),
			 0);
	return e;
}

static inline nv_engine *
engine_up(unsigned workers)
{
	nv_engine *e = engine_open(workers, NV_MISFIRE_ONCE, 0);
	assert_int_equal(nv_engine_start(e), 0);
	return e;
}

static inline void
engine_down(nv_engine *e)
{
	assert_int_equal(nv_engine_stop(e, 5000), 0);
	nv_engine_close(e);
}

static inline int
add(nv_engine *e, const char *task, struct rec *r, uint64_t idx,
    nv_schedule when, nv_schedule_id *id)
{
	struct targ a = {r, idx};
	return nv_schedule_add(e, task, &a, sizeof(a), &when, id);
}

static inline nv_schedule_id
add_ok(nv_engine *e, const char *task, struct rec *r, nv_schedule when)
{
	nv_schedule_id id = 0;
	assert_int_equal(add(e, task, r, 0, when, &id), 0);
	assert_true(id != 0);
	return id;
}

/* Every dispatched job has finished and nothing is queued or running. */
static inline bool
quiet(void *arg)
{
	nv_stats s;
	if (nv_engine_stats(arg, &s) != 0)
		return false;
	return s.queued == 0 && s.running == 0 &&
	       s.succeeded + s.failed == s.enqueued;
}

struct at_least {
	struct rec *r;
	uint64_t n;
};
static inline bool
reached(void *arg)
{
	struct at_least *w = arg;
	return runs_of(w->r) >= w->n;
}

static inline void
wait_runs(struct rec *r, uint64_t n, unsigned deadline_ms)
{
	struct at_least w = {r, n};
	if (!nv_test_wait_until(reached, &w, deadline_ms))
		fail_msg("%" PRIu64 " runs after %u ms, wanted %" PRIu64,
			 runs_of(r), deadline_ms, n);
}

/* Barrier: a one-off marker schedule fires, then the engine drains. */
static inline void
barrier(nv_engine *e, int64_t in_ms)
{
	struct rec m;
	rec_init(&m, 1);
	add_ok(e, "count", &m, (nv_schedule){.in_ms = in_ms});
	wait_runs(&m, 1, 20000);
	assert_true(nv_test_wait_until(quiet, e, 20000));
	rec_free(&m);
}

static inline size_t
list_count(nv_engine *e)
{
	size_t n = SIZE_MAX;
	assert_int_equal(nv_schedule_list(e, NULL, 0, &n), 0);
	return n;
}

#endif /* NV_SCHEDTEST_H */
