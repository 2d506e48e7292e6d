/* ctest: labels=unit;concurrency timeout=180 */
/*
 * tests/test_schedule.c - schedules firing on a running engine: one-offs
 * (in_ms, at_ms) run once and never early, 100k live one-offs each run
 * exactly once, intervals keep their rate (also while they overlap and
 * while their jobs fail), cron on whole seconds, retries and intervals
 * sharing the scheduler's wheel, scheduled jobs ahead of a backlog, and a
 * far-future schedule leaving the scheduler idle. Adding, listing,
 * cancelling and bad input are in test_schedule_api.c; the shared helpers
 * (records, tasks, waits, barrier) in schedtest.h.
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
#include "schedtest.h"

#define EARLY_NS 500000ll /* slew between the epoch and mono clocks */

/* ------------------------------------------------------------ helpers */

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

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* ---------------------------------------------------------- far future */

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
	    cmocka_unit_test(test_schedule_far_future_idle),
	    cmocka_unit_test(test_schedule_once_fires_once_not_early),
	    cmocka_unit_test(test_schedule_in_ms_lateness),
	    cmocka_unit_test(test_schedule_100k_once_exactly_once),
	    cmocka_unit_test(test_schedule_interval_rate),
	    cmocka_unit_test(test_schedule_cron_seconds),
	    cmocka_unit_test(test_schedule_retries_and_intervals_share_wheel),
	    cmocka_unit_test(test_schedule_runs_ahead_of_ordinary_work),
	    cmocka_unit_test(test_schedule_short_in_ms_not_skipped),
	    cmocka_unit_test(test_schedule_interval_overlap),
	    cmocka_unit_test(test_schedule_interval_survives_failures),
	};
	if (getenv("NV_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("NV_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
