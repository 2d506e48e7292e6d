/* ctest: labels=unit;concurrency timeout=300 */
/*
 * test_engine_retry.c - retries, timeouts and stuck tasks.
 *
 * Retries: exact attempt counts (the function is called retries + 1 times
 * when it keeps failing, and never again), success on a later attempt,
 * retry delays never early (the next attempt starts at least delay ms
 * after the previous one returned, measured inside the function) and a
 * delayed retry does not hold a worker.
 *
 * Timeouts: each policy (RETRY, FAIL, IGNORE, and the engine's defaults)
 * with a cooperative task that stops when nv_ctx_cancelled turns true, and
 * with a task that never returns (it ignores cancellation and loops until
 * the test releases it at the end): the policy is applied while the
 * function still loops, other jobs keep completing, a replacement worker
 * keeps the pool at strength, and the surplus worker leaves once the stuck
 * function returns.
 *
 * Everything a task records is written with atomics: a timed-out function
 * may still be running while the test reads.
 */
#include "testutil.h"
#include "enginetest.h"
#include "engine/engine_int.h" /* watch_off: the timeout sampler's state */

#define MAXJOBS 8
#define MAXATT 16

/* Per-job record, indexed by the key passed as the job's argument. */
static struct rec {
	int calls;		 /* atomic */
	unsigned att[MAXATT];	 /* attempt numbers seen, in call order */
	uint64_t start[MAXATT];	 /* mono ms at entry */
	uint64_t end[MAXATT];	 /* mono ms just before returning */
	uint64_t cancel[MAXATT]; /* mono ms when cancellation was seen */
	int late_rc[MAXATT];	 /* nv_ctx_set_result after cancellation */
	unsigned late_attempt;	 /* nv_ctx_attempt read late by attempt 1 */
} g_rec[MAXJOBS];

static int g_in_loop;  /* atomic: never-returning executions looping */
static int g_release;  /* atomic: lets them return */
static int g_att2;     /* atomic: some attempt 2 has started */
static int g_noops;    /* atomic */
static int g_timeouts; /* atomic: NV_EV_TIMEOUT events */

struct job_arg {
	uint32_t key;
	uint32_t ok_at; /* attempt that succeeds (0 = never) */
};

static void
reset(void)
{
	memset(g_rec, 0, sizeof(g_rec));
	__atomic_store_n(&g_in_loop, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&g_release, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&g_att2, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&g_noops, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&g_timeouts, 0, __ATOMIC_SEQ_CST);
}

#define ST(x, v) __atomic_store_n(&(x), (v), __ATOMIC_SEQ_CST)
#define LD(x) __atomic_load_n(&(x), __ATOMIC_SEQ_CST)

/* Records entry; returns the call index (or -1 when out of room). */
static int
enter(nv_ctx *c, const struct job_arg *a)
{
	struct rec *r = &g_rec[a->key % MAXJOBS];
	int i = __atomic_fetch_add(&r->calls, 1, __ATOMIC_SEQ_CST);
	if (i >= MAXATT)
		return -1;
	ST(r->start[i], et_now_ms());
	ST(r->att[i], nv_ctx_attempt(c));
	if (nv_ctx_attempt(c) == 2)
		ST(g_att2, 1);
	return i;
}

static void
leave(const struct job_arg *a, int i)
{
	if (i >= 0)
		ST(g_rec[a->key % MAXJOBS].end[i], et_now_ms());
}

/* Fails until attempt ok_at (never when 0). */
static int
t_fail_until(nv_ctx *c, const void *args, size_t len)
{
	const struct job_arg *a = args;
	unsigned at = nv_ctx_attempt(c);
	int i;
	if (len != sizeof(*a))
		return 100;
	i = enter(c, a);
	if (a->ok_at != 0 && at >= a->ok_at) {
		char buf[32];
		int n = snprintf(buf, sizeof(buf), "done at %u", at);
		nv_ctx_set_result(c, buf, (size_t)n + 1);
		leave(a, i);
		return 0;
	}
	nv_ctx_set_error(c, "attempt %u", at);
	leave(a, i);
	return 1;
}

/* Cooperative: loops until cancelled, unless this is attempt ok_at (then
 * returns at once with a result). After cancellation it tries a late
 * result and, on attempt 1, reads its attempt number again once some
 * attempt 2 has started. */
static int
t_coop(nv_ctx *c, const void *args, size_t len)
{
	const struct job_arg *a = args;
	struct rec *r = &g_rec[a->key % MAXJOBS];
	unsigned at = nv_ctx_attempt(c);
	int i;
	if (len != sizeof(*a))
		return 100;
	i = enter(c, a);
	if (a->ok_at != 0 && at >= a->ok_at) {
		nv_ctx_set_result(c, "in time", 8);
		leave(a, i);
		return 0;
	}
	while (!nv_ctx_cancelled(c))
		et_sleep_us(500);
	if (i >= 0) {
		ST(r->cancel[i], et_now_ms());
		ST(r->late_rc[i], nv_ctx_set_result(c, "late", 5));
	}
	if (at == 1 && a->ok_at == 2) {
		uint64_t end = et_now_ms() + 10000;
		while (!LD(g_att2) && et_now_ms() < end)
			et_sleep_us(500);
		ST(r->late_attempt, nv_ctx_attempt(c));
	}
	leave(a, i);
	return 0;
}

/* Never returns on its own: ignores cancellation until released. */
static int
t_never(nv_ctx *c, const void *args, size_t len)
{
	(void)c;
	(void)args;
	(void)len;
	__atomic_add_fetch(&g_in_loop, 1, __ATOMIC_SEQ_CST);
	while (!LD(g_release))
		et_sleep_us(500);
	__atomic_sub_fetch(&g_in_loop, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static int
t_noop(nv_ctx *c, const void *args, size_t len)
{
	(void)c;
	(void)args;
	(void)len;
	__atomic_add_fetch(&g_noops, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static void
count_timeouts(const nv_event *ev, void *arg)
{
	(void)arg;
	if (ev->type == NV_EV_TIMEOUT)
		__atomic_add_fetch(&g_timeouts, 1, __ATOMIC_SEQ_CST);
}

static nv_job_id
dispatch(nv_engine *e, const char *task, uint32_t key, uint32_t ok_at)
{
	struct job_arg a = {key, ok_at};
	nv_job_id id = 0;
	assert_int_equal(nv_delay(e, task, &a, sizeof(a), &id), 0);
	return id;
}

static void
expect_error_has(nv_engine *e, nv_job_id id, const char *needle)
{
	char *msg = NULL;
	assert_int_equal(nv_job_error(e, id, &msg), 0);
	if (strstr(msg, needle) == NULL)
		fail_msg("error '%s' lacks '%s'", msg, needle);
	nv_free(msg);
}

static void
expect_result_str(nv_engine *e, nv_job_id id, const char *want)
{
	void *res = NULL;
	size_t len = 0;
	if (want == NULL) {
		assert_int_equal(nv_job_result(e, id, &res, &len),
				 NV_ENORESULT);
		return;
	}
	assert_int_equal(nv_job_result(e, id, &res, &len), 0);
	assert_int_equal(len, strlen(want) + 1);
	assert_string_equal(res, want);
	nv_free(res);
}

/* ---------------------------------------------------------------- retries */

static void
test_retry_exact_attempts(void **state)
{
	static const unsigned retries[] = {0, 1, 3, 5};
	nv_config cfg;
	nv_engine *e;
	nv_job_id ids[7];
	nv_stats s;
	char name[16], want[32];
	(void)state;

	reset();
	et_cfg(&cfg, 2);
	e = et_open(&cfg);
	for (int k = 0; k < 4; k++) {
		nv_task_opts o = {.retries = retries[k]};
		snprintf(name, sizeof(name), "fail%u", retries[k]);
		assert_int_equal(nv_task_register(e, name, t_fail_until, &o, 0),
				 0);
	}
	et_start(e);
	for (uint32_t k = 0; k < 4; k++) {
		snprintf(name, sizeof(name), "fail%u", retries[k]);
		ids[k] = dispatch(e, name, k, 0);
	}
	/* Succeeds on attempt 3: with 5 retries, with exactly 2 (the last
	 * allowed attempt), and fails with only 1. */
	ids[4] = dispatch(e, "fail5", 4, 3);
	nv_task_opts two = {.retries = 2};
	assert_int_equal(nv_task_register(e, "two", t_fail_until, &two, 0), 0);
	ids[5] = dispatch(e, "two", 5, 3);
	ids[6] = dispatch(e, "fail1", 6, 3);

	for (int k = 0; k < 4; k++) {
		assert_int_equal(et_wait_job(e, ids[k]), NV_FAILED);
		snprintf(want, sizeof(want), "attempt %u", retries[k] + 1);
		expect_error_has(e, ids[k], want);
		expect_result_str(e, ids[k], NULL);
	}
	assert_int_equal(et_wait_job(e, ids[4]), NV_SUCCESS);
	expect_result_str(e, ids[4], "done at 3");
	assert_int_equal(et_wait_job(e, ids[5]), NV_SUCCESS);
	expect_result_str(e, ids[5], "done at 3");
	assert_int_equal(et_wait_job(e, ids[6]), NV_FAILED);
	expect_error_has(e, ids[6], "attempt 2");

	/* After stop nothing more can run: the counts are final. */
	assert_int_equal(nv_engine_stop(e, 10000), 0);
	for (int k = 0; k < 7; k++) {
		int want_calls = k < 4 ? (int)retries[k] + 1 : k == 6 ? 2 : 3;
		assert_int_equal(LD(g_rec[k].calls), want_calls);
		for (int i = 0; i < want_calls; i++)
			assert_int_equal(LD(g_rec[k].att[i]), i + 1);
	}
	assert_int_equal(nv_engine_stats(e, &s), 0);
	assert_int_equal(s.enqueued, 7);
	assert_int_equal(s.started, 1 + 2 + 4 + 6 + 3 + 3 + 2);
	assert_int_equal(s.retried, 0 + 1 + 3 + 5 + 2 + 2 + 1);
	assert_int_equal(s.failed, 5);
	assert_int_equal(s.succeeded, 2);
	nv_engine_close(e);
}

/* Every retry starts at least its delay after the previous attempt
 * returned; a waiting retry holds no worker. */
static void
test_retry_delay_respected(void **state)
{
	nv_config cfg;
	nv_engine *e;
	nv_task_opts a = {.retries = 3, .retry_delay_ms = 30};
	nv_task_opts b = {.retries = 2}; /* engine default: 70 */
	nv_task_opts c = {.retries = 1, .retry_delay_ms = 300};
	nv_task_opts d = {
	    .retries = 4, .retry_delay_ms = 20, .retry_backoff = true};
	nv_job_id ids[4];
	int noops_at_c2;
	(void)state;

	reset();
	et_cfg(&cfg, 1); /* one worker: a delayed retry must not block it */
	cfg.retry_delay_ms = 70;
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "a", t_fail_until, &a, 0), 0);
	assert_int_equal(nv_task_register(e, "b", t_fail_until, &b, 0), 0);
	assert_int_equal(nv_task_register(e, "c", t_fail_until, &c, 0), 0);
	assert_int_equal(nv_task_register(e, "d", t_fail_until, &d, 0), 0);
	assert_int_equal(nv_task_register(e, "noop", t_noop, NULL, 0), 0);
	et_start(e);
	ids[2] = dispatch(e, "c", 2, 0);
	/* While c waits 300 ms for its retry, the single worker runs
	 * everything else. */
	assert_true(et_wait_int(&g_rec[2].calls, 1));
	for (int i = 0; i < 20; i++)
		assert_int_equal(nv_delay(e, "noop", NULL, 0, NULL), 0);
	ids[0] = dispatch(e, "a", 0, 0);
	ids[1] = dispatch(e, "b", 1, 0);
	ids[3] = dispatch(e, "d", 3, 0);
	assert_true(et_wait_int(&g_rec[2].calls, 2));
	noops_at_c2 = LD(g_noops);
	for (int k = 0; k < 4; k++)
		assert_int_equal(et_wait_job(e, ids[k]), NV_FAILED);
	assert_int_equal(noops_at_c2, 20);

	static const unsigned delay[] = {30, 70, 300, 20};
	static const int calls[] = {4, 3, 2, 5};
	for (int k = 0; k < 4; k++) {
		struct rec *r = &g_rec[k];
		assert_int_equal(LD(r->calls), calls[k]);
		for (int i = 1; i < calls[k]; i++) {
			uint64_t gap = LD(r->start[i]) - LD(r->end[i - 1]);
			uint64_t lo = delay[k], hi = UINT64_MAX;
			if (k == 3) {
				/* Backoff with jitter: [d/2, d * 2^(i-1)]. */
				lo = delay[k] / 2;
				hi = ((uint64_t)delay[k] << (i - 1)) +
				     et_slack_ms();
			}
			if (gap < lo || gap > hi)
				fail_msg("job %d retry %d after %llu ms, want "
					 "[%llu, %llu]",
					 k, i, (unsigned long long)gap,
					 (unsigned long long)lo,
					 (unsigned long long)hi);
		}
	}
	nv_engine_close(e);
}

/* ---------------------------------------------------------------- timeouts */

static void
test_timeout_policies_cooperative(void **state)
{
	nv_config cfg;
	nv_engine *e;
	nv_task_opts retry = {
	    .retries = 2, .timeout_ms = 40, .timeout_policy = NV_TIMEOUT_RETRY};
	nv_task_opts fail = {
	    .retries = 3, .timeout_ms = 40, .timeout_policy = NV_TIMEOUT_FAIL};
	nv_task_opts ignore = {.retries = 3,
			       .timeout_ms = 40,
			       .timeout_policy = NV_TIMEOUT_IGNORE};
	nv_job_id id[4];
	uint64_t t0;
	nv_stats s;
	(void)state;

	reset();
	et_cfg(&cfg, 2);
	e = et_open(&cfg);
	assert_int_equal(nv_engine_observe(e, count_timeouts, NULL), 0);
	assert_int_equal(nv_task_register(e, "retry", t_coop, &retry, 0), 0);
	assert_int_equal(nv_task_register(e, "fail", t_coop, &fail, 0), 0);
	assert_int_equal(nv_task_register(e, "ignore", t_coop, &ignore, 0), 0);
	et_start(e);

	/* RETRY: every attempt times out -> FAILED after retries + 1. */
	t0 = et_now_ms();
	id[0] = dispatch(e, "retry", 0, 0);
	assert_int_equal(et_wait_job(e, id[0]), NV_FAILED);
	expect_error_has(e, id[0], "timed out after 40 ms");
	expect_result_str(e, id[0], NULL);
	assert_true(et_wait_int(&g_rec[0].calls, 3));
	/* The first attempt was cancelled no earlier than its timeout. */
	assert_true(et_wait_u64(&g_rec[0].cancel[0], 1));
	assert_true(LD(g_rec[0].cancel[0]) - t0 >= 40);

	/* RETRY, and attempt 2 returns in time: SUCCESS with its result;
	 * attempt 1's late result is refused and its context still says
	 * attempt 1. */
	ST(g_att2, 0); /* job 0 had attempts 2 */
	id[1] = dispatch(e, "retry", 1, 2);
	assert_int_equal(et_wait_job(e, id[1]), NV_SUCCESS);
	expect_result_str(e, id[1], "in time");
	assert_true(et_wait_u64(&g_rec[1].end[0], 1));
	assert_int_equal(LD(g_rec[1].late_rc[0]), NV_ETIMEDOUT);
	assert_int_equal(LD(g_rec[1].late_attempt), 1);
	assert_int_equal(LD(g_rec[1].calls), 2);

	/* FAIL: final at once whatever retries are left. */
	id[2] = dispatch(e, "fail", 2, 0);
	assert_int_equal(et_wait_job(e, id[2]), NV_FAILED);
	expect_error_has(e, id[2], "timed out after 40 ms");

	/* IGNORE: SUCCESS with no result, the late one discarded. */
	id[3] = dispatch(e, "ignore", 3, 0);
	assert_int_equal(et_wait_job(e, id[3]), NV_SUCCESS);
	expect_result_str(e, id[3], NULL);
	assert_true(et_wait_u64(&g_rec[3].end[0], 1));
	assert_int_equal(LD(g_rec[3].late_rc[0]), NV_ETIMEDOUT);

	assert_int_equal(nv_engine_stop(e, 10000), 0);
	assert_int_equal(LD(g_rec[2].calls), 1);
	assert_int_equal(LD(g_rec[3].calls), 1);
	assert_int_equal(LD(g_timeouts), 3 + 1 + 1 + 1);
	assert_int_equal(nv_engine_stats(e, &s), 0);
	assert_int_equal(s.timed_out, 6);
	assert_int_equal(s.failed, 2);
	assert_int_equal(s.succeeded, 2);
	assert_int_equal(s.retried, 3);
	nv_engine_close(e);
}

static bool
watch_off_pred(void *arg)
{
	nv_engine *e = arg;
	return __atomic_load_n(&e->watch_off, __ATOMIC_SEQ_CST) == 1;
}

/* Timeouts are sampled only while jobs run (scheduler.c): once every
 * worker is idle the sampler stops, and the next job must start it again.
 * Three rounds of idle -> timed-out job: each times out (never early),
 * then sampling stops again; quick jobs in between do not time out. */
static void
test_timeout_sampler_restarts(void **state)
{
	nv_config cfg;
	nv_engine *e;
	nv_task_opts fail = {.timeout_ms = 30,
			     .timeout_policy = NV_TIMEOUT_FAIL};
	nv_task_opts quick = {.timeout_ms = 30};
	(void)state;

	reset();
	et_cfg(&cfg, 2);
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "coop", t_coop, &fail, 0), 0);
	assert_int_equal(nv_task_register(e, "noop", t_noop, &quick, 0), 0);
	et_start(e);
	for (uint32_t round = 0; round < 3; round++) {
		/* Idle: the sampler stops (no wake-ups while idle). */
		assert_true(nv_test_wait_until(watch_off_pred, e, 10000));
		for (int k = 0; k < 50; k++) {
			struct job_arg q = {7, 0};
			assert_int_equal(
			    nv_delay(e, "noop", &q, sizeof(q), NULL), 0);
		}
		uint64_t t0 = et_now_ms();
		nv_job_id id = dispatch(e, "coop", round, 0);
		assert_int_equal(et_wait_job(e, id), NV_FAILED);
		expect_error_has(e, id, "timed out after 30 ms");
		assert_true(et_wait_u64(&g_rec[round].cancel[0], 1));
		assert_true(LD(g_rec[round].cancel[0]) - t0 >= 30);
		assert_true(LD(g_rec[round].cancel[0]) -
				LD(g_rec[round].start[0]) >=
			    30);
	}
	assert_true(et_wait_int(&g_noops, 150));
	assert_int_equal(nv_engine_stop(e, 10000), 0);
	nv_stats st;
	assert_int_equal(nv_engine_stats(e, &st), 0);
	assert_int_equal(st.timed_out, 3);
	nv_engine_close(e);
}

/* A task without its own timeout or policy gets the engine's. */
static void
test_timeout_engine_defaults(void **state)
{
	static const nv_timeout_policy pols[] = {
	    NV_TIMEOUT_FAIL, NV_TIMEOUT_IGNORE, NV_TIMEOUT_RETRY};
	nv_task_opts o = {.retries = 1};
	(void)state;

	for (int k = 0; k < 3; k++) {
		nv_config cfg;
		nv_engine *e;
		nv_job_id id;

		reset();
		et_cfg(&cfg, 2);
		cfg.job_timeout_ms = 40;
		cfg.timeout_policy = pols[k];
		e = et_open(&cfg);
		assert_int_equal(nv_task_register(e, "coop", t_coop, &o, 0), 0);
		et_start(e);
		id = dispatch(e, "coop", 0, 0);
		nv_status st = et_wait_job(e, id);
		assert_int_equal(nv_engine_stop(e, 10000), 0);
		switch (pols[k]) {
		case NV_TIMEOUT_FAIL:
			assert_int_equal(st, NV_FAILED);
			expect_error_has(e, id, "timed out after 40 ms");
			assert_int_equal(LD(g_rec[0].calls), 1);
			break;
		case NV_TIMEOUT_IGNORE:
			assert_int_equal(st, NV_SUCCESS);
			assert_int_equal(LD(g_rec[0].calls), 1);
			break;
		default:
			assert_int_equal(st, NV_FAILED);
			assert_int_equal(LD(g_rec[0].calls), 2);
			break;
		}
		nv_engine_close(e);
	}
}

/* A function that never returns, under each policy. */
static void
never_returns(nv_timeout_policy pol, unsigned retries)
{
	enum { NOOPS = 200 };
	nv_config cfg;
	nv_engine *e;
	nv_task_opts o = {
	    .retries = retries, .timeout_ms = 50, .timeout_policy = pol};
	nv_job_id id, more[NOOPS];
	int stuck = pol == NV_TIMEOUT_RETRY ? (int)retries + 1 : 1;
	uint64_t t0, t1;
	nv_stats s;

	reset();
	et_cfg(&cfg, 2);
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "never", t_never, &o, 0), 0);
	assert_int_equal(nv_task_register(e, "noop", t_noop, NULL, 0), 0);
	et_start(e);
	t0 = et_now_ms();
	assert_int_equal(nv_delay(e, "never", NULL, 0, &id), 0);
	nv_status st = et_wait_job(e, id);
	t1 = et_now_ms();
	/* Decided while every execution still loops. */
	assert_int_equal(LD(g_in_loop), stuck);
	assert_int_equal(LD(g_release), 0);
	assert_true(t1 - t0 >= 50u * (unsigned)stuck);
	assert_true(t1 - t0 <= 50u * (unsigned)stuck + et_slack_ms());
	if (pol == NV_TIMEOUT_IGNORE) {
		assert_int_equal(st, NV_SUCCESS);
		expect_result_str(e, id, NULL);
	} else {
		assert_int_equal(st, NV_FAILED);
		expect_error_has(e, id, "timed out after 50 ms");
	}
	/* Replacements keep the pool at strength; other jobs complete. */
	assert_true(et_wait_stat(e, ET_WORKERS, 2 + (unsigned)stuck));
	for (int i = 0; i < NOOPS; i++)
		assert_int_equal(nv_delay(e, "noop", NULL, 0, &more[i]), 0);
	for (int i = 0; i < NOOPS; i++)
		assert_int_equal(et_wait_job(e, more[i]), NV_SUCCESS);
	assert_int_equal(LD(g_in_loop), stuck);
	assert_int_equal(nv_engine_stats(e, &s), 0);
	assert_int_equal(s.timed_out, (unsigned)stuck);
	assert_int_equal(s.succeeded, NOOPS + (pol == NV_TIMEOUT_IGNORE));

	/* Released at the end: the functions return, their late outcome is
	 * ignored, the surplus workers leave. */
	ST(g_release, 1);
	assert_true(et_wait_int_eq(&g_in_loop, 0));
	assert_true(et_wait_stat(e, ET_WORKERS, 2));
	assert_int_equal(nv_job_status(e, id, &st), 0);
	assert_int_equal(st, pol == NV_TIMEOUT_IGNORE ? NV_SUCCESS : NV_FAILED);
	assert_int_equal(nv_delay(e, "noop", NULL, 0, &id), 0);
	assert_int_equal(et_wait_job(e, id), NV_SUCCESS);
	assert_int_equal(nv_engine_stop(e, 10000), 0);
	nv_engine_close(e);
}

static void
test_timeout_never_returns_retry(void **state)
{
	(void)state;
	never_returns(NV_TIMEOUT_RETRY, 1);
}

static void
test_timeout_never_returns_fail(void **state)
{
	(void)state;
	never_returns(NV_TIMEOUT_FAIL, 3);
}

static void
test_timeout_never_returns_ignore(void **state)
{
	(void)state;
	never_returns(NV_TIMEOUT_IGNORE, 3);
}

/* Stop while a timed-out function still loops: stop gives up after its
 * grace period with NV_ETIMEDOUT; close after the release frees all. */
static void
test_timeout_stuck_then_stop(void **state)
{
	nv_config cfg;
	nv_engine *e;
	nv_task_opts o = {.timeout_ms = 30, .timeout_policy = NV_TIMEOUT_FAIL};
	nv_job_id id;
	uint64_t t0, dt;
	(void)state;

	reset();
	et_cfg(&cfg, 1);
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "never", t_never, &o, 0), 0);
	et_start(e);
	assert_int_equal(nv_delay(e, "never", NULL, 0, &id), 0);
	assert_int_equal(et_wait_job(e, id), NV_FAILED);
	assert_true(et_wait_stat(e, ET_WORKERS, 2));
	t0 = et_now_ms();
	assert_int_equal(nv_engine_stop(e, 150), NV_ETIMEDOUT);
	dt = et_now_ms() - t0;
	assert_true(dt >= 149);
	assert_true(dt <= 150 + et_slack_ms());
	assert_int_equal(LD(g_in_loop), 1);
	ST(g_release, 1);
	nv_engine_close(e); /* waits for the released worker; ASan: no leak */
}

/* No spare worker slot (max_extra_workers = 0): the timed-out worker is
 * not replaced; once its function returns it takes jobs again, and a stop
 * with nothing running returns 0 at once. */
static void
test_timeout_no_spare_slot(void **state)
{
	nv_config cfg;
	nv_engine *e;
	nv_task_opts o = {.timeout_ms = 30, .timeout_policy = NV_TIMEOUT_FAIL};
	nv_job_id id;
	uint64_t t0;
	(void)state;

	reset();
	et_cfg(&cfg, 1);
	cfg.max_extra_workers = 0;
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "coop", t_coop, &o, 0), 0);
	assert_int_equal(nv_task_register(e, "noop", t_noop, NULL, 0), 0);
	et_start(e);
	id = dispatch(e, "coop", 0, 0);
	assert_int_equal(et_wait_job(e, id), NV_FAILED);
	assert_true(et_wait_u64(&g_rec[0].end[0], 1));
	assert_int_equal(et_stat(e, ET_WORKERS), 1);
	/* The same worker runs the next job. */
	assert_int_equal(nv_delay(e, "noop", NULL, 0, &id), 0);
	assert_int_equal(et_wait_job(e, id), NV_SUCCESS);
	/* And again after a timeout with no job after it: nothing runs,
	 * so stop does not wait out its grace period. */
	id = dispatch(e, "coop", 1, 0);
	assert_int_equal(et_wait_job(e, id), NV_FAILED);
	assert_true(et_wait_u64(&g_rec[1].end[0], 1));
	assert_true(et_wait_stat(e, ET_RUNNING, 0));
	t0 = et_now_ms();
	assert_int_equal(nv_engine_stop(e, 5000), 0);
	assert_true(et_now_ms() - t0 < 4000);
	nv_engine_close(e);
}

/* Jobs queued behind a task that never returns still run. They are
 * dispatched before start, so the first worker pops a batch holding the
 * stuck job and some of them; idle workers must take those over. */
static void
test_timeout_stuck_batch_neighbours_run(void **state)
{
	enum { N = 6 };
	nv_config cfg;
	nv_engine *e;
	nv_task_opts o = {.timeout_ms = 50, .timeout_policy = NV_TIMEOUT_FAIL};
	nv_job_id nid, ids[N];
	nv_status st;
	(void)state;

	reset();
	et_cfg(&cfg, 2);
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "never", t_never, &o, 0), 0);
	assert_int_equal(nv_task_register(e, "noop", t_noop, NULL, 0), 0);
	assert_int_equal(nv_delay(e, "never", NULL, 0, &nid), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(nv_delay(e, "noop", NULL, 0, &ids[i]), 0);
	et_start(e);
	for (int i = 0; i < N; i++) {
		/* Milliseconds normally: 10 s is a failure, not noise. */
		int rc = nv_job_wait(e, ids[i], 10000, &st);
		if (rc != 0)
			fail_msg("job %d behind the stuck one: %s (%s)", i,
				 nv_strerror(rc), nv_status_name(st));
		assert_int_equal(st, NV_SUCCESS);
	}
	assert_int_equal(et_wait_job(e, nid), NV_FAILED);
	assert_int_equal(LD(g_in_loop), 1);
	assert_int_equal(LD(g_release), 0);
	ST(g_release, 1);
	nv_engine_close(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_retry_exact_attempts),
	    cmocka_unit_test(test_retry_delay_respected),
	    cmocka_unit_test(test_timeout_policies_cooperative),
	    cmocka_unit_test(test_timeout_engine_defaults),
	    cmocka_unit_test(test_timeout_sampler_restarts),
	    cmocka_unit_test(test_timeout_never_returns_retry),
	    cmocka_unit_test(test_timeout_never_returns_fail),
	    cmocka_unit_test(test_timeout_never_returns_ignore),
	    cmocka_unit_test(test_timeout_stuck_then_stop),
	    cmocka_unit_test(test_timeout_no_spare_slot),
	    cmocka_unit_test(test_timeout_stuck_batch_neighbours_run),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
