/* ctest: labels=unit;concurrency timeout=180 */
/*
 * tests/test_schedule.c - the engine side of scheduling: nv_schedule_add,
 * nv_schedule_cancel, nv_schedule_list on a running engine.
 *
 * Every job of these tests gets a pointer to the test's own record in its
 * args (struct targ) and counts its runs there with atomics; the tests
 * wait for counts with nv_test_wait_until and generous deadlines. "Never
 * again" is shown with a barrier, not a sleep: a later marker schedule
 * fires, the engine drains (every dispatched job finished), and only then
 * are the counts compared.
 *
 * Time is checked only where the behaviour is about time, with bounds
 * that hold on a loaded shared machine and under TSan; what was measured
 * (lateness p50/p99) is printed. "Not early" allows 0.5 ms: schedules
 * speak the epoch clock and the wheel the monotonic one, and NTP may slew
 * one against the other by up to 0.5 ms per second.
 */
#include "testutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"

#define EARLY_NS 500000ll /* slew between the epoch and mono clocks */

/* ------------------------------------------------------------ helpers */

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

static void
rec_init(struct rec *r, uint64_t cap)
{
	memset(r, 0, sizeof(*r));
	r->cap = cap;
	r->start_ns = calloc(cap ? cap : 1, sizeof(*r->start_ns));
	r->epoch_ms = calloc(cap ? cap : 1, sizeof(*r->epoch_ms));
	assert_non_null(r->start_ns);
	assert_non_null(r->epoch_ms);
}

static void
rec_free(struct rec *r)
{
	free(r->start_ns);
	free(r->epoch_ms);
	free(r->hits);
	free(r->idx_ns);
}

static uint64_t
runs_of(struct rec *r)
{
	return __atomic_load_n(&r->runs, __ATOMIC_ACQUIRE);
}

static int
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
static int
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
static int
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
static int
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
static int
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

/* Always fails; counts attempts and notes the first and last one. */
struct flaky {
	uint64_t attempts; /* atomic */
	uint64_t first_ns[64], last_ns[64];
	unsigned last_attempt;
};
static int
flaky_task(nv_ctx *c, const void *args, size_t len)
{
	struct flaky *f;
	uint64_t idx;
	if (len != sizeof(f) + sizeof(idx))
		return 2;
	memcpy(&f, args, sizeof(f));
	memcpy(&idx, (const char *)args + sizeof(f), sizeof(idx));
	uint64_t now = nv__mono_ns();
	if (nv_ctx_attempt(c) == 1)
		f->first_ns[idx] = now;
	if (nv_ctx_attempt(c) == f->last_attempt)
		f->last_ns[idx] = now;
	__atomic_fetch_add(&f->attempts, 1, __ATOMIC_ACQ_REL);
	nv_ctx_set_error(c, "flaky attempt %u", nv_ctx_attempt(c));
	return 1;
}

static nv_engine *
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

static nv_engine *
engine_up(unsigned workers)
{
	nv_engine *e = engine_open(workers, NV_MISFIRE_ONCE, 0);
	assert_int_equal(nv_engine_start(e), 0);
	return e;
}

static void
engine_down(nv_engine *e)
{
	assert_int_equal(nv_engine_stop(e, 5000), 0);
	nv_engine_close(e);
}

static int
add(nv_engine *e, const char *task, struct rec *r, uint64_t idx,
    nv_schedule when, nv_schedule_id *id)
{
	struct targ a = {r, idx};
	return nv_schedule_add(e, task, &a, sizeof(a), &when, id);
}

static nv_schedule_id
add_ok(nv_engine *e, const char *task, struct rec *r, nv_schedule when)
{
	nv_schedule_id id = 0;
	assert_int_equal(add(e, task, r, 0, when, &id), 0);
	assert_true(id != 0);
	return id;
}

/* Every dispatched job has finished and nothing is queued or running. */
static bool
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
static bool
reached(void *arg)
{
	struct at_least *w = arg;
	return runs_of(w->r) >= w->n;
}

static void
wait_runs(struct rec *r, uint64_t n, unsigned deadline_ms)
{
	struct at_least w = {r, n};
	if (!nv_test_wait_until(reached, &w, deadline_ms))
		fail_msg("%" PRIu64 " runs after %u ms, wanted %" PRIu64,
			 runs_of(r), deadline_ms, n);
}

static bool
time_passed(void *arg)
{
	return nv__mono_ns() >= *(uint64_t *)arg;
}

static void
wait_until_ns(uint64_t t)
{
	assert_true(nv_test_wait_until(time_passed, &t, 60000));
}

/* Barrier: a one-off marker schedule fires, then the engine drains. */
static void
barrier(nv_engine *e, int64_t in_ms)
{
	struct rec m;
	rec_init(&m, 1);
	add_ok(e, "count", &m, (nv_schedule){.in_ms = in_ms});
	wait_runs(&m, 1, 20000);
	assert_true(nv_test_wait_until(quiet, e, 20000));
	rec_free(&m);
}

static size_t
list_count(nv_engine *e)
{
	size_t n = SIZE_MAX;
	assert_int_equal(nv_schedule_list(e, NULL, 0, &n), 0);
	return n;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* ---------------------------------------------------------- bad input */

static void
test_schedule_add_bad_input(void **state)
{
	(void)state;
	nv_engine *e = engine_open(1, NV_MISFIRE_ONCE, 64);
	struct rec r;
	char big[65];
	nv_schedule_id id = 77;
	struct targ a = {&r, 0};
	rec_init(&r, 1);
	memset(big, 'x', sizeof(big));

	/* Not exactly one of at/in/interval/cron. */
	assert_int_equal(add(e, "count", &r, 0, (nv_schedule){0}, &id),
			 NV_EINVAL);
	assert_int_equal(add(e, "count", &r, 0,
			     (nv_schedule){.in_ms = 10, .interval_ms = 10},
			     &id),
			 NV_EINVAL);
	assert_int_equal(add(e, "count", &r, 0,
			     (nv_schedule){.at_ms = nv__epoch_ms() + 1000,
					   .cron = "* * * * *"},
			     &id),
			 NV_EINVAL);
	assert_int_equal(
	    add(e, "count", &r, 0,
		(nv_schedule){.at_ms = 1, .in_ms = 1, .interval_ms = 1}, &id),
	    NV_EINVAL);
	assert_int_equal(
	    add(e, "count", &r, 0, (nv_schedule){.in_ms = -5}, &id), NV_EINVAL);
	/* Times past what the engine can represent (2^61 ms). */
	assert_int_equal(
	    add(e, "count", &r, 0, (nv_schedule){.in_ms = INT64_MAX}, &id),
	    NV_EINVAL);
	assert_int_equal(
	    add(e, "count", &r, 0, (nv_schedule){.at_ms = INT64_MAX}, &id),
	    NV_EINVAL);
	assert_int_equal(
	    add(e, "count", &r, 0, (nv_schedule){.at_ms = INT64_MIN}, &id),
	    NV_EINVAL);
	/* A zone without cron, NULL arguments. */
	assert_int_equal(add(e, "count", &r, 0,
			     (nv_schedule){.in_ms = 10, .timezone = "UTC"},
			     &id),
			 NV_EINVAL);
	nv_schedule w = {.in_ms = 10};
	assert_int_equal(nv_schedule_add(NULL, "count", &a, sizeof(a), &w, &id),
			 NV_EINVAL);
	assert_int_equal(nv_schedule_add(e, NULL, &a, sizeof(a), &w, &id),
			 NV_EINVAL);
	assert_int_equal(nv_schedule_add(e, "count", &a, sizeof(a), NULL, &id),
			 NV_EINVAL);
	assert_int_equal(nv_schedule_add(e, "count", NULL, 4, &w, &id),
			 NV_EINVAL);
	/* Bad cron, cron that never fires, unknown zone. */
	assert_int_equal(
	    add(e, "count", &r, 0, (nv_schedule){.cron = "* * *"}, &id),
	    NV_ECRON);
	assert_int_equal(
	    add(e, "count", &r, 0, (nv_schedule){.cron = "61 * * * *"}, &id),
	    NV_ECRON);
	assert_int_equal(
	    add(e, "count", &r, 0, (nv_schedule){.cron = "0 0 30 2 *"}, &id),
	    NV_ECRON);
	assert_int_equal(add(e, "count", &r, 0,
			     (nv_schedule){.cron = "0 * * * *",
					   .timezone = "Mars/Olympus_Mons"},
			     &id),
			 NV_EINVAL);
	/* Unknown task; args over the limit (the limit itself is fine). */
	assert_int_equal(
	    add(e, "nosuch", &r, 0, (nv_schedule){.in_ms = 10}, &id),
	    NV_ENOTASK);
	assert_int_equal(nv_schedule_add(e, "count", big, 65, &w, &id),
			 NV_E2BIG);
	assert_int_equal(id, 77); /* no id written on failure */
	assert_int_equal(list_count(e), 0);
	assert_int_equal(nv_schedule_add(e, "count", big, 64,
					 &(nv_schedule){.in_ms = 3600000}, &id),
			 0);
	assert_int_equal(list_count(e), 1);
	/* No failed add ever dispatched anything. */
	assert_int_equal(nv_engine_start(e), 0);
	barrier(e, 50);
	assert_int_equal(runs_of(&r), 0);
	engine_down(e);
	rec_free(&r);
}

static void
test_schedule_cancel_errors(void **state)
{
	(void)state;
	nv_engine *e = engine_up(1);
	struct rec r;
	rec_init(&r, 4);
	assert_int_equal(nv_schedule_cancel(e, 12345), NV_ENOENT);
	assert_int_equal(nv_schedule_cancel(e, 0), NV_EINVAL);
	assert_int_equal(nv_schedule_cancel(NULL, 1), NV_EINVAL);
	nv_schedule_id id =
	    add_ok(e, "count", &r, (nv_schedule){.in_ms = 3600000});
	assert_int_equal(nv_schedule_cancel(e, id), 0);
	assert_int_equal(nv_schedule_cancel(e, id), NV_ENOENT);
	/* A one-off that has fired is finished: ENOENT. */
	id = add_ok(e, "count", &r, (nv_schedule){.in_ms = 5});
	wait_runs(&r, 1, 10000);
	assert_true(nv_test_wait_until(quiet, e, 10000));
	assert_int_equal(nv_schedule_cancel(e, id), NV_ENOENT);
	assert_int_equal(list_count(e), 0);
	engine_down(e);
	rec_free(&r);
}

static void
test_schedule_after_stop(void **state)
{
	(void)state;
	nv_engine *e = engine_up(1);
	struct rec r;
	rec_init(&r, 1);
	nv_schedule_id live =
	    add_ok(e, "count", &r, (nv_schedule){.interval_ms = 3600000});
	assert_int_equal(nv_engine_stop(e, 1000), 0);
	nv_schedule_id id = 99;
	assert_int_equal(add(e, "count", &r, 0, (nv_schedule){.in_ms = 1}, &id),
			 NV_ESTOPPED);
	assert_int_equal(
	    add(e, "count", &r, 0, (nv_schedule){.cron = "* * * * * *"}, &id),
	    NV_ESTOPPED);
	assert_int_equal(id, 99);
	/* Still listed; cancelling it after stop frees it (ASan checks). */
	assert_int_equal(list_count(e), 1);
	assert_int_equal(nv_schedule_cancel(e, live), 0);
	assert_int_equal(list_count(e), 0);
	nv_engine_close(e);
	assert_int_equal(runs_of(&r), 0);
	rec_free(&r);
}

/* Schedules added just before a stop: the scheduler may reach their add
 * messages only while it drains. It must not arm them then: its final
 * advance would fire them (a one-off due in an hour dispatched at stop; an
 * interval re-armed and fired again in the same advance, forever). One-offs
 * only here, so that a regression fails the count instead of looping. */
static void
test_schedule_add_racing_stop(void **state)
{
	(void)state;
	uint64_t iters = nv_test_scaled(100);
	struct rec r;
	rec_init(&r, 1);
	for (uint64_t it = 0; it < iters; it++) {
		nv_engine *e = engine_up(1);
		for (int i = 0; i < 4; i++)
			assert_int_equal(add(e, "count", &r, 0,
					     (nv_schedule){.in_ms = 3600000},
					     NULL),
					 0);
		assert_int_equal(nv_engine_stop(e, 0), 0);
		nv_stats st;
		assert_int_equal(nv_engine_stats(e, &st), 0);
		if (st.enqueued != 0)
			fail_msg("iteration %" PRIu64 ": %" PRIu64
				 " jobs of schedules due in an hour were "
				 "dispatched at stop",
				 it, st.enqueued);
		assert_int_equal(list_count(e), 4);
		nv_engine_close(e);
	}
	assert_int_equal(runs_of(&r), 0);
	rec_free(&r);
}

/* A schedule due in a million years leaves the scheduler asleep: its wait
 * until the wheel's next deadline must not overflow into a busy loop. */
static double
cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void
test_schedule_far_future_idle(void **state)
{
	(void)state;
	nv_engine *e = engine_up(1);
	struct rec r;
	rec_init(&r, 1);
	int64_t far = (int64_t)1 << 55; /* ms: ~1.1 million years */
	add_ok(e, "count", &r, (nv_schedule){.in_ms = far});
	add_ok(e, "count", &r, (nv_schedule){.at_ms = nv__epoch_ms() + far});
	barrier(e, 20); /* both are armed by now */
	double c0 = cpu_ms();
	struct timespec ts = {0, 300000000};
	nanosleep(&ts, NULL);
	double used = cpu_ms() - c0;
	printf("# idle with far-future schedules: %.1f ms CPU in 300 ms\n",
	       used);
	assert_true(used < 100.0); /* a spinning thread burns ~300 */
	assert_int_equal(list_count(e), 2);
	assert_int_equal(runs_of(&r), 0);
	engine_down(e);
	rec_free(&r);
}

/* ---------------------------------------------------------------- list */

static void
test_schedule_list_shows_schedules(void **state)
{
	(void)state;
	nv_engine *e = engine_open(2, NV_MISFIRE_ONCE, 0);
	struct rec r;
	nv_schedule_info info[8];
	size_t n = 0;
	rec_init(&r, 1);

	int64_t t0 = nv__epoch_ms();
	int64_t at = t0 + 7200000;
	nv_schedule_id a =
	    add_ok(e, "count", &r, (nv_schedule){.in_ms = 3600000});
	nv_schedule_id b =
	    add_ok(e, "count", &r, (nv_schedule){.interval_ms = 600000});
	nv_schedule_id c = add_ok(
	    e, "mark", &r,
	    (nv_schedule){.cron = "30 2 * * MON", .timezone = "Europe/Berlin"});
	nv_schedule_id d = add_ok(e, "count", &r, (nv_schedule){.at_ms = at});
	int64_t t1 = nv__epoch_ms();
	assert_true(a < b && b < c && c < d);

	assert_int_equal(nv_schedule_list(e, info, 8, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(info[0].id, a);
	assert_int_equal(info[0].kind, NV_SCHED_ONCE);
	assert_true(info[0].next_ms >= t0 + 3600000 &&
		    info[0].next_ms <= t1 + 3600000);
	assert_string_equal(info[0].task, "count");
	assert_int_equal(info[0].fired, 0);
	assert_int_equal(info[1].id, b);
	assert_int_equal(info[1].kind, NV_SCHED_INTERVAL);
	assert_int_equal(info[1].interval_ms, 600000);
	assert_true(info[1].next_ms >= t0 + 600000 &&
		    info[1].next_ms <= t1 + 600000 + 1); /* rounded up */
	assert_int_equal(info[2].id, c);
	assert_int_equal(info[2].kind, NV_SCHED_CRON);
	assert_string_equal(info[2].task, "mark");
	assert_string_equal(info[2].cron, "30 2 * * MON");
	assert_string_equal(info[2].timezone, "Europe/Berlin");
	int64_t c0, c1;
	assert_int_equal(nv_cron_next("30 2 * * MON", "Europe/Berlin", t0, &c0),
			 0);
	assert_int_equal(nv_cron_next("30 2 * * MON", "Europe/Berlin", t1, &c1),
			 0);
	assert_true(info[2].next_ms == c0 || info[2].next_ms == c1);
	assert_int_equal(info[3].id, d);
	assert_int_equal(info[3].kind, NV_SCHED_ONCE);
	assert_int_equal(info[3].next_ms, at);

	/* A short buffer: count is the total, only cap entries written. */
	memset(info, 0xab, sizeof(info));
	assert_int_equal(nv_schedule_list(e, info, 2, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(info[1].id, b);
	assert_int_equal(info[2].id, 0xababababababababull);
	assert_int_equal(nv_schedule_list(e, NULL, 3, &n), NV_EINVAL);
	assert_int_equal(nv_schedule_list(e, info, 3, NULL), NV_EINVAL);
	assert_int_equal(nv_schedule_list(NULL, info, 3, &n), NV_EINVAL);

	/* Cancel from the middle: still ordered; new ids keep growing. */
	assert_int_equal(nv_schedule_cancel(e, b), 0);
	nv_schedule_id f =
	    add_ok(e, "count", &r, (nv_schedule){.interval_ms = 20});
	assert_true(f > d);
	assert_int_equal(nv_schedule_list(e, info, 8, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(info[0].id, a);
	assert_int_equal(info[1].id, c);
	assert_int_equal(info[2].id, d);
	assert_int_equal(info[3].id, f);

	/* Running: the interval's fired count and next_ms advance. */
	assert_int_equal(nv_engine_start(e), 0);
	wait_runs(&r, 3, 20000);
	assert_int_equal(nv_schedule_list(e, info, 8, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(info[3].id, f);
	assert_true(info[3].fired >= 3);
	assert_true(info[3].next_ms > t1 + 20 * 3 - 2);
	assert_int_equal(info[0].fired, 0);
	engine_down(e);
	rec_free(&r);
}

/* ------------------------------------------------------------ one-off */

static void
test_schedule_once_fires_once_not_early(void **state)
{
	(void)state;
	nv_engine *e = engine_up(2);
	struct rec r, q;
	rec_init(&r, 4);
	rec_init(&q, 4);

	uint64_t t0 = nv__mono_ns();
	nv_schedule_id id = add_ok(e, "count", &r, (nv_schedule){.in_ms = 150});
	uint64_t t0b = nv__mono_ns();
	int64_t at = nv__epoch_ms() + 150;
	uint64_t t1 = nv__mono_ns();
	add_ok(e, "count", &q, (nv_schedule){.at_ms = at});
	wait_runs(&r, 1, 20000);
	wait_runs(&q, 1, 20000);
	assert_true((int64_t)(r.start_ns[0] - t0) >= 150000000 - EARLY_NS);
	/* at_ms was read 1 ms coarse: its true time is >= t1 - 1 ms. */
	assert_true((int64_t)(q.start_ns[0] - t1) >=
		    150000000 - EARLY_NS - 1000000);
	printf("# in_ms=150 ran %.2f ms after the add, at_ms %.2f ms\n",
	       (double)(r.start_ns[0] - t0b) / 1e6,
	       (double)(q.start_ns[0] - t1) / 1e6);
	/* Finished: not listed, not cancellable, never runs again. */
	barrier(e, 300);
	assert_int_equal(runs_of(&r), 1);
	assert_int_equal(runs_of(&q), 1);
	assert_int_equal(list_count(e), 0);
	assert_int_equal(nv_schedule_cancel(e, id), NV_ENOENT);
	engine_down(e);
	rec_free(&r);
	rec_free(&q);
}

static void
test_schedule_in_ms_lateness(void **state)
{
	(void)state;
	nv_engine *e = engine_up(2);
	const unsigned n = 200;
	struct rec r;
	uint64_t *due = calloc(n, sizeof(*due));
	int64_t *late = calloc(n, sizeof(*late));
	rec_init(&r, n);
	r.hits = calloc(n, sizeof(*r.hits));
	r.idx_ns = calloc(n, sizeof(*r.idx_ns));
	assert_non_null(due);
	assert_non_null(late);
	assert_non_null(r.hits);
	assert_non_null(r.idx_ns);

	/* 200 one-offs spread over a second, 5 ms apart: mostly one due at
	 * a time, so this measures the tick, not a burst. */
	for (unsigned i = 0; i < n; i++) {
		int64_t in = 20 + 5 * (int64_t)i;
		due[i] = nv__mono_ns() + (uint64_t)in * 1000000u;
		assert_int_equal(
		    add(e, "count", &r, i, (nv_schedule){.in_ms = in}, NULL),
		    0);
	}
	wait_runs(&r, n, 30000);
	assert_true(nv_test_wait_until(quiet, e, 10000));
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(r.hits[i], 1);
	for (unsigned i = 0; i < n; i++)
		late[i] = (int64_t)r.idx_ns[i] - (int64_t)due[i];
	qsort(late, n, sizeof(*late), cmp_i64);
	double p50 = (double)late[n / 2] / 1e6;
	double p99 = (double)late[(n * 99) / 100] / 1e6;
	printf("# in_ms lateness (job start - due), %u schedules: "
	       "min %.3f p50 %.3f p99 %.3f max %.3f ms\n",
	       n, (double)late[0] / 1e6, p50, p99, (double)late[n - 1] / 1e6);
	assert_true(late[0] >= -EARLY_NS); /* never early */
	assert_true(p99 < 50.0);
	engine_down(e);
	rec_free(&r);
	free(due);
	free(late);
}

static void
test_schedule_100k_once_exactly_once(void **state)
{
	(void)state;
	nv_engine *e = engine_up(2);
	uint64_t n = nv_test_scaled(100000);
	struct rec r;
	rec_init(&r, 0);
	r.hits = calloc(n, sizeof(*r.hits));
	assert_non_null(r.hits);

	/* All live at once: due 300-800 ms after the first add. */
	uint64_t t0 = nv__mono_ns();
	nv_schedule_id prev = 0;
	for (uint64_t i = 0; i < n; i++) {
		nv_schedule_id id;
		int64_t in = 300 + (int64_t)(i * 7919 % 500);
		int64_t left = in - (int64_t)((nv__mono_ns() - t0) / 1000000);
		assert_int_equal(
		    add(e, "count", &r, i,
			(nv_schedule){.in_ms = left > 0 ? left : 1}, &id),
		    0);
		assert_true(id > prev); /* unique, growing */
		prev = id;
	}
	double add_ms = (double)(nv__mono_ns() - t0) / 1e6;
	/* Usually the adds take well under the first due time (300 ms):
	 * then all n were live at once, none fired yet. */
	size_t live = list_count(e);
	uint64_t ran = runs_of(&r);
	bool all_live = nv__mono_ns() - t0 < 290000000ull;
	if (all_live) {
		assert_int_equal(live, n);
		assert_int_equal(ran, 0);
	}
	wait_runs(&r, n, 120000);
	double all_ms = (double)(nv__mono_ns() - t0) / 1e6;
	assert_true(nv_test_wait_until(quiet, e, 20000));
	barrier(e, 20);
	assert_int_equal(runs_of(&r), n);
	for (uint64_t i = 0; i < n; i++)
		if (r.hits[i] != 1)
			fail_msg("schedule %" PRIu64 " ran %u times", i,
				 r.hits[i]);
	assert_int_equal(list_count(e), 0);
	nv_stats st;
	assert_int_equal(nv_engine_stats(e, &st), 0);
	assert_int_equal(st.enqueued, n + 1); /* + the barrier's marker */
	printf("# %" PRIu64 " one-offs: added in %.0f ms (%s), all ran by "
	       "%.0f ms\n",
	       n, add_ms, all_live ? "all live at once" : "some fired", all_ms);
	engine_down(e);
	rec_free(&r);
}

/* ------------------------------------------------------ interval, cron */

static void
test_schedule_interval_rate(void **state)
{
	(void)state;
	nv_engine *e = engine_up(2);
	struct rec r;
	rec_init(&r, 256);
	uint64_t t0 = nv__mono_ns();
	nv_schedule_id id =
	    add_ok(e, "count", &r, (nv_schedule){.interval_ms = 50});
	/* Runs are due at +50, +100, ... +2000 ms: 40 in 2 s. Cancel half
	 * way to the 41st. */
	wait_until_ns(t0 + 2025000000ull);
	assert_int_equal(nv_schedule_cancel(e, id), 0);
	assert_true(nv_test_wait_until(quiet, e, 10000));
	uint64_t n = runs_of(&r);
	printf("# interval 50 ms over 2 s: %" PRIu64 " runs\n", n);
	assert_true(n >= 39 && n <= 41);
	/* Fixed rate, never early: run k starts >= k * 50 ms after the add
	 * (skipped runs only push later runs further out). */
	for (uint64_t k = 0; k < n && k < r.cap; k++)
		assert_true((int64_t)(r.start_ns[k] - t0) >=
			    (int64_t)(k + 1) * 50000000 - EARLY_NS);
	barrier(e, 150);
	assert_int_equal(runs_of(&r), n);
	engine_down(e);
	rec_free(&r);
}

static void
test_schedule_cron_seconds(void **state)
{
	(void)state;
	nv_engine *e = engine_up(2);
	struct rec r;
	rec_init(&r, 64);
	uint64_t t0 = nv__mono_ns();
	nv_schedule_id id =
	    add_ok(e, "count", &r, (nv_schedule){.cron = "* * * * * *"});
	nv_schedule_id z = add_ok(
	    e, "count", &r,
	    (nv_schedule){.cron = "*/2 * * * * *", .timezone = "Asia/Kolkata"});
	assert_int_equal(nv_schedule_cancel(e, z), 0); /* zone accepted */
	wait_until_ns(t0 + 3500000000ull);
	assert_int_equal(nv_schedule_cancel(e, id), 0);
	assert_true(nv_test_wait_until(quiet, e, 10000));
	uint64_t n = runs_of(&r);
	printf("# cron '* * * * * *' over 3.5 s: %" PRIu64 " runs, at ms", n);
	for (uint64_t k = 0; k < n && k < r.cap; k++)
		printf(" %03" PRId64, r.epoch_ms[k] % 1000);
	printf(" past the second\n");
	assert_true(n == 3 || n == 4);
	/* On whole seconds (generous lateness bound, never early: the
	 * epoch second of a run is not the same as the previous one's). */
	for (uint64_t k = 0; k < n; k++) {
		assert_true(r.epoch_ms[k] % 1000 < 250);
		if (k > 0)
			assert_true(r.epoch_ms[k] / 1000 >
				    r.epoch_ms[k - 1] / 1000);
	}
	engine_down(e);
	rec_free(&r);
}

/* ------------------------------------------------------------- cancel */

static void
test_schedule_cancel_stops_runs(void **state)
{
	(void)state;
	nv_engine *e = engine_up(2);
	struct rec r, o;
	rec_init(&r, 1);
	rec_init(&o, 1);
	nv_schedule_id id =
	    add_ok(e, "count", &r, (nv_schedule){.interval_ms = 10});
	nv_schedule_id other =
	    add_ok(e, "count", &o, (nv_schedule){.interval_ms = 10});
	wait_runs(&r, 3, 20000);
	assert_int_equal(nv_schedule_cancel(e, id), 0);
	assert_int_equal(nv_schedule_cancel(e, id), NV_ENOENT);
	/* Jobs dispatched before the cancel still run; then nothing. */
	uint64_t o_before = runs_of(&o);
	wait_runs(&o, o_before + 3, 20000); /* the other one goes on */
	assert_int_equal(nv_schedule_cancel(e, other), 0);
	assert_true(nv_test_wait_until(quiet, e, 10000));
	uint64_t n = runs_of(&r), m = runs_of(&o);
	barrier(e, 100); /* 10 periods */
	assert_int_equal(runs_of(&r), n);
	assert_int_equal(runs_of(&o), m);
	assert_int_equal(list_count(e), 0);
	engine_down(e);
	rec_free(&r);
	rec_free(&o);
}

static void
test_schedule_cancel_from_own_job(void **state)
{
	(void)state;
	nv_engine *e = engine_up(1);
	struct rec r;
	rec_init(&r, 1);
	r.cancel_at = 3;
	/* The first run is 100 ms out, long after self is published. */
	nv_schedule_id id =
	    add_ok(e, "selfcancel", &r, (nv_schedule){.interval_ms = 100});
	__atomic_store_n(&r.self, id, __ATOMIC_RELEASE);
	wait_runs(&r, 3, 20000);
	assert_true(nv_test_wait_until(quiet, e, 10000));
	barrier(e, 300); /* 3 periods */
	assert_int_equal(__atomic_load_n(&r.cancel_rc, __ATOMIC_ACQUIRE), 0);
	/* Run 3 cancelled; a 4th can only be one dispatched before that,
	 * and its own cancel then finds nothing. */
	uint64_t n = runs_of(&r);
	assert_true(n == 3 || n == 4);
	if (n == 4)
		assert_int_equal(
		    __atomic_load_n(&r.cancel_rc2, __ATOMIC_ACQUIRE),
		    NV_ENOENT);
	assert_int_equal(list_count(e), 0);
	engine_down(e);
	rec_free(&r);
}

/* --------------------------------------------------- sharing the wheel */

static void
test_schedule_retries_and_intervals_share_wheel(void **state)
{
	(void)state;
	enum { JOBS = 32, RETRIES = 10, DELAY = 30, NIV = 8, IV = 30 };
	nv_engine *e = engine_open(2, NV_MISFIRE_ONCE, 0);
	nv_task_opts o = {.retries = RETRIES, .retry_delay_ms = DELAY};
	struct flaky *f = calloc(1, sizeof(*f));
	struct rec iv[NIV];
	nv_schedule_id ids[NIV];
	nv_job_id jobs[JOBS];
	assert_non_null(f);
	f->last_attempt = RETRIES + 1;
	assert_int_equal(nv_task_register(e, "flaky", flaky_task, &o, 0), 0);
	assert_int_equal(nv_engine_start(e), 0);

	uint64_t t0 = nv__mono_ns();
	for (int i = 0; i < NIV; i++) {
		rec_init(&iv[i], 1);
		ids[i] = add_ok(e, "count", &iv[i],
				(nv_schedule){.interval_ms = IV});
	}
	for (uint64_t i = 0; i < JOBS; i++) {
		unsigned char a[sizeof(f) + sizeof(i)];
		memcpy(a, &f, sizeof(f));
		memcpy(a + sizeof(f), &i, sizeof(i));
		assert_int_equal(nv_delay(e, "flaky", a, sizeof(a), &jobs[i]),
				 0);
	}
	for (int i = 0; i < JOBS; i++) {
		nv_status st;
		assert_int_equal(nv_job_wait(e, jobs[i], 60000, &st), 0);
		assert_int_equal(st, NV_FAILED);
	}
	uint64_t t1 = nv__mono_ns();
	double w_ms = (double)(t1 - t0) / 1e6;
	uint64_t ivruns[NIV];
	for (int i = 0; i < NIV; i++)
		ivruns[i] = runs_of(&iv[i]);
	assert_int_equal(__atomic_load_n(&f->attempts, __ATOMIC_ACQUIRE),
			 JOBS * (RETRIES + 1));

	/* Retries at their rate: RETRIES delays of DELAY ms each, never
	 * early (1 ms rounding per delay), and not starved. */
	double min_span = 1e18, max_span = 0;
	for (int i = 0; i < JOBS; i++) {
		double span = (double)(f->last_ns[i] - f->first_ns[i]) / 1e6;
		min_span = span < min_span ? span : min_span;
		max_span = span > max_span ? span : max_span;
	}
	/* Intervals at theirs: ~w/IV runs each while the retries ran. */
	double expect = w_ms / IV;
	uint64_t lo = UINT64_MAX, hi = 0;
	for (int i = 0; i < NIV; i++) {
		lo = ivruns[i] < lo ? ivruns[i] : lo;
		hi = ivruns[i] > hi ? ivruns[i] : hi;
	}
	printf("# %d jobs x %d retries every %d ms: retry span %.1f-%.1f ms "
	       "(nominal %d); %d intervals of %d ms over %.0f ms: %" PRIu64
	       "-%" PRIu64 " runs (nominal %.1f)\n",
	       JOBS, RETRIES, DELAY, min_span, max_span, RETRIES * DELAY, NIV,
	       IV, w_ms, lo, hi, expect);
	assert_true(min_span >= RETRIES * (DELAY - 1) - 2);
	assert_true(max_span < RETRIES * DELAY * 4 + 2000);
	assert_true((double)lo >= expect / 2 - 1);
	assert_true((double)hi <= expect + 1);
	for (int i = 0; i < NIV; i++)
		assert_int_equal(nv_schedule_cancel(e, ids[i]), 0);
	engine_down(e);
	for (int i = 0; i < NIV; i++)
		rec_free(&iv[i]);
	free(f);
}

/* ------------------------------------------------------------ priority */

static void
test_schedule_runs_ahead_of_ordinary_work(void **state)
{
	(void)state;
	enum { BACKLOG = 300 };
	nv_engine *e = engine_open(1, NV_MISFIRE_ONCE, 0);
	__atomic_store_n(&order_seq, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&mark_place, 0, __ATOMIC_RELEASE);
	for (int i = 0; i < BACKLOG; i++)
		assert_int_equal(nv_delay(e, "slow", NULL, 0, NULL), 0);
	assert_int_equal(nv_engine_start(e), 0);
	/* Due 20 ms into a 600 ms backlog on the only worker. */
	assert_int_equal(nv_schedule_add(e, "mark", NULL, 0,
					 &(nv_schedule){.in_ms = 20}, NULL),
			 0);
	assert_true(nv_test_wait_until(quiet, e, 60000));
	uint64_t place = __atomic_load_n(&mark_place, __ATOMIC_ACQUIRE);
	printf("# scheduled job ran at place %" PRIu64 " of %d\n", place,
	       BACKLOG + 1);
	assert_true(place >= 1);
	/* Ahead of most of the backlog (a worker finishes the batch it
	 * popped before it looks at the priority ring again). */
	assert_true(place < BACKLOG / 2);
	engine_down(e);
}

/* ------------------------------------------------------------- misfire */

static void
misfire_case(nv_misfire_policy pol, bool before_start, uint64_t want)
{
	nv_engine *e = engine_open(1, pol, 0);
	struct rec r;
	rec_init(&r, 2);
	if (!before_start)
		assert_int_equal(nv_engine_start(e), 0);
	nv_schedule_id id = 0;
	assert_int_equal(add(e, "count", &r, 0,
			     (nv_schedule){.at_ms = nv__epoch_ms() - 60000},
			     &id),
			 0);
	assert_true(id != 0);
	if (before_start)
		assert_int_equal(nv_engine_start(e), 0);
	if (want)
		wait_runs(&r, want, 20000);
	barrier(e, 100);
	assert_int_equal(runs_of(&r), want);
	assert_int_equal(list_count(e), 0);
	engine_down(e);
	rec_free(&r);
}

static void
test_schedule_past_at_ms_misfire(void **state)
{
	(void)state;
	misfire_case(NV_MISFIRE_ONCE, true, 1);
	misfire_case(NV_MISFIRE_ONCE, false, 1);
	misfire_case(NV_MISFIRE_SKIP, true, 0);
	misfire_case(NV_MISFIRE_SKIP, false, 0);
}

/* ------------------------------------------------------- before start */

static void
before_start_case(nv_misfire_policy pol)
{
	nv_engine *e = engine_open(2, pol, 0);
	struct rec once, iv, cr;
	rec_init(&once, 2);
	rec_init(&iv, 2);
	rec_init(&cr, 2);
	add_ok(e, "count", &once, (nv_schedule){.in_ms = 30});
	add_ok(e, "count", &iv, (nv_schedule){.interval_ms = 30});
	add_ok(e, "count", &cr, (nv_schedule){.cron = "* * * * * *"});
	assert_int_equal(list_count(e), 3);
	/* Past the one-off's time while not started: nothing dispatched. */
	struct timespec ts = {0, 100000000};
	nanosleep(&ts, NULL);
	nv_schedule_info info[3];
	size_t n;
	assert_int_equal(nv_schedule_list(e, info, 3, &n), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(info[i].fired, 0);
	assert_int_equal(runs_of(&once) + runs_of(&iv) + runs_of(&cr), 0);
	assert_int_equal(nv_engine_start(e), 0);
	wait_runs(&once, 1, 20000);
	wait_runs(&iv, 2, 20000);
	wait_runs(&cr, 1, 20000);
	barrier(e, 50);
	assert_int_equal(runs_of(&once), 1);
	engine_down(e);
	rec_free(&once);
	rec_free(&iv);
	rec_free(&cr);
}

static void
test_schedule_added_before_start(void **state)
{
	(void)state;
	before_start_case(NV_MISFIRE_ONCE);
	/* An in_ms schedule never "misfired": it runs under SKIP too. */
	before_start_case(NV_MISFIRE_SKIP);
}

/* A burst of short in_ms schedules under SKIP: every one fires, however
 * late the scheduler thread gets to its add message. */
static void
test_schedule_short_in_ms_not_skipped(void **state)
{
	(void)state;
	nv_engine *e = engine_open(2, NV_MISFIRE_SKIP, 0);
	uint64_t n = nv_test_scaled(2000);
	struct rec r;
	rec_init(&r, 0);
	assert_int_equal(nv_engine_start(e), 0);
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(
		    add(e, "count", &r, i, (nv_schedule){.in_ms = 1}, NULL), 0);
	wait_runs(&r, n, 30000);
	barrier(e, 20);
	assert_int_equal(runs_of(&r), n);
	engine_down(e);
	rec_free(&r);
}

/* ------------------------------------------------------------ interval */

static void
test_schedule_interval_overlap(void **state)
{
	(void)state;
	nv_engine *e = engine_up(2);
	struct rec r;
	rec_init(&r, 1);
	nv_schedule_id id =
	    add_ok(e, "overlap", &r, (nv_schedule){.interval_ms = 30});
	wait_runs(&r, 2, 20000);
	assert_int_equal(nv_schedule_cancel(e, id), 0);
	assert_true(nv_test_wait_until(quiet, e, 20000));
	/* Run 1 was still going when run 2 started. */
	assert_int_equal(__atomic_load_n(&r.overlap_seen, __ATOMIC_ACQUIRE), 1);
	engine_down(e);
	rec_free(&r);
}

static void
test_schedule_interval_survives_failures(void **state)
{
	(void)state;
	nv_engine *e = engine_up(2);
	struct rec r;
	nv_stats st;
	rec_init(&r, 1);
	r.fail = 1;
	nv_schedule_id id =
	    add_ok(e, "count", &r, (nv_schedule){.interval_ms = 10});
	wait_runs(&r, 6, 20000);
	assert_int_equal(nv_schedule_cancel(e, id), 0);
	assert_true(nv_test_wait_until(quiet, e, 10000));
	assert_int_equal(nv_engine_stats(e, &st), 0);
	assert_true(st.failed >= 6);
	assert_int_equal(st.failed, runs_of(&r));
	assert_int_equal(st.succeeded, 0);
	engine_down(e);
	rec_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_schedule_add_bad_input),
	    cmocka_unit_test(test_schedule_cancel_errors),
	    cmocka_unit_test(test_schedule_after_stop),
	    cmocka_unit_test(test_schedule_add_racing_stop),
	    cmocka_unit_test(test_schedule_far_future_idle),
	    cmocka_unit_test(test_schedule_list_shows_schedules),
	    cmocka_unit_test(test_schedule_once_fires_once_not_early),
	    cmocka_unit_test(test_schedule_in_ms_lateness),
	    cmocka_unit_test(test_schedule_100k_once_exactly_once),
	    cmocka_unit_test(test_schedule_interval_rate),
	    cmocka_unit_test(test_schedule_cron_seconds),
	    cmocka_unit_test(test_schedule_cancel_stops_runs),
	    cmocka_unit_test(test_schedule_cancel_from_own_job),
	    cmocka_unit_test(test_schedule_retries_and_intervals_share_wheel),
	    cmocka_unit_test(test_schedule_runs_ahead_of_ordinary_work),
	    cmocka_unit_test(test_schedule_past_at_ms_misfire),
	    cmocka_unit_test(test_schedule_added_before_start),
	    cmocka_unit_test(test_schedule_short_in_ms_not_skipped),
	    cmocka_unit_test(test_schedule_interval_overlap),
	    cmocka_unit_test(test_schedule_interval_survives_failures),
	};
	if (getenv("NV_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("NV_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
