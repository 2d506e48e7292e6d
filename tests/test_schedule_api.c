/* ctest: labels=unit;concurrency timeout=180 */
/*
 * tests/test_schedule_api.c - the schedule API on the engine:
 * nv_schedule_add refusing bad input (and never dispatching for a failed
 * add), nv_schedule_cancel errors and cancels that stop runs (also from
 * the schedule's own job), nv_schedule_list contents and order, schedules
 * around the engine's lifecycle (added before start, after stop, racing a
 * stop), and the misfire policy for at_ms in the past. How schedules fire
 * over time is in test_schedule.c; the shared helpers in schedtest.h.
 */
#include "testutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "schedtest.h"

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_schedule_add_bad_input),
	    cmocka_unit_test(test_schedule_cancel_errors),
	    cmocka_unit_test(test_schedule_after_stop),
	    cmocka_unit_test(test_schedule_add_racing_stop),
	    cmocka_unit_test(test_schedule_list_shows_schedules),
	    cmocka_unit_test(test_schedule_cancel_stops_runs),
	    cmocka_unit_test(test_schedule_cancel_from_own_job),
	    cmocka_unit_test(test_schedule_past_at_ms_misfire),
	    cmocka_unit_test(test_schedule_added_before_start),
	};
	if (getenv("NV_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("NV_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
