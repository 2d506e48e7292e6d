/* ctest: labels=unit;concurrency timeout=300 */
/*
 * test_engine_events.c - what the engine tells about jobs: hooks (order
 * and counts per attempt; a failing hook is logged, reported as
 * NV_EV_HOOK_FAILED and changes neither the outcome nor the worker),
 * observers (event counts per type and per job) and nv_engine_stats.
 *
 * Hooks and observers run on worker threads: they record into globals
 * with atomics, the test checks after nv_job_wait (hooks and final events
 * come before the final status is stored).
 */
#include "testutil.h"
#define ET_SHARED_TASKS
#include "enginetest.h"


static int
t_fail(nv_ctx *c, const void *args, size_t len)
{
	(void)args;
	(void)len;
	__atomic_add_fetch(&g_runs, 1, __ATOMIC_SEQ_CST);
	nv_ctx_set_error(c, "failed on attempt %u", nv_ctx_attempt(c));
	return 1;
}

/* ---------------------------------------------------------------- hooks */

struct hook_ev {
	char kind; /* B before, F function, A after, E on_error */
	unsigned attempt;
	char err[48];
};

static struct {
	struct hook_ev ev[64];
	int n;		     /* atomic */
	int fail_in;	     /* which hook calls nv_ctx_set_error: B, A, E */
	int hook_failed_evs; /* atomic: NV_EV_HOOK_FAILED seen */
	char hook_err[64];   /* last HOOK_FAILED error text */
} g_hook;

static void
hook_log(char kind, unsigned attempt, const char *err)
{
	int i = __atomic_fetch_add(&g_hook.n, 1, __ATOMIC_SEQ_CST);
	if (i >= 64)
		return;
	g_hook.ev[i].kind = kind;
	g_hook.ev[i].attempt = attempt;
	snprintf(g_hook.ev[i].err, sizeof(g_hook.ev[i].err), "%s",
		 err ? err : "");
}

static void
h_before(nv_ctx *c)
{
	hook_log('B', nv_ctx_attempt(c), NULL);
	if (g_hook.fail_in == 'B')
		nv_ctx_set_error(c, "before hook broke");
}

static void
h_after(nv_ctx *c)
{
	hook_log('A', nv_ctx_attempt(c), NULL);
	if (g_hook.fail_in == 'A')
		nv_ctx_set_error(c, "after hook broke");
}

static void
h_error(nv_ctx *c, const char *err)
{
	hook_log('E', nv_ctx_attempt(c), err);
	if (g_hook.fail_in == 'E')
		nv_ctx_set_error(c, "error hook broke");
}

/* Fails on attempts 1 and 2 (the second without a message), succeeds on
 * the third. */
static int
t_flaky(nv_ctx *c, const void *args, size_t len)
{
	unsigned a = nv_ctx_attempt(c);
	(void)args;
	(void)len;
	hook_log('F', a, NULL);
	if (a == 1)
		return nv_ctx_set_error(c, "boom %u", a), 1;
	if (a == 2)
		return 5;
	return nv_ctx_set_result(c, "ok", 3);
}

static void
hook_obs(const nv_event *ev, void *arg)
{
	(void)arg;
	if (ev->type != NV_EV_HOOK_FAILED)
		return;
	snprintf(g_hook.hook_err, sizeof(g_hook.hook_err), "%s", ev->error);
	__atomic_add_fetch(&g_hook.hook_failed_evs, 1, __ATOMIC_SEQ_CST);
}

static void
expect_hooks(const char *kinds, const unsigned *attempts)
{
	size_t n = strlen(kinds);
	assert_int_equal(__atomic_load_n(&g_hook.n, __ATOMIC_SEQ_CST), n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(g_hook.ev[i].kind, kinds[i]);
		assert_int_equal(g_hook.ev[i].attempt, attempts[i]);
	}
}

static void
test_engine_hooks_order(void **state)
{
	nv_config cfg;
	nv_engine *e;
	nv_task_opts o = {.retries = 2,
			  .before_job = h_before,
			  .after_job = h_after,
			  .on_error = h_error};
	nv_task_opts o1 = o;
	nv_job_id id;
	(void)state;

	memset(&g_hook, 0, sizeof(g_hook));
	et_cfg(&cfg, 2);
	o1.retries = 1;
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "flaky", t_flaky, &o, 0), 0);
	assert_int_equal(nv_task_register(e, "fail", t_fail, &o1, 0), 0);
	et_start(e);

	/* Two failed attempts, then success. */
	assert_int_equal(nv_delay(e, "flaky", NULL, 0, &id), 0);
	assert_int_equal(et_wait_job(e, id), NV_SUCCESS);
	static const unsigned a1[] = {1, 1, 1, 2, 2, 2, 3, 3, 3};
	expect_hooks("BFEBFEBFA", a1);
	assert_string_equal(g_hook.ev[2].err, "boom 1");
	assert_string_equal(g_hook.ev[5].err, "task returned 5");
	expect_result(e, id, "ok", 3);

	/* Always failing, one retry: on_error per attempt, no after_job. */
	memset(&g_hook, 0, sizeof(g_hook));
	assert_int_equal(nv_delay(e, "fail", NULL, 0, &id), 0);
	assert_int_equal(et_wait_job(e, id), NV_FAILED);
	static const unsigned a2[] = {1, 1, 2, 2};
	assert_int_equal(__atomic_load_n(&g_hook.n, __ATOMIC_SEQ_CST), 4);
	assert_int_equal(g_hook.ev[0].kind, 'B');
	assert_int_equal(g_hook.ev[1].kind, 'E');
	assert_int_equal(g_hook.ev[2].kind, 'B');
	assert_int_equal(g_hook.ev[3].kind, 'E');
	for (int i = 0; i < 4; i++)
		assert_int_equal(g_hook.ev[i].attempt, a2[i]);
	assert_string_equal(g_hook.ev[1].err, "failed on attempt 1");
	assert_string_equal(g_hook.ev[3].err, "failed on attempt 2");
	nv_engine_close(e);
}

/* A hook that reports an error is logged, reported as NV_EV_HOOK_FAILED,
 * and changes neither the job's outcome nor the worker's life. */
static void
test_engine_hook_failure(void **state)
{
	static const char which[] = {'B', 'A', 'E'};
	nv_config cfg;
	nv_engine *e;
	nv_task_opts o = {.retries = 2,
			  .before_job = h_before,
			  .after_job = h_after,
			  .on_error = h_error};
	nv_task_opts f = o;
	struct et_capture cap;
	(void)state;

	et_cfg(&cfg, 2);
	cfg.log_level = NV_LOG_WARN;
	f.retries = 0;
	for (size_t k = 0; k < sizeof(which); k++) {
		nv_job_id id, fid, more[50];
		char *log;

		memset(&g_hook, 0, sizeof(g_hook));
		g_hook.fail_in = which[k];
		__atomic_store_n(&g_runs, 0, __ATOMIC_SEQ_CST);
		e = et_open(&cfg);
		assert_int_equal(nv_engine_observe(e, hook_obs, NULL), 0);
		assert_int_equal(nv_task_register(e, "flaky", t_flaky, &o, 0),
				 0);
		assert_int_equal(nv_task_register(e, "fail", t_fail, &f, 0), 0);
		assert_int_equal(nv_task_register(e, "noop", t_noop, NULL, 0),
				 0);
		et_start(e);
		et_capture_begin(&cap);
		assert_int_equal(nv_delay(e, "flaky", NULL, 0, &id), 0);
		nv_status st = et_wait_job(e, id);
		assert_int_equal(nv_delay(e, "fail", NULL, 0, &fid), 0);
		nv_status fst = et_wait_job(e, fid);
		log = et_capture_end(&cap);

		/* Outcomes as without the failing hook. */
		assert_int_equal(st, NV_SUCCESS);
		expect_result(e, id, "ok", 3);
		assert_int_equal(fst, NV_FAILED);
		expect_error(e, fid, "failed on attempt 1");
		/* flaky: B x3, A x1, E x2; fail: B x1, E x1. */
		int want = which[k] == 'B' ? 4 : which[k] == 'A' ? 1 : 3;
		assert_int_equal(
		    __atomic_load_n(&g_hook.hook_failed_evs, __ATOMIC_SEQ_CST),
		    want);
		assert_non_null(strstr(g_hook.hook_err, "hook broke"));
		assert_non_null(strstr(log, "hook of task"));
		assert_non_null(strstr(log, "hook broke"));
		free(log);
		/* Workers alive and working. */
		assert_int_equal(et_stat(e, ET_WORKERS), 2);
		for (int i = 0; i < 50; i++)
			assert_int_equal(nv_delay(e, "noop", NULL, 0, &more[i]),
					 0);
		for (int i = 0; i < 50; i++)
			assert_int_equal(et_wait_job(e, more[i]), NV_SUCCESS);
		assert_int_equal(et_stat(e, ET_WORKERS), 2);
		nv_engine_close(e);
	}
}

/* ---------------------------------------------------------------- observers */

#define MAXEV 4096

static struct {
	int n; /* atomic */
	struct {
		nv_event_type type;
		nv_job_id id;
		unsigned attempt;
		bool task_ok;
		bool error_set;
		bool arg_ok;
	} ev[MAXEV];
	int per_type[NV_EV_HOOK_FAILED + 1]; /* atomic */
	int second;			     /* atomic: second observer */
} g_obs;

static void
obs_record(const nv_event *ev, void *arg)
{
	int i = __atomic_fetch_add(&g_obs.n, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&g_obs.per_type[ev->type], 1, __ATOMIC_SEQ_CST);
	if (i >= MAXEV)
		return;
	g_obs.ev[i].type = ev->type;
	g_obs.ev[i].id = ev->id;
	g_obs.ev[i].attempt = ev->attempt;
	g_obs.ev[i].task_ok =
	    ev->task != NULL &&
	    (strcmp(ev->task, "noop") == 0 || strcmp(ev->task, "fail") == 0);
	g_obs.ev[i].error_set = ev->error != NULL;
	g_obs.ev[i].arg_ok = arg == &g_obs;
}

static void
obs_count(const nv_event *ev, void *arg)
{
	(void)ev;
	(void)arg;
	__atomic_add_fetch(&g_obs.second, 1, __ATOMIC_SEQ_CST);
}

static void
test_engine_observers(void **state)
{
	enum { NOK = 40, NBAD = 10, RETRIES = 2 };
	nv_config cfg;
	nv_engine *e;
	nv_task_opts o = {.retries = RETRIES};
	nv_job_id ids[NOK + NBAD];
	(void)state;

	memset(&g_obs, 0, sizeof(g_obs));
	et_cfg(&cfg, 3);
	e = et_open(&cfg);
	assert_int_equal(nv_engine_observe(e, NULL, NULL), NV_EINVAL);
	assert_int_equal(nv_engine_observe(NULL, obs_count, NULL), NV_EINVAL);
	assert_int_equal(nv_engine_observe(e, obs_record, &g_obs), 0);
	assert_int_equal(nv_engine_observe(e, obs_count, NULL), 0);
	assert_int_equal(nv_task_register(e, "noop", t_noop, NULL, 0), 0);
	assert_int_equal(nv_task_register(e, "fail", t_fail, &o, 0), 0);
	et_start(e);
	assert_int_equal(nv_engine_observe(e, obs_count, NULL), NV_EBUSY);
	for (int i = 0; i < NOK + NBAD; i++)
		assert_int_equal(
		    nv_delay(e, i < NOK ? "noop" : "fail", NULL, 0, &ids[i]),
		    0);
	for (int i = 0; i < NOK + NBAD; i++)
		assert_int_equal(et_wait_job(e, ids[i]),
				 i < NOK ? NV_SUCCESS : NV_FAILED);

	int attempts = NOK + NBAD * (RETRIES + 1);
	assert_int_equal(g_obs.per_type[NV_EV_ENQUEUED], NOK + NBAD);
	assert_int_equal(g_obs.per_type[NV_EV_STARTED], attempts);
	assert_int_equal(g_obs.per_type[NV_EV_SUCCEEDED], NOK);
	assert_int_equal(g_obs.per_type[NV_EV_RETRY], NBAD * RETRIES);
	assert_int_equal(g_obs.per_type[NV_EV_FAILED], NBAD);
	assert_int_equal(g_obs.per_type[NV_EV_TIMEOUT], 0);
	assert_int_equal(g_obs.per_type[NV_EV_HOOK_FAILED], 0);
	int total = __atomic_load_n(&g_obs.n, __ATOMIC_SEQ_CST);
	/* NOK: ENQUEUED, STARTED, SUCCEEDED; NBAD: ENQUEUED, RETRIES + 1
	 * STARTED, RETRIES RETRY, FAILED. */
	assert_int_equal(total, 3 * NOK + NBAD * (2 * RETRIES + 3));
	assert_int_equal(__atomic_load_n(&g_obs.second, __ATOMIC_SEQ_CST),
			 total);

	/* Per job: one ENQUEUED, one final event, STARTED attempts 1..k,
	 * errors exactly on RETRY and FAILED. */
	for (int j = 0; j < NOK + NBAD; j++) {
		int enq = 0, fin = 0, started = 0;
		unsigned maxatt = 0;
		for (int i = 0; i < total; i++) {
			if (g_obs.ev[i].id != ids[j])
				continue;
			assert_true(g_obs.ev[i].task_ok);
			assert_true(g_obs.ev[i].arg_ok);
			nv_event_type t = g_obs.ev[i].type;
			assert_int_equal(g_obs.ev[i].error_set,
					 t == NV_EV_RETRY || t == NV_EV_FAILED);
			if (t == NV_EV_ENQUEUED)
				enq++;
			if (t == NV_EV_SUCCEEDED || t == NV_EV_FAILED)
				fin++;
			if (t == NV_EV_STARTED) {
				started++;
				if (g_obs.ev[i].attempt > maxatt)
					maxatt = g_obs.ev[i].attempt;
			}
		}
		assert_int_equal(enq, 1);
		assert_int_equal(fin, 1);
		assert_int_equal(started, j < NOK ? 1 : RETRIES + 1);
		assert_int_equal(maxatt, (unsigned)started);
	}
	nv_engine_close(e);

	/* At most 16 observers. */
	e = et_open(&cfg);
	for (int i = 0; i < 16; i++)
		assert_int_equal(nv_engine_observe(e, obs_count, NULL), 0);
	assert_int_equal(nv_engine_observe(e, obs_count, NULL), NV_ENOMEM);
	nv_engine_close(e);
}

/* STARTED reports the wait from dispatch to start, also for jobs queued
 * before the engine started: never more than the time since the first
 * dispatch (a record without a dispatch time reported the whole uptime
 * of the clock). */
static uint64_t g_max_wait; /* atomic */
static int g_started;	    /* atomic */

static void
obs_wait(const nv_event *ev, void *arg)
{
	(void)arg;
	if (ev->type != NV_EV_STARTED)
		return;
	uint64_t cur = __atomic_load_n(&g_max_wait, __ATOMIC_SEQ_CST);
	while (ev->latency_ns > cur &&
	       !__atomic_compare_exchange_n(&g_max_wait, &cur, ev->latency_ns,
					    false, __ATOMIC_SEQ_CST,
					    __ATOMIC_SEQ_CST))
		;
	__atomic_add_fetch(&g_started, 1, __ATOMIC_SEQ_CST);
}

static void
test_engine_observer_wait(void **state)
{
	enum { N = 20, M = 8 }; /* N nv_delay, M in one nv_map */
	nv_config cfg;
	nv_engine *e;
	nv_job_id ids[N + M];
	nv_args av[M];
	(void)state;

	for (int i = 0; i < M; i++) {
		av[i].data = NULL;
		av[i].len = 0;
	}

	__atomic_store_n(&g_max_wait, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&g_started, 0, __ATOMIC_SEQ_CST);
	et_cfg(&cfg, 2);
	e = et_open(&cfg);
	assert_int_equal(nv_engine_observe(e, obs_wait, NULL), 0);
	assert_int_equal(nv_task_register(e, "noop", t_noop, NULL, 0), 0);
	uint64_t t0 = nv_test_clock_ns(CLOCK_MONOTONIC);
	/* The nv_map batch and half the nv_delay jobs before start. */
	assert_int_equal(nv_map(e, "noop", av, M, ids + N), 0);
	for (int i = 0; i < N; i++) {
		if (i == N / 2)
			et_start(e);
		assert_int_equal(nv_delay(e, "noop", NULL, 0, &ids[i]), 0);
	}
	for (int i = 0; i < N + M; i++)
		assert_int_equal(et_wait_job(e, ids[i]), NV_SUCCESS);
	uint64_t t1 = nv_test_clock_ns(CLOCK_MONOTONIC);
	assert_int_equal(__atomic_load_n(&g_started, __ATOMIC_SEQ_CST), N + M);
	assert_true(__atomic_load_n(&g_max_wait, __ATOMIC_SEQ_CST) <= t1 - t0);
	nv_engine_close(e);
}

/* ---------------------------------------------------------------- stats */

static void
test_engine_stats(void **state)
{
	enum { NOK = 10, NBAD = 3, RETRIES = 2 };
	nv_config cfg;
	nv_engine *e;
	nv_task_opts o = {.retries = RETRIES};
	nv_job_id ids[NOK + NBAD], gid;
	nv_stats s;
	(void)state;

	et_gate_reset(&gate);
	et_cfg(&cfg, 2);
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "noop", t_noop, NULL, 0), 0);
	assert_int_equal(nv_task_register(e, "fail", t_fail, &o, 0), 0);
	assert_int_equal(nv_task_register(e, "gate", t_gate, NULL, 0), 0);
	et_start(e);
	for (int i = 0; i < NOK + NBAD; i++)
		assert_int_equal(
		    nv_delay(e, i < NOK ? "noop" : "fail", NULL, 0, &ids[i]),
		    0);
	for (int i = 0; i < NOK + NBAD; i++)
		et_wait_job(e, ids[i]);
	assert_true(et_wait_stat(e, ET_RESULTS, NOK + NBAD));
	assert_int_equal(nv_engine_stats(e, &s), 0);
	assert_int_equal(s.enqueued, NOK + NBAD);
	assert_int_equal(s.started, NOK + NBAD * (RETRIES + 1));
	assert_int_equal(s.succeeded, NOK);
	assert_int_equal(s.failed, NBAD);
	assert_int_equal(s.retried, NBAD * RETRIES);
	assert_int_equal(s.timed_out, 0);
	assert_int_equal(s.queued, 0);
	assert_int_equal(s.running, 0);
	assert_int_equal(s.workers, 2);
	assert_int_equal(s.results, NOK + NBAD);
	assert_int_equal(s.store_error, 0);

	/* A job inside its function counts as running. */
	assert_int_equal(nv_delay(e, "gate", NULL, 0, &gid), 0);
	assert_true(et_wait_int(&gate.entered, 1));
	assert_true(et_wait_stat(e, ET_RUNNING, 1));
	et_gate_open(&gate);
	assert_int_equal(et_wait_job(e, gid), NV_SUCCESS);
	assert_true(et_wait_stat(e, ET_RUNNING, 0));
	nv_engine_close(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_engine_hooks_order),
	    cmocka_unit_test(test_engine_hook_failure),
	    cmocka_unit_test(test_engine_observers),
	    cmocka_unit_test(test_engine_observer_wait),
	    cmocka_unit_test(test_engine_stats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
