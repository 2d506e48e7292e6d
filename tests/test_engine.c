/* ctest: labels=unit;concurrency timeout=300 */
/*
 * test_engine.c - the in-process engine through its public API: lifecycle
 * and config errors, dispatch errors, argument copying, results and errors,
 * the task context, waiting, nv_map and result retention. Hooks, observers
 * and statistics are in test_engine_events.c, the worker pool (idle,
 * wake-up, pinning, batches) in test_engine_workers.c, retries and
 * timeouts in test_engine_retry.c, the registry in test_registry.c.
 *
 * Tasks are plain functions; what they see and do is recorded in globals
 * that each test resets. Outcomes are awaited with nv_job_wait or counter
 * waits with generous deadlines; timing is asserted only where the
 * behaviour is about time (a wait timeout, idle CPU use).
 */
#include "testutil.h"
#define ET_SHARED_TASKS
#include "enginetest.h"


/* ---------------------------------------------------------------- tasks */

/* Result = a copy of the arguments. */
static int
t_echo(nv_ctx *c, const void *args, size_t len)
{
	__atomic_add_fetch(&g_runs, 1, __ATOMIC_SEQ_CST);
	return nv_ctx_set_result(c, len ? args : "", len ? len : 1) == 0 ? 0
									 : 99;
}

static int
t_fail(nv_ctx *c, const void *args, size_t len)
{
	(void)args;
	(void)len;
	__atomic_add_fetch(&g_runs, 1, __ATOMIC_SEQ_CST);
	nv_ctx_set_error(c, "failed on attempt %u", nv_ctx_attempt(c));
	return 1;
}

static int
t_rc7(nv_ctx *c, const void *args, size_t len)
{
	(void)c;
	(void)args;
	(void)len;
	return 7;
}

static int
t_twice(nv_ctx *c, const void *args, size_t len)
{
	(void)args;
	(void)len;
	/* No cmocka asserts on a worker thread: report through the
	 * return code instead. */
	if (nv_ctx_set_result(c, "first", 6) != 0 ||
	    nv_ctx_set_result(c, "second", 7) != 0 ||
	    nv_ctx_set_result(c, NULL, 3) != NV_EINVAL)
		return 1;
	return 0;
}

static int
t_empty_result(nv_ctx *c, const void *args, size_t len)
{
	(void)args;
	(void)len;
	return nv_ctx_set_result(c, NULL, 0);
}

static int
t_error_then_ok(nv_ctx *c, const void *args, size_t len)
{
	(void)args;
	(void)len;
	nv_ctx_set_error(c, "not really");
	return 0;
}

static int
t_result_then_fail(nv_ctx *c, const void *args, size_t len)
{
	(void)args;
	(void)len;
	nv_ctx_set_result(c, "partial", 8);
	nv_ctx_set_error(c, "gave up");
	return 1;
}

/* What t_ctx saw. */
static struct {
	nv_job_id id;
	unsigned attempt;
	char name[64];
	nv_engine *engine;
	bool cancelled;
} g_ctx;

static int
t_ctx(nv_ctx *c, const void *args, size_t len)
{
	(void)args;
	(void)len;
	g_ctx.id = nv_ctx_job_id(c);
	g_ctx.attempt = nv_ctx_attempt(c);
	snprintf(g_ctx.name, sizeof(g_ctx.name), "%s", nv_ctx_task_name(c));
	g_ctx.engine = nv_ctx_engine(c);
	g_ctx.cancelled = nv_ctx_cancelled(c);
	return 0;
}

/* ---------------------------------------------------------------- config */

static void
expect_open_einval(const nv_config *cfg, const char *what)
{
	nv_engine *e = (nv_engine *)&e; /* must be reset to NULL */
	int rc = nv_engine_open(&e, cfg);
	if (rc != NV_EINVAL) {
		if (rc == 0)
			nv_engine_close(e);
		fail_msg("open with %s: %s, want NV_EINVAL", what,
			 nv_strerror(rc));
	}
	assert_null(e);
}

static void
test_engine_config_errors(void **state)
{
	nv_config cfg;
	nv_engine *e;
	(void)state;

	assert_int_equal(nv_engine_open(NULL, NULL), NV_EINVAL);
#define BAD(field, value)                                                      \
	do {                                                                   \
		et_cfg(&cfg, 1);                                               \
		cfg.field = value;                                             \
		expect_open_einval(&cfg, #field " = " #value);                 \
	} while (0)
	BAD(queue_capacity, 0);
	BAD(queue_capacity, ((size_t)1 << 30) + 1);
	BAD(job_timeout_ms, 0);
	BAD(batch_size, 0);
	BAD(timeout_policy, (nv_timeout_policy)4);
	BAD(timeout_policy, (nv_timeout_policy)-1);
	BAD(max_args, 0);
	BAD(max_args, (size_t)UINT32_MAX + 1);
	BAD(result_retention, 0);
	BAD(queue_backend, "no-such-backend");
	BAD(result_backend, "no-such-backend");
	/* The same limits as the NUVOM_* loader (engine/config.c). */
	BAD(workers, 1025);
	BAD(max_extra_workers, 1025);
	BAD(fsync, (nv_fsync_policy)3);
	BAD(misfire, (nv_misfire_policy)2);
	BAD(log_level, (nv_log_level)4);
#undef BAD
	/* Defaults and the edges of the ranges are fine. */
	assert_int_equal(nv_engine_open(&e, NULL), 0);
	nv_engine_close(e);
	et_cfg(&cfg, 1024);
	cfg.max_extra_workers = 1024;
	cfg.queue_capacity = 1;
	cfg.max_args = UINT32_MAX;
	cfg.result_retention = 1;
	e = et_open(&cfg); /* opened, never started: no thread made */
	nv_engine_close(e);

	assert_int_equal(nv_engine_start(NULL), NV_EINVAL);
	assert_int_equal(nv_engine_stop(NULL, 0), NV_EINVAL);
	assert_int_equal(nv_engine_stats(NULL, NULL), NV_EINVAL);
	nv_engine_close(NULL);
}

static void
test_engine_lifecycle(void **state)
{
	nv_config cfg;
	nv_engine *e;
	nv_job_id id, ids[3];
	nv_args argv[3] = {{"a", 1}, {"b", 1}, {"c", 1}};
	nv_status st;
	nv_stats s;
	(void)state;

	__atomic_store_n(&g_runs, 0, __ATOMIC_SEQ_CST);
	et_cfg(&cfg, 2);
	e = et_open(&cfg);
	assert_int_equal(nv_engine_stats(e, NULL), NV_EINVAL);
	assert_int_equal(nv_task_register(e, "echo", t_echo, NULL, 0), 0);
	/* Dispatch before start: queued, PENDING, run at start. */
	assert_int_equal(nv_delay(e, "echo", "x", 1, &id), 0);
	assert_int_equal(nv_map(e, "echo", argv, 3, ids), 0);
	assert_int_equal(nv_job_status(e, id, &st), 0);
	assert_int_equal(st, NV_PENDING);
	assert_int_equal(nv_job_wait(e, id, 0, &st), NV_ETIMEDOUT);
	assert_int_equal(nv_engine_stats(e, &s), 0);
	assert_int_equal(s.enqueued, 4);
	assert_int_equal(s.queued, 4);
	assert_int_equal(s.workers, 0);
	assert_int_equal(s.started, 0);

	et_start(e);
	assert_int_equal(nv_engine_start(e), 0); /* already running */
	assert_int_equal(et_wait_job(e, id), NV_SUCCESS);
	for (int i = 0; i < 3; i++)
		assert_int_equal(et_wait_job(e, ids[i]), NV_SUCCESS);
	assert_int_equal(__atomic_load_n(&g_runs, __ATOMIC_SEQ_CST), 4);
	assert_true(et_wait_stat(e, ET_WORKERS, 2));

	assert_int_equal(nv_engine_stop(e, 5000), 0);
	assert_int_equal(nv_engine_stop(e, 5000), 0); /* idempotent */
	assert_int_equal(nv_engine_start(e), NV_ESTOPPED);
	assert_int_equal(nv_delay(e, "echo", "x", 1, NULL), NV_ESTOPPED);
	/* Results stay readable after stop. */
	assert_int_equal(nv_job_status(e, id, &st), 0);
	assert_int_equal(st, NV_SUCCESS);
	assert_int_equal(nv_engine_stats(e, &s), 0);
	assert_int_equal(s.workers, 0);
	assert_int_equal(s.succeeded, 4);
	nv_engine_close(e);

	/* Open and close with queued jobs, never started: nothing leaks
	 * (ASan), tracked and untracked alike. */
	e = et_open(&cfg);
	nv_task_opts discard = {.discard_result = true};
	assert_int_equal(nv_task_register(e, "echo", t_echo, NULL, 0), 0);
	assert_int_equal(nv_task_register(e, "drop", t_echo, &discard, 0), 0);
	char big[200] = {0};
	for (int i = 0; i < 50; i++) {
		assert_int_equal(nv_delay(e, "echo", big, (size_t)i * 4, NULL),
				 0);
		assert_int_equal(nv_delay(e, "drop", big, (size_t)i * 4, NULL),
				 0);
	}
	nv_engine_close(e);

	/* Stop before start, then close. */
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "echo", t_echo, NULL, 0), 0);
	assert_int_equal(nv_delay(e, "echo", "x", 1, NULL), 0);
	assert_int_equal(nv_engine_stop(e, 0), 0);
	assert_int_equal(nv_delay(e, "echo", "x", 1, NULL), NV_ESTOPPED);
	assert_int_equal(nv_engine_start(e), NV_ESTOPPED);
	nv_engine_close(e);
}

/* ---------------------------------------------------------------- dispatch */

static void
test_engine_dispatch_errors(void **state)
{
	nv_config cfg;
	nv_engine *e;
	nv_job_id ids[4] = {9, 9, 9, 9};
	char buf[65] = {0};
	nv_args argv[4] = {{buf, 1}, {buf, 64}, {buf, 65}, {buf, 2}};
	nv_schedule when = {.in_ms = 60000};
	nv_stats s;
	(void)state;

	et_cfg(&cfg, 1);
	cfg.max_args = 64;
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "echo", t_echo, NULL, 0), 0);
	nv_task *t = nv_task_lookup(e, "echo");
	assert_non_null(t);
	et_start(e);

	assert_int_equal(nv_delay(e, "nope", NULL, 0, NULL), NV_ENOTASK);
	assert_int_equal(nv_map(e, "nope", argv, 1, NULL), NV_ENOTASK);
	assert_int_equal(nv_schedule_add(e, "nope", NULL, 0, &when, NULL),
			 NV_ENOTASK);
	assert_int_equal(nv_delay(e, "echo", buf, 65, NULL), NV_E2BIG);
	assert_int_equal(nv_task_delay(t, buf, 65, NULL), NV_E2BIG);
	assert_int_equal(nv_schedule_add(e, "echo", buf, 65, &when, NULL),
			 NV_E2BIG);
	/* One oversize argument: nothing of the call is dispatched. */
	assert_int_equal(nv_map(e, "echo", argv, 4, ids), NV_E2BIG);
	for (int i = 0; i < 4; i++)
		assert_int_equal(ids[i], 0);
	assert_int_equal(nv_delay(e, "echo", NULL, 3, NULL), NV_EINVAL);
	assert_int_equal(nv_delay(NULL, "echo", NULL, 0, NULL), NV_EINVAL);
	assert_int_equal(nv_delay(e, NULL, NULL, 0, NULL), NV_EINVAL);
	assert_int_equal(nv_task_delay(NULL, NULL, 0, NULL), NV_EINVAL);
	assert_int_equal(nv_map(e, "echo", NULL, 2, NULL), NV_EINVAL);
	assert_int_equal(nv_map(e, "echo", NULL, 0, NULL), 0);
	assert_int_equal(nv_engine_stats(e, &s), 0);
	assert_int_equal(s.enqueued, 0);

	/* Exactly max_args is accepted. */
	nv_job_id id;
	assert_int_equal(nv_delay(e, "echo", buf, 64, &id), 0);
	assert_int_equal(et_wait_job(e, id), NV_SUCCESS);
	nv_engine_close(e);
}

/* Arguments are copied at dispatch: the task sees the bytes of the call
 * even when the caller changes its buffer right after. Sizes cover empty,
 * inline in the record's first line (<= 24 bytes), inline across its
 * second (<= 80) and separately allocated arguments. */
static void
test_engine_args_copied(void **state)
{
	static const size_t sizes[] = {0,  1,  23,   24,   25,
				       79, 80, 81, 1000, 65536};
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	nv_config cfg;
	nv_engine *e;
	nv_job_id ids[N];
	unsigned char *buf = malloc(65536), *want = malloc(65536);
	(void)state;

	assert_non_null(buf);
	assert_non_null(want);
	et_cfg(&cfg, 2);
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "echo", t_echo, NULL, 0), 0);
	/* Not started: nothing can run before the buffer is overwritten. */
	for (size_t i = 0; i < N; i++) {
		memset(buf, (int)(i + 1), 65536);
		assert_int_equal(nv_delay(e, "echo", sizes[i] ? buf : NULL,
					  sizes[i], &ids[i]),
				 0);
		memset(buf, 0xee, 65536);
	}
	et_start(e);
	for (size_t i = 0; i < N; i++) {
		void *res;
		size_t len;
		assert_int_equal(et_wait_job(e, ids[i]), NV_SUCCESS);
		assert_int_equal(nv_job_result(e, ids[i], &res, &len), 0);
		if (sizes[i] == 0) {
			assert_int_equal(len, 1); /* t_echo's "" */
		} else {
			memset(want, (int)(i + 1), sizes[i]);
			assert_int_equal(len, sizes[i]);
			assert_memory_equal(res, want, sizes[i]);
		}
		nv_free(res);
	}
	nv_engine_close(e);
	free(buf);
	free(want);
}

/* ---------------------------------------------------------------- results */

static void
test_engine_results_and_errors(void **state)
{
	nv_config cfg;
	nv_engine *e;
	nv_job_id ok, fail, rc7, twice, empty, errok, resfail, gated, pend;
	nv_task_opts one_retry = {.retries = 1};
	void *res;
	size_t len;
	char *msg;
	nv_status st;
	(void)state;

	et_gate_reset(&gate);
	et_cfg(&cfg, 2);
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "echo", t_echo, NULL, 0), 0);
	assert_int_equal(nv_task_register(e, "fail", t_fail, &one_retry, 0), 0);
	assert_int_equal(nv_task_register(e, "rc7", t_rc7, NULL, 0), 0);
	assert_int_equal(nv_task_register(e, "twice", t_twice, NULL, 0), 0);
	assert_int_equal(nv_task_register(e, "empty", t_empty_result, NULL, 0),
			 0);
	assert_int_equal(nv_task_register(e, "errok", t_error_then_ok, NULL, 0),
			 0);
	assert_int_equal(
	    nv_task_register(e, "resfail", t_result_then_fail, NULL, 0), 0);
	assert_int_equal(nv_task_register(e, "gate", t_gate, NULL, 0), 0);

	/* A PENDING job has neither result nor error. */
	assert_int_equal(nv_delay(e, "echo", "p", 1, &pend), 0);
	expect_result(e, pend, NULL, 0);
	expect_error(e, pend, NULL);
	et_start(e);

	assert_int_equal(nv_delay(e, "echo", "hello", 5, &ok), 0);
	assert_int_equal(nv_delay(e, "fail", NULL, 0, &fail), 0);
	assert_int_equal(nv_delay(e, "rc7", NULL, 0, &rc7), 0);
	assert_int_equal(nv_delay(e, "twice", NULL, 0, &twice), 0);
	assert_int_equal(nv_delay(e, "empty", NULL, 0, &empty), 0);
	assert_int_equal(nv_delay(e, "errok", NULL, 0, &errok), 0);
	assert_int_equal(nv_delay(e, "resfail", NULL, 0, &resfail), 0);
	assert_int_equal(nv_delay(e, "gate", NULL, 0, &gated), 0);

	assert_int_equal(et_wait_job(e, ok), NV_SUCCESS);
	expect_result(e, ok, "hello", 5);
	expect_error(e, ok, NULL);
	/* The error of a failed job is its last attempt's. */
	assert_int_equal(et_wait_job(e, fail), NV_FAILED);
	expect_result(e, fail, NULL, 0);
	expect_error(e, fail, "failed on attempt 2");
	/* No message set: the engine writes one with the return code. */
	assert_int_equal(et_wait_job(e, rc7), NV_FAILED);
	expect_error(e, rc7, "task returned 7");
	assert_int_equal(et_wait_job(e, twice), NV_SUCCESS);
	expect_result(e, twice, "second", 7);
	/* An empty result is "stored nothing", not an allocation failure. */
	assert_int_equal(et_wait_job(e, empty), NV_SUCCESS);
	int erc = nv_job_result(e, empty, &res, &len);
	assert_true(erc == 0 || erc == NV_ENORESULT);
	assert_int_equal(len, 0);
	nv_free(res);
	/* An error text on success is not an error; a result on failure is
	 * not a result. */
	assert_int_equal(et_wait_job(e, errok), NV_SUCCESS);
	expect_error(e, errok, NULL);
	assert_int_equal(et_wait_job(e, resfail), NV_FAILED);
	expect_result(e, resfail, NULL, 0);
	expect_error(e, resfail, "gave up");
	/* RUNNING: nothing yet. */
	assert_true(et_wait_int(&gate.entered, 1));
	assert_int_equal(nv_job_status(e, gated, &st), 0);
	assert_int_equal(st, NV_RUNNING);
	expect_result(e, gated, NULL, 0);
	et_gate_open(&gate);
	assert_int_equal(et_wait_job(e, gated), NV_SUCCESS);
	expect_result(e, gated, "gated", 6);

	/* Unknown ids and bad arguments. */
	assert_int_equal(nv_job_status(e, 999999, &st), NV_ENOENT);
	assert_int_equal(nv_job_wait(e, 999999, 10, &st), NV_ENOENT);
	assert_int_equal(nv_job_result(e, 999999, &res, &len), NV_ENOENT);
	assert_int_equal(nv_job_error(e, 999999, &msg), NV_ENOENT);
	assert_int_equal(nv_job_status(e, 0, &st), NV_EINVAL);
	assert_int_equal(nv_job_wait(e, 0, 10, &st), NV_EINVAL);
	assert_int_equal(nv_job_status(e, ok, NULL), NV_EINVAL);
	assert_int_equal(nv_job_result(e, ok, NULL, &len), NV_EINVAL);
	assert_int_equal(nv_job_error(e, ok, NULL), NV_EINVAL);
	assert_int_equal(nv_job_wait(e, ok, 0, NULL), 0); /* out optional */
	nv_engine_close(e);
}

static void
test_engine_ctx(void **state)
{
	nv_config cfg;
	nv_engine *e;
	nv_job_id id;
	(void)state;

	memset(&g_ctx, 0, sizeof(g_ctx));
	g_ctx.cancelled = true;
	et_cfg(&cfg, 1);
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "ctx.task", t_ctx, NULL, 0), 0);
	et_start(e);
	assert_int_equal(nv_delay(e, "ctx.task", NULL, 0, &id), 0);
	assert_int_equal(et_wait_job(e, id), NV_SUCCESS);
	assert_int_equal(g_ctx.id, id);
	assert_int_equal(g_ctx.attempt, 1);
	assert_string_equal(g_ctx.name, "ctx.task");
	assert_ptr_equal(g_ctx.engine, e);
	assert_false(g_ctx.cancelled);
	nv_engine_close(e);

	assert_true(nv_ctx_cancelled(NULL));
	assert_int_equal(nv_ctx_job_id(NULL), 0);
	assert_int_equal(nv_ctx_attempt(NULL), 0);
	assert_null(nv_ctx_task_name(NULL));
	assert_null(nv_ctx_engine(NULL));
	assert_int_equal(nv_ctx_set_result(NULL, "x", 1), NV_EINVAL);
	assert_int_equal(nv_ctx_set_error(NULL, "x"), NV_EINVAL);
}

/* ---------------------------------------------------------------- waiting */

enum { NWAITERS = 4 };

static struct {
	nv_engine *e;
	nv_job_id id;
	int entered; /* atomic */
	int rc[NWAITERS];
	nv_status st[NWAITERS];
	bool gate_was_open[NWAITERS];
} g_wait;

static void *
waiter_main(void *arg)
{
	int i = (int)(intptr_t)arg;
	__atomic_add_fetch(&g_wait.entered, 1, __ATOMIC_SEQ_CST);
	g_wait.rc[i] = nv_job_wait(g_wait.e, g_wait.id, -1, &g_wait.st[i]);
	/* The wait may only end once the job is final, i.e. after the test
	 * opened the gate. */
	g_wait.gate_was_open[i] = __atomic_load_n(&gate.open, __ATOMIC_ACQUIRE);
	return NULL;
}

static void
test_engine_wait(void **state)
{
	nv_config cfg;
	nv_engine *e;
	pthread_t th[NWAITERS];
	nv_status st = NV_SUCCESS;
	uint64_t t0, t1;
	(void)state;

	et_gate_reset(&gate);
	memset(&g_wait, 0, sizeof(g_wait));
	et_cfg(&cfg, 2);
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "gate", t_gate, NULL, 0), 0);
	et_start(e);
	g_wait.e = e;
	assert_int_equal(nv_delay(e, "gate", NULL, 0, &g_wait.id), 0);
	assert_true(et_wait_int(&gate.entered, 1));

	/* A timed wait on a running job times out, not early. */
	t0 = et_now_ms();
	assert_int_equal(nv_job_wait(e, g_wait.id, 50, &st), NV_ETIMEDOUT);
	t1 = et_now_ms();
	assert_true(t1 - t0 >= 49);
	assert_int_equal(st, NV_RUNNING);
	assert_int_equal(nv_job_wait(e, g_wait.id, 0, &st), NV_ETIMEDOUT);

	for (int i = 0; i < NWAITERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, waiter_main,
						(void *)(intptr_t)i),
				 0);
	assert_true(et_wait_int(&g_wait.entered, NWAITERS));
	et_sleep_ms(20); /* let them park; correctness does not depend on it */
	et_gate_open(&gate);
	for (int i = 0; i < NWAITERS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(g_wait.rc[i], 0);
		assert_int_equal(g_wait.st[i], NV_SUCCESS);
		assert_true(g_wait.gate_was_open[i]);
	}
	/* Waiting on a finished job returns at once, even with timeout 0. */
	assert_int_equal(nv_job_wait(e, g_wait.id, 0, &st), 0);
	assert_int_equal(st, NV_SUCCESS);
	nv_engine_close(e);
}

/* discard_result jobs are untracked: they run, but status, wait, result
 * and error do not know their ids (the documented choice). */
static void
test_engine_discard_result(void **state)
{
	nv_config cfg;
	nv_engine *e;
	nv_task_opts discard = {.discard_result = true};
	nv_job_id id = 0, ids[3] = {0, 0, 0};
	nv_args argv[3] = {{"a", 1}, {"b", 1}, {"c", 1}};
	nv_status st;
	void *res;
	size_t len;
	(void)state;

	__atomic_store_n(&g_runs, 0, __ATOMIC_SEQ_CST);
	et_cfg(&cfg, 2);
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "drop", t_echo, &discard, 0), 0);
	et_start(e);
	assert_int_equal(nv_delay(e, "drop", "x", 1, &id), 0);
	assert_int_not_equal(id, 0);
	assert_int_equal(nv_map(e, "drop", argv, 3, ids), 0);
	for (int i = 0; i < 3; i++)
		assert_int_not_equal(ids[i], 0);
	assert_true(et_wait_int(&g_runs, 4));
	assert_int_equal(nv_job_status(e, id, &st), NV_ENOENT);
	assert_int_equal(nv_job_wait(e, id, 100, &st), NV_ENOENT);
	assert_int_equal(nv_job_result(e, ids[1], &res, &len), NV_ENOENT);
	assert_true(et_wait_stat(e, ET_SUCCEEDED, 4));
	assert_int_equal(et_stat(e, ET_RESULTS), 0); /* nothing kept */
	nv_engine_close(e);
}

/* ---------------------------------------------------------------- nv_map */

static void
test_engine_map(void **state)
{
	enum { N = 1000 }; /* several bulk chunks */
	nv_config cfg;
	nv_engine *e;
	static nv_args argv[N];
	static nv_job_id ids[N];
	static uint32_t vals[N];
	nv_job_id single;
	(void)state;

	__atomic_store_n(&g_runs, 0, __ATOMIC_SEQ_CST);
	et_cfg(&cfg, 2);
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "echo", t_echo, NULL, 0), 0);
	et_start(e);
	for (uint32_t i = 0; i < N; i++) {
		vals[i] = i * 7919u;
		argv[i].data = &vals[i];
		argv[i].len = sizeof(vals[i]);
	}
	assert_int_equal(nv_delay(e, "echo", "s", 1, &single), 0);
	assert_int_equal(nv_map(e, "echo", argv, N, ids), 0);
	for (uint32_t i = 0; i < N; i++) {
		void *res;
		size_t len;
		assert_int_not_equal(ids[i], 0);
		assert_int_not_equal(ids[i], single);
		if (i > 0)
			assert_int_equal(ids[i], ids[i - 1] + 1);
		assert_int_equal(et_wait_job(e, ids[i]), NV_SUCCESS);
		assert_int_equal(nv_job_result(e, ids[i], &res, &len), 0);
		assert_int_equal(len, sizeof(uint32_t));
		assert_memory_equal(res, &vals[i], len);
		nv_free(res);
	}
	/* Without out_ids. */
	assert_int_equal(nv_map(e, "echo", argv, 10, NULL), 0);
	assert_true(et_wait_int(&g_runs, N + 11));
	assert_int_equal(nv_engine_stop(e, 10000), 0);
	assert_int_equal(__atomic_load_n(&g_runs, __ATOMIC_SEQ_CST), N + 11);
	nv_engine_close(e);
}

/* ---------------------------------------------------------------- retention */

/* With result_retention = 4 the four newest finished jobs are kept and
 * older ones are forgotten (NV_ENOENT). One worker: finish order is
 * dispatch order. */
static void
test_engine_retention(void **state)
{
	enum { N = 10, KEEP = 4 };
	nv_config cfg;
	nv_engine *e;
	nv_job_id ids[N];
	nv_status st;
	(void)state;

	et_cfg(&cfg, 1);
	cfg.result_retention = KEEP;
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "echo", t_echo, NULL, 0), 0);
	et_start(e);
	for (uint32_t i = 0; i < N; i++) {
		assert_int_equal(nv_delay(e, "echo", &i, sizeof(i), &ids[i]),
				 0);
		assert_int_equal(et_wait_job(e, ids[i]), NV_SUCCESS);
	}
	/* A waiter may return before the worker has filed the job in the
	 * retention FIFO; stop joins the worker, results stay readable. */
	assert_int_equal(nv_engine_stop(e, 10000), 0);
	assert_int_equal(et_stat(e, ET_RESULTS), KEEP);
	for (uint32_t i = 0; i < N; i++) {
		if (i < N - KEEP) {
			assert_int_equal(nv_job_status(e, ids[i], &st),
					 NV_ENOENT);
			assert_int_equal(nv_job_wait(e, ids[i], 10, &st),
					 NV_ENOENT);
		} else {
			assert_int_equal(nv_job_status(e, ids[i], &st), 0);
			assert_int_equal(st, NV_SUCCESS);
			expect_result(e, ids[i], (const char *)&i, sizeof(i));
		}
	}
	nv_engine_close(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_engine_config_errors),
	    cmocka_unit_test(test_engine_lifecycle),
	    cmocka_unit_test(test_engine_dispatch_errors),
	    cmocka_unit_test(test_engine_args_copied),
	    cmocka_unit_test(test_engine_results_and_errors),
	    cmocka_unit_test(test_engine_ctx),
	    cmocka_unit_test(test_engine_wait),
	    cmocka_unit_test(test_engine_discard_result),
	    cmocka_unit_test(test_engine_map),
	    cmocka_unit_test(test_engine_retention),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
