/*
 * tests/engine_persist.h - shared by test_engine_persist.c and
 * test_engine_persist_errors.c: tasks that count their runs per job id in
 * a global table (reset between sessions), engine helpers for the "file"
 * and "sqlite" backends, and the per-kind fixture (cmocka prestate).
 * Functions are static inline so that each test uses what it needs.
 */
#ifndef NV_TEST_ENGINE_PERSIST_H
#define NV_TEST_ENGINE_PERSIST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXID 65536

/* Ids are boot << 40 | n (a durable boot counter keeps them unique across
 * restarts): map (boot < 16, n < 4096) onto the per-id arrays. */
static inline uint64_t
id_slot(uint64_t id)
{
	uint64_t boot = id >> 40, n = id & ((1ull << 40) - 1);
	if (boot >= 16 || n >= 4096)
		return MAXID;
	return boot * 4096 + n;
}
#define IDX(id) id_slot(id)

static struct {
	uint32_t count[MAXID];	 /* runs per job id in this session */
	uint32_t attempt[MAXID]; /* attempt of the last run */
	int64_t run_ms[MAXID];	 /* epoch ms of the last run */
	uint64_t total;		 /* runs in this session */
	uint32_t ticks[8];	 /* schedule runs per tag */
	int gate;		 /* block_task waits while 0 */
	int blocked;		 /* block_task is waiting */
	int bad_id;		 /* a job id over MAXID was seen */
	int64_t fail_ms;	 /* flaky_task: epoch ms of attempt 1 */
} g;

static inline int64_t
epoch_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void
sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static inline void
session_reset(void)
{
	memset(&g, 0, sizeof(g));
}

static inline nv_job_id
note_run(nv_ctx *c)
{
	nv_job_id id = nv_ctx_job_id(c);
	if (IDX(id) >= MAXID) {
		__atomic_store_n(&g.bad_id, 1, __ATOMIC_RELAXED);
		return 0;
	}
	__atomic_store_n(&g.attempt[IDX(id)], nv_ctx_attempt(c), __ATOMIC_RELAXED);
	__atomic_store_n(&g.run_ms[IDX(id)], epoch_ms(), __ATOMIC_RELAXED);
	__atomic_add_fetch(&g.count[IDX(id)], 1, __ATOMIC_RELAXED);
	/* Release: the counts above are visible to whoever sees total. */
	__atomic_add_fetch(&g.total, 1, __ATOMIC_RELEASE);
	return id;
}

static inline int
count_task(nv_ctx *c, const void *args, size_t len)
{
	note_run(c);
	return nv_ctx_set_result(c, args, len);
}

static inline int
fail_task(nv_ctx *c, const void *args, size_t len)
{
	(void)args;
	(void)len;
	nv_ctx_set_error(c, "boom %llu", (unsigned long long)note_run(c));
	return 1;
}

static inline int
flaky_task(nv_ctx *c, const void *args, size_t len)
{
	(void)args;
	(void)len;
	if (nv_ctx_attempt(c) == 1)
		__atomic_store_n(&g.fail_ms, epoch_ms(), __ATOMIC_RELAXED);
	note_run(c);
	if (nv_ctx_attempt(c) == 1) {
		nv_ctx_set_error(c, "first attempt fails");
		return 1;
	}
	return 0;
}

static inline int
block_task(nv_ctx *c, const void *args, size_t len)
{
	(void)args;
	(void)len;
	note_run(c);
	__atomic_store_n(&g.blocked, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&g.gate, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	return 0;
}

static inline int
tick_task(nv_ctx *c, const void *args, size_t len)
{
	(void)c;
	if (len == 1)
		__atomic_add_fetch(&g.ticks[*(const uint8_t *)args & 7], 1,
				   __ATOMIC_RELEASE);
	return 0;
}

static inline nv_engine *
open_kind(const char *kind, const char *dir, unsigned workers, size_t cap)
{
	nv_engine *e = NULL;
	nv_config cfg;
	nv_task_opts flaky = {.retries = 1, .retry_delay_ms = 1500};

	nv_config_init(&cfg);
	cfg.queue_backend = kind;
	cfg.result_backend = kind;
	cfg.data_dir = dir;
	cfg.workers = workers;
	cfg.queue_capacity = cap;
	cfg.log_level = NV_LOG_ERROR;
	assert_int_equal(nv_engine_open(&e, &cfg), 0);
	assert_int_equal(nv_task_register(e, "count", count_task, NULL, 0), 0);
	assert_int_equal(nv_task_register(e, "fail", fail_task, NULL, 0), 0);
	assert_int_equal(nv_task_register(e, "flaky", flaky_task, &flaky, 0),
			 0);
	assert_int_equal(nv_task_register(e, "block", block_task, NULL, 0), 0);
	assert_int_equal(nv_task_register(e, "tick", tick_task, NULL, 0), 0);
	return e;
}

static inline bool
total_reached(void *arg)
{
	return __atomic_load_n(&g.total, __ATOMIC_ACQUIRE) >= *(uint64_t *)arg;
}

static inline void
wait_total(uint64_t n)
{
	if (!nv_test_wait_until(total_reached, &n, 20000))
		fail_msg("only %llu of %llu runs happened",
			 (unsigned long long)g.total, (unsigned long long)n);
}

static inline bool
is_blocked(void *arg)
{
	(void)arg;
	return __atomic_load_n(&g.blocked, __ATOMIC_ACQUIRE) != 0;
}

static inline void
dispatch_n(nv_engine *e, const char *task, nv_job_id *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v = i * 7919;
		assert_int_equal(nv_delay(e, task, &v, sizeof(v), &ids[i]), 0);
		assert_true(ids[i] > 0 && IDX(ids[i]) < MAXID);
	}
}

/* Every id in ids ran exactly `times` times this session. */
static inline void
assert_counts(const nv_job_id *ids, size_t n, uint32_t times)
{
	assert_int_equal(g.bad_id, 0);
	for (size_t i = 0; i < n; i++)
		if (g.count[IDX(ids[i])] != times)
			fail_msg("job %llu ran %u times in this session, "
				 "expected %u",
				 (unsigned long long)ids[i], g.count[IDX(ids[i])],
				 times);
}

struct fix {
	const char *kind;
	char dir[256];
};

static inline int
setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->kind = *state;
	nv_test_tmpdir(f->dir, sizeof(f->dir), "engpersist");
	session_reset();
	*state = f;
	return 0;
}

static inline int
teardown(void **state)
{
	struct fix *f = *state;
	nv_test_rmrf(f->dir);
	free(f);
	return 0;
}

#define BOTH(fn)                                                               \
	cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown,          \
						 (void *)"file"),              \
	    cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown,      \
						     (void *)"sqlite")

#endif
