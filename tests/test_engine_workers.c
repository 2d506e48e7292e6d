/* ctest: labels=unit;concurrency timeout=300 */
/*
 * test_engine_workers.c - the worker pool: jobs popped together with a
 * long job still run on idle workers, parked workers use ~0% CPU and wake
 * for new work, pin_workers pins, workers = 0 means one per CPU.
 *
 * The idle test measures process CPU time over 300 ms of idleness: that
 * is the behaviour under test (parking, not spinning), asserted with a
 * wide margin (under 5% of one core).
 */
#include "testutil.h"
#define ET_SHARED_TASKS
#include "enginetest.h"

#include <sched.h>


/* A long job does not hold the jobs a worker popped with it while other
 * workers are idle. Queued before start, so one worker pops the gate job
 * together with some of the others. */
static void
test_engine_long_job_batch_neighbours(void **state)
{
	enum { N = 6 };
	nv_config cfg;
	nv_engine *e;
	nv_job_id gid, ids[N];
	nv_status st;
	(void)state;

	et_gate_reset(&gate);
	et_cfg(&cfg, 2);
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "gate", t_gate, NULL, 0), 0);
	assert_int_equal(nv_task_register(e, "noop", t_noop, NULL, 0), 0);
	assert_int_equal(nv_delay(e, "gate", NULL, 0, &gid), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(nv_delay(e, "noop", NULL, 0, &ids[i]), 0);
	et_start(e);
	for (int i = 0; i < N; i++) {
		/* Milliseconds normally: 10 s is a failure, not noise. */
		int rc = nv_job_wait(e, ids[i], 10000, &st);
		if (rc != 0)
			fail_msg("job %d behind the long one: %s (%s)", i,
				 nv_strerror(rc), nv_status_name(st));
	}
	assert_int_equal(nv_job_status(e, gid, &st), 0);
	assert_int_equal(st, NV_RUNNING);
	et_gate_open(&gate);
	assert_int_equal(et_wait_job(e, gid), NV_SUCCESS);
	nv_engine_close(e);
}

/* ---------------------------------------------------------------- workers */

static uint64_t
cpu_ns(void)
{
	return nv_test_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

/* Parked workers cost (almost) nothing, and wake for new work. */
static void
test_engine_idle_workers(void **state)
{
	enum { N = 2000 };
	nv_config cfg;
	nv_engine *e;
	nv_job_id id;
	uint64_t c0, c1, t0, t1;
	(void)state;

	__atomic_store_n(&g_runs, 0, __ATOMIC_SEQ_CST);
	et_cfg(&cfg, 4);
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "noop", t_noop, NULL, 0), 0);
	et_start(e);
	for (int i = 0; i < N; i++)
		assert_int_equal(nv_delay(e, "noop", NULL, 0, NULL), 0);
	assert_true(et_wait_int(&g_runs, N));
	/* Past the spin phase (a few hundred polls), everyone parks. */
	et_sleep_ms(50);
	c0 = cpu_ns();
	t0 = et_now_ms();
	et_sleep_ms(300);
	c1 = cpu_ns();
	t1 = et_now_ms();
	/* Well under 5% of one core over the idle window. */
	double frac = (double)(c1 - c0) / 1e6 / (double)(t1 - t0);
	print_message("idle: %.3f%% of one core over %llu ms\n", frac * 100,
		      (unsigned long long)(t1 - t0));
	assert_true(frac < 0.05);

	/* After 300 ms of idleness a new job still runs. */
	assert_int_equal(nv_delay(e, "noop", NULL, 0, &id), 0);
	assert_int_equal(et_wait_job(e, id), NV_SUCCESS);
	et_sleep_ms(200);
	assert_int_equal(nv_delay(e, "noop", NULL, 0, &id), 0);
	assert_int_equal(et_wait_job(e, id), NV_SUCCESS);
	assert_int_equal(__atomic_load_n(&g_runs, __ATOMIC_SEQ_CST), N + 2);
	nv_engine_close(e);
}

static int g_cpus_seen_max; /* atomic: largest affinity size seen */

static int
t_affinity(nv_ctx *c, const void *args, size_t len)
{
	cpu_set_t set;
	(void)c;
	(void)args;
	(void)len;
	CPU_ZERO(&set);
	if (pthread_getaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		return 1;
	int n = CPU_COUNT(&set);
	int cur = __atomic_load_n(&g_cpus_seen_max, __ATOMIC_RELAXED);
	while (n > cur &&
	       !__atomic_compare_exchange_n(&g_cpus_seen_max, &cur, n, false,
					    __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
		;
	return 0;
}

static void
test_engine_pin_workers(void **state)
{
	enum { N = 200 };
	nv_config cfg;
	nv_engine *e;
	nv_job_id ids[N];
	cpu_set_t mine;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	(void)state;

	g_cpus_seen_max = 0;
	CPU_ZERO(&mine);
	assert_int_equal(
	    pthread_getaffinity_np(pthread_self(), sizeof(mine), &mine), 0);
	et_cfg(&cfg, 2);
	cfg.pin_workers = true;
	e = et_open(&cfg);
	assert_int_equal(nv_task_register(e, "aff", t_affinity, NULL, 0), 0);
	et_start(e);
	for (int i = 0; i < N; i++)
		assert_int_equal(nv_delay(e, "aff", NULL, 0, &ids[i]), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(et_wait_job(e, ids[i]), NV_SUCCESS);
	/* Pinning can only take hold when every online CPU is allowed to
	 * this process (no cpuset restriction). */
	if (CPU_COUNT(&mine) == ncpu)
		assert_int_equal(g_cpus_seen_max, 1);
	else
		print_message("pin: process restricted to %d of %ld CPUs; "
			      "affinity not checked\n",
			      CPU_COUNT(&mine), ncpu);
	nv_engine_close(e);
}

/* workers = 0 means one per online CPU. */
static void
test_engine_default_workers(void **state)
{
	nv_config cfg;
	nv_engine *e;
	(void)state;

	et_cfg(&cfg, 0);
	e = et_open(&cfg);
	et_start(e);
	assert_true(et_wait_stat(e, ET_WORKERS,
				 (uint64_t)sysconf(_SC_NPROCESSORS_ONLN)));
	assert_int_equal(nv_engine_stop(e, 1000), 0);
	assert_int_equal(et_stat(e, ET_WORKERS), 0);
	nv_engine_close(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_engine_long_job_batch_neighbours),
	    cmocka_unit_test(test_engine_idle_workers),
	    cmocka_unit_test(test_engine_pin_workers),
	    cmocka_unit_test(test_engine_default_workers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
