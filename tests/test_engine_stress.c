/* ctest: labels=unit;stress;concurrency timeout=600 */
/*
 * test_engine_stress.c - the engine under concurrency: many producers,
 * backpressure on a full queue, stop with jobs in flight, retention under
 * concurrent finishing.
 *
 * Validation follows ck's recipe: every job carries its index, the task
 * bumps a per-job counter, and at the end every counter must be exactly 1
 * (never run: 0, run twice: 2) and the engine's own statistics must agree
 * with what the producers counted. Sizes scale with NV_STRESS_SCALE.
 */
#include "testutil.h"
#include "enginetest.h"

static struct et_gate gate;
static uint8_t *g_cnt;	/* per-job run counters (atomic) */
static uint64_t g_done; /* atomic: runs of t_count */

static int
t_count(nv_ctx *c, const void *args, size_t len)
{
	uint32_t idx;
	(void)c;
	if (len != sizeof(idx))
		return 1;
	memcpy(&idx, args, sizeof(idx));
	__atomic_add_fetch(&g_cnt[idx], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&g_done, 1, __ATOMIC_RELEASE);
	return 0;
}

/* t_count plus a few microseconds of work, so batches take a while. */
static int
t_work(nv_ctx *c, const void *args, size_t len)
{
	volatile uint64_t x = 0;
	for (int i = 0; i < 2000; i++)
		x += (uint64_t)i * i;
	return t_count(c, args, len);
}

static int
t_gate(nv_ctx *c, const void *args, size_t len)
{
	(void)c;
	(void)args;
	(void)len;
	et_gate_pass(&gate);
	return 0;
}

static void
counters_reset(size_t n)
{
	free(g_cnt);
	g_cnt = calloc(n, 1);
	assert_non_null(g_cnt);
	__atomic_store_n(&g_done, 0, __ATOMIC_SEQ_CST);
}

/* Every counter exactly 1; returns the number of bad ones (printing the
 * first few). */
static size_t
counters_check(size_t n, const bool *expect_run)
{
	size_t bad = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned want = expect_run == NULL || expect_run[i] ? 1 : 0;
		unsigned got = __atomic_load_n(&g_cnt[i], __ATOMIC_RELAXED);
		if (got != want && bad++ < 5)
			print_error("job %zu ran %u times, want %u\n", i, got,
				    want);
	}
	return bad;
}

/* ---------------------------------------------------------------- producers */

enum { NPROD = 4, CHUNK = 128 };

static struct {
	nv_engine *e;
	size_t n;    /* jobs in all */
	int errors;  /* atomic: dispatch calls that failed */
	int last_rc; /* a failing rc, for the message */
	int go;	     /* atomic: start line */
} g_prod;

/* Producer p dispatches its share [p*n/NPROD, (p+1)*n/NPROD), alternating
 * chunks of nv_delay calls and nv_map calls. */
static void *
producer_main(void *arg)
{
	unsigned p = (unsigned)(uintptr_t)arg;
	size_t lo = g_prod.n * p / NPROD, hi = g_prod.n * (p + 1) / NPROD;
	uint32_t idx[CHUNK];
	nv_args argv[CHUNK];
	nv_task *t = nv_task_lookup(g_prod.e, "count");
	bool map = p & 1;

	while (!__atomic_load_n(&g_prod.go, __ATOMIC_ACQUIRE))
		et_sleep_us(100);
	for (size_t base = lo; base < hi; base += CHUNK, map = !map) {
		size_t m = hi - base < CHUNK ? hi - base : CHUNK;
		for (size_t i = 0; i < m; i++) {
			idx[i] = (uint32_t)(base + i);
			argv[i].data = &idx[i];
			argv[i].len = sizeof(idx[i]);
		}
		int rc = 0;
		if (map) {
			rc = nv_map(g_prod.e, "count", argv, m, NULL);
		} else {
			for (size_t i = 0; i < m && rc == 0; i++)
				rc = (i & 1)
					 ? nv_task_delay(t, &idx[i],
							 sizeof(idx[i]), NULL)
					 : nv_delay(g_prod.e, "count", &idx[i],
						    sizeof(idx[i]), NULL);
		}
		if (rc != 0) {
			__atomic_store_n(&g_prod.last_rc, rc, __ATOMIC_RELAXED);
			__atomic_add_fetch(&g_prod.errors, 1, __ATOMIC_SEQ_CST);
			break;
		}
	}
	return NULL;
}

static void
run_producers(nv_engine *e, size_t n)
{
	pthread_t th[NPROD];
	memset(&g_prod, 0, sizeof(g_prod));
	g_prod.e = e;
	g_prod.n = n;
	for (unsigned p = 0; p < NPROD; p++)
		assert_int_equal(pthread_create(&th[p], NULL, producer_main,
						(void *)(uintptr_t)p),
				 0);
	__atomic_store_n(&g_prod.go, 1, __ATOMIC_RELEASE);
	for (unsigned p = 0; p < NPROD; p++)
		pthread_join(th[p], NULL);
	if (g_prod.errors)
		fail_msg("%d producers failed, last: %s", g_prod.errors,
			 nv_strerror(g_prod.last_rc));
}

/* 1M fire-and-forget jobs (scaled) from 4 producer threads: each runs
 * exactly once and the statistics agree. */
static void
test_stress_million_jobs(void **state)
{
	size_t n = (size_t)nv_test_scaled(1000000);
	nv_config cfg;
	nv_engine *e;
	nv_task_opts discard = {.discard_result = true};
	nv_stats s;
	uint64_t t0 = et_now_ms();
	(void)state;

	counters_reset(n);
	et_cfg(&cfg, 4);
	cfg.queue_capacity = 65536;
	cfg.enqueue_timeout_ms = 600000; /* backpressure, never EFULL */
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "count", t_count, &discard, 0), 0);
	et_start(e);
	run_producers(e, n);
	assert_true(et_wait_u64(&g_done, n));
	assert_int_equal(nv_engine_stop(e, 10000), 0);
	assert_int_equal(counters_check(n, NULL), 0);
	assert_int_equal(__atomic_load_n(&g_done, __ATOMIC_SEQ_CST), n);
	assert_int_equal(nv_engine_stats(e, &s), 0);
	assert_int_equal(s.enqueued, n);
	assert_int_equal(s.started, n);
	assert_int_equal(s.succeeded, n);
	assert_int_equal(s.failed + s.retried + s.timed_out, 0);
	assert_int_equal(s.results, 0);
	print_message("%zu jobs in %llu ms\n", n,
		      (unsigned long long)(et_now_ms() - t0));
	nv_engine_close(e);
}

/* Tracked jobs from 4 producers with a small retention: everything runs
 * once, and exactly `retention` finished jobs stay readable - no more, and
 * no fewer when workers evict concurrently. */
static void
test_stress_tracked_retention(void **state)
{
	enum { KEEP = 500 };
	size_t n = (size_t)nv_test_scaled(100000);
	nv_config cfg;
	nv_engine *e;
	nv_stats s;
	(void)state;

	if (n < 2 * KEEP)
		n = 2 * KEEP;
	counters_reset(n);
	et_cfg(&cfg, 4);
	cfg.queue_capacity = 8192;
	cfg.enqueue_timeout_ms = 600000;
	cfg.result_retention = KEEP;
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "count", t_count, NULL, 0), 0);
	et_start(e);
	run_producers(e, n);
	assert_true(et_wait_u64(&g_done, n));
	/* Stop joins the workers: every finish (and eviction) is done. */
	assert_int_equal(nv_engine_stop(e, 10000), 0);
	assert_int_equal(counters_check(n, NULL), 0);
	assert_int_equal(nv_engine_stats(e, &s), 0);
	assert_int_equal(s.succeeded, n);
	assert_int_equal(s.results, KEEP);
	nv_engine_close(e);
}

/* ---------------------------------------------------------------- full queue
 */

/* Opens an engine with a 4-slot ring whose two workers are held in gate
 * jobs (each dispatched only after the previous one is inside, so both
 * workers hold one). */
static nv_engine *
open_blocked(uint32_t enqueue_timeout_ms)
{
	nv_config cfg;
	nv_engine *e;
	et_gate_reset(&gate);
	et_cfg(&cfg, 2);
	cfg.queue_capacity = 4;
	cfg.enqueue_timeout_ms = enqueue_timeout_ms;
	cfg.job_timeout_ms = 3600000;
	cfg.max_extra_workers = 0;
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "gate", t_gate, NULL, 0), 0);
	assert_int_equal(nv_task_register(e, "count", t_count, NULL, 0), 0);
	et_start(e);
	for (int i = 1; i <= 2; i++) {
		assert_int_equal(nv_delay(e, "gate", NULL, 0, NULL), 0);
		assert_true(et_wait_int(&gate.entered, i));
	}
	assert_int_equal(et_stat(e, ET_QUEUED), 0);
	return e;
}

static void
test_stress_full_queue(void **state)
{
	enum { N = 12 };
	nv_engine *e;
	uint32_t idx[N];
	nv_job_id ids[N] = {0};
	bool ok[N] = {false};
	nv_args argv[5];
	nv_stats s;
	size_t nok = 0;
	uint64_t t0;
	(void)state;

	counters_reset(N);
	e = open_blocked(20);
	for (uint32_t i = 0; i < N; i++)
		idx[i] = i;
	/* Two singles fit. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(nv_delay(e, "count", &idx[i], 4, &ids[i]), 0);
		ok[i] = true;
	}
	/* A map of 5 into the 2 free slots: the first 2 go in, their ids
	 * are written, the others are 0 and never run. */
	for (int i = 0; i < 5; i++) {
		argv[i].data = &idx[2 + i];
		argv[i].len = 4;
	}
	assert_int_equal(nv_map(e, "count", argv, 5, &ids[2]), NV_EFULL);
	for (int i = 2; i < 7; i++) {
		ok[i] = ids[i] != 0;
		assert_int_equal(ok[i], i < 4);
	}
	/* Full: singles wait enqueue_timeout_ms, then NV_EFULL. */
	for (int i = 7; i < N; i++) {
		t0 = et_now_ms();
		assert_int_equal(nv_delay(e, "count", &idx[i], 4, &ids[i]),
				 NV_EFULL);
		assert_true(et_now_ms() - t0 >= 19);
	}
	assert_int_equal(nv_engine_stats(e, &s), 0);
	assert_int_equal(s.queued, 4);
	assert_int_equal(s.enqueued, 2 + 4);

	/* Open the gate: exactly the accepted jobs run, once. */
	et_gate_open(&gate);
	for (int i = 0; i < N; i++) {
		if (!ok[i])
			continue;
		nok++;
		assert_int_equal(et_wait_job(e, ids[i]), NV_SUCCESS);
	}
	assert_int_equal(nok, 4);
	assert_int_equal(nv_engine_stop(e, 10000), 0);
	assert_int_equal(counters_check(N, ok), 0);
	assert_int_equal(nv_engine_stats(e, &s), 0);
	assert_int_equal(s.succeeded, 2 + 4);
	nv_engine_close(e);
}

static struct {
	nv_engine *e;
	int entered; /* atomic */
	int rc;
	nv_job_id id;
	uint64_t returned_ms;
} g_park;

static void *
parked_producer(void *arg)
{
	uint32_t idx = (uint32_t)(uintptr_t)arg;
	__atomic_store_n(&g_park.entered, 1, __ATOMIC_SEQ_CST);
	g_park.rc = nv_delay(g_park.e, "count", &idx, 4, &g_park.id);
	__atomic_store_n(&g_park.returned_ms, et_now_ms(), __ATOMIC_SEQ_CST);
	return NULL;
}

/* An engine whose two workers are held at the gate and whose 4-slot queue
 * is full, and a producer thread *th dispatching a fifth job (idx[4])
 * into it. */
static nv_engine *
fill_and_park(pthread_t *th, uint32_t *idx)
{
	nv_engine *e;

	counters_reset(5);
	e = open_blocked(600000);
	for (int i = 0; i < 4; i++)
		assert_int_equal(nv_delay(e, "count", &idx[i], 4, NULL), 0);
	memset(&g_park, 0, sizeof(g_park));
	g_park.e = e;
	assert_int_equal(
	    pthread_create(th, NULL, parked_producer, (void *)(uintptr_t)4),
	    0);
	assert_true(et_wait_int(&g_park.entered, 1));
	et_sleep_ms(20); /* let it park; not needed for correctness */
	return e;
}

/* A producer parked on a full ring gets in when room appears, and gets
 * NV_ESTOPPED at once when the engine stops. */
static void
test_stress_parked_producer(void **state)
{
	nv_engine *e;
	pthread_t th;
	uint32_t idx[5] = {0, 1, 2, 3, 4};
	bool ok[5] = {true, true, true, true, true};
	uint64_t t0;
	(void)state;

	/* Room appears. */
	e = fill_and_park(&th, idx);
	et_gate_open(&gate);
	pthread_join(th, NULL);
	assert_int_equal(g_park.rc, 0);
	assert_int_equal(et_wait_job(e, g_park.id), NV_SUCCESS);
	assert_true(et_wait_u64(&g_done, 5));
	assert_int_equal(nv_engine_stop(e, 10000), 0);
	assert_int_equal(counters_check(5, ok), 0);
	nv_engine_close(e);

	/* The engine stops. */
	e = fill_and_park(&th, idx);
	t0 = et_now_ms();
	/* The gate jobs still run: stop times out after its grace. */
	assert_int_equal(nv_engine_stop(e, 100), NV_ETIMEDOUT);
	pthread_join(th, NULL);
	assert_int_equal(g_park.rc, NV_ESTOPPED);
	assert_true(g_park.returned_ms - t0 <= 100 + et_slack_ms());
	et_gate_open(&gate);
	nv_engine_close(e);
	assert_int_equal(__atomic_load_n(&g_cnt[4], __ATOMIC_SEQ_CST), 0);
}

/* ---------------------------------------------------------------- stop */

/* Stop with many short jobs queued and running: it waits for all of them
 * (grace is long) and returns 0; each ran exactly once. Repeated, since
 * the interesting moments (a worker between two jobs of its batch) are
 * short. */
static void
test_stress_stop_drains(void **state)
{
	size_t n = (size_t)nv_test_scaled(20000);
	int rounds = nv_test_sanitized() ? 4 : 10;
	static nv_args *argv;
	static uint32_t *idx;
	(void)state;

	argv = calloc(n, sizeof(*argv));
	idx = calloc(n, sizeof(*idx));
	assert_non_null(argv);
	assert_non_null(idx);
	for (size_t i = 0; i < n; i++) {
		idx[i] = (uint32_t)i;
		argv[i].data = &idx[i];
		argv[i].len = sizeof(idx[i]);
	}
	for (int r = 0; r < rounds; r++) {
		nv_config cfg;
		nv_engine *e;
		nv_task_opts discard = {.discard_result = true};
		nv_stats s;

		counters_reset(n);
		et_cfg(&cfg, 2);
		cfg.queue_capacity = n;
		e = et_open(&cfg);
		assert_int_equal(
		    nv_task_register(e, "work", t_work, &discard, 0), 0);
		et_start(e);
		assert_int_equal(nv_map(e, "work", argv, n, NULL), 0);
		int rc = nv_engine_stop(e, 120000);
		if (rc != 0)
			fail_msg("round %d: stop: %s with %llu of %zu done", r,
				 nv_strerror(rc),
				 (unsigned long long)__atomic_load_n(
				     &g_done, __ATOMIC_SEQ_CST),
				 n);
		assert_int_equal(counters_check(n, NULL), 0);
		assert_int_equal(nv_engine_stats(e, &s), 0);
		assert_int_equal(s.succeeded, n);
		assert_int_equal(s.queued, 0);
		nv_engine_close(e);
	}
	free(argv);
	free(idx);
}

static void
test_stress_stop_with_running_job(void **state)
{
	nv_engine *e;
	nv_job_id gid = 0;
	nv_args a = {"x", 1};
	nv_schedule when = {.in_ms = 10};
	uint64_t t0, dt;
	nv_status st;
	(void)state;

	counters_reset(1);
	e = open_blocked(1000); /* two gate jobs running */
	assert_int_equal(nv_delay(e, "gate", NULL, 0, &gid), 0); /* queued */
	nv_task *t = nv_task_lookup(e, "count");
	t0 = et_now_ms();
	assert_int_equal(nv_engine_stop(e, 200), NV_ETIMEDOUT);
	dt = et_now_ms() - t0;
	assert_true(dt >= 199);
	assert_true(dt <= 200 + et_slack_ms());
	/* Intake is closed for every way in. */
	assert_int_equal(nv_delay(e, "count", "abcd", 4, NULL), NV_ESTOPPED);
	assert_int_equal(nv_task_delay(t, "abcd", 4, NULL), NV_ESTOPPED);
	assert_int_equal(nv_map(e, "count", &a, 1, NULL), NV_ESTOPPED);
	assert_int_equal(nv_schedule_add(e, "count", "abcd", 4, &when, NULL),
			 NV_ESTOPPED);
	assert_int_equal(nv_engine_start(e), NV_ESTOPPED);
	assert_int_equal(nv_engine_stop(e, 0), 0);
	assert_int_equal(nv_job_status(e, gid, &st), 0);
	assert_int_equal(st, NV_PENDING);
	et_gate_open(&gate);
	nv_engine_close(e); /* ASan: no leak */
}

/* Stop runs on its own thread so that a stop that never returns fails the
 * test instead of hanging it. */
static struct {
	nv_engine *e;
	uint32_t grace;
	int rc;
	int done; /* atomic */
} g_stop;

static void *
stopper_main(void *arg)
{
	(void)arg;
	g_stop.rc = nv_engine_stop(g_stop.e, g_stop.grace);
	__atomic_store_n(&g_stop.done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* A long queue of short jobs with a job that does not return behind it:
 * stop returns within its grace period (plus slack) whatever the workers
 * were doing at that moment; queued jobs left at the end are abandoned. */
static void
test_stress_stop_bounded(void **state)
{
	size_t n = (size_t)nv_test_scaled(20000);
	nv_config cfg;
	nv_engine *e;
	nv_task_opts discard = {.discard_result = true};
	static nv_args *argv;
	static uint32_t *idx;
	pthread_t th;
	uint64_t t0, dt;
	(void)state;

	argv = calloc(n, sizeof(*argv));
	idx = calloc(n, sizeof(*idx));
	assert_non_null(argv);
	assert_non_null(idx);
	for (size_t i = 0; i < n; i++) {
		idx[i] = (uint32_t)i;
		argv[i].data = &idx[i];
		argv[i].len = sizeof(idx[i]);
	}
	for (int round = 0; round < 5; round++) {
		counters_reset(n);
		et_gate_reset(&gate);
		et_cfg(&cfg, 2);
		cfg.queue_capacity = n + 2;
		cfg.job_timeout_ms = 3600000;
		e = et_open(&cfg);
		assert_int_equal(
		    nv_task_register(e, "count", t_work, &discard, 0), 0);
		assert_int_equal(nv_task_register(e, "hold", t_gate, NULL, 0),
				 0);
		assert_int_equal(nv_map(e, "count", argv, n, NULL), 0);
		for (int k = 0; k < 2; k++) /* one per worker */
			assert_int_equal(nv_delay(e, "hold", NULL, 0, NULL), 0);
		et_start(e);
		/* Stop in the middle of the short jobs. */
		assert_true(et_wait_u64(&g_done, n / 4));
		memset(&g_stop, 0, sizeof(g_stop));
		g_stop.e = e;
		g_stop.grace = 20;
		t0 = et_now_ms();
		assert_int_equal(pthread_create(&th, NULL, stopper_main, NULL),
				 0);
		struct et_int_ge stopped = {&g_stop.done, 1};
		if (!nv_test_wait_until(et_int_ge_pred, &stopped,
					20 + (unsigned)et_slack_ms()) ||
		    (dt = et_now_ms() - t0) > 20 + et_slack_ms()) {
			/* Let a blocked stop finish before failing. */
			et_gate_open(&gate);
			pthread_join(th, NULL);
			fail_msg("round %d: stop(20) took %llu ms", round,
				 (unsigned long long)(et_now_ms() - t0));
		}
		pthread_join(th, NULL);
		/* Jobs were still running (the hold jobs) or queued. */
		assert_int_equal(g_stop.rc, NV_ETIMEDOUT);
		/* Whatever ran, ran once; later dispatches are refused. */
		for (size_t i = 0; i < n; i++)
			assert_true(
			    __atomic_load_n(&g_cnt[i], __ATOMIC_RELAXED) <= 1);
		assert_int_equal(nv_delay(e, "count", &idx[0], 4, NULL),
				 NV_ESTOPPED);
		et_gate_open(&gate);
		nv_engine_close(e); /* ASan: queued jobs freed */
	}
	free(argv);
	free(idx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stress_million_jobs),
	    cmocka_unit_test(test_stress_tracked_retention),
	    cmocka_unit_test(test_stress_full_queue),
	    cmocka_unit_test(test_stress_parked_producer),
	    cmocka_unit_test(test_stress_stop_drains),
	    cmocka_unit_test(test_stress_stop_with_running_job),
	    cmocka_unit_test(test_stress_stop_bounded),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(g_cnt);
	return rc;
}
