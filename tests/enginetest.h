/*
 * tests/enginetest.h - helpers shared by the engine tests (test_engine*.c,
 * test_registry.c).
 *
 * Header-only (static functions), included once by each test executable
 * after testutil.h. It provides:
 *  - et_cfg/et_open/et_start: a small engine config (few workers, quiet
 *    log, no retry delay) and asserting open/start;
 *  - a gate: a task that enters it announces itself (`entered`) and then
 *    waits until the test opens it, so tests can hold workers busy and
 *    know when they are;
 *  - condition waits on counters and on nv_engine_stats, built on
 *    nv_test_wait_until with generous deadlines (no sleep-and-hope);
 *  - result/error checks, and stderr capture (to check that something
 *    was logged).
 *
 * Task functions get no user pointer, so test state lives in globals of
 * each test file; every test resets what it uses before starting.
 */
#ifndef NV_ENGINETEST_H
#define NV_ENGINETEST_H

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"

/* Deadline for conditions that should hold "soon": generous, so a loaded
 * machine or a sanitizer build never fails a correct engine. */
#define ET_WAIT_MS 60000u

static inline uint64_t
et_now_ms(void)
{
	return nv__mono_ms();
}

static inline void
et_sleep_us(unsigned us)
{
	struct timespec ts = {(time_t)(us / 1000000u),
			      (long)(us % 1000000u) * 1000L};
	nanosleep(&ts, NULL);
}

static inline void
et_sleep_ms(unsigned ms)
{
	et_sleep_us(ms * 1000u);
}

/* Slack for "returns within X ms": scheduling noise on a loaded 2-core
 * machine, more under sanitizers. */
static inline uint64_t
et_slack_ms(void)
{
	return nv_test_sanitized() ? 5000 : 2000;
}

/* ---------------------------------------------------------------- config */

static inline void
et_cfg(nv_config *cfg, unsigned workers)
{
	nv_config_init(cfg);
	cfg->workers = workers;
	cfg->retry_delay_ms = 0;       /* immediate retries unless a test
					  asks for a delay */
	cfg->log_level = NV_LOG_ERROR; /* timeouts warn; keep output short */
	cfg->queue_capacity = 4096;
}

static inline nv_engine *
et_open(const nv_config *cfg)
{
	nv_engine *e = NULL;
	assert_int_equal(nv_engine_open(&e, cfg), 0);
	assert_non_null(e);
	return e;
}

static inline void
et_start(nv_engine *e)
{
	assert_int_equal(nv_engine_start(e), 0);
}

/* ---------------------------------------------------------------- gate */

struct et_gate {
	int open;    /* atomic: tasks in the gate may leave */
	int entered; /* atomic: tasks that reached the gate */
	int left;    /* atomic: tasks that left it */
};

static inline void
et_gate_reset(struct et_gate *g)
{
	__atomic_store_n(&g->open, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&g->entered, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&g->left, 0, __ATOMIC_SEQ_CST);
}

/* Called by a task: announce, then wait (ignoring cancellation) until the
 * test opens the gate. */
static inline void
et_gate_pass(struct et_gate *g)
{
	__atomic_add_fetch(&g->entered, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&g->open, __ATOMIC_ACQUIRE))
		et_sleep_us(200);
	__atomic_add_fetch(&g->left, 1, __ATOMIC_SEQ_CST);
}

static inline void
et_gate_open(struct et_gate *g)
{
	__atomic_store_n(&g->open, 1, __ATOMIC_RELEASE);
}

/* ---------------------------------------------------------------- waits */

struct et_int_ge {
	const int *p;
	int v;
};

static inline bool
et_int_ge_pred(void *arg)
{
	struct et_int_ge *a = arg;
	return __atomic_load_n(a->p, __ATOMIC_ACQUIRE) >= a->v;
}

/* Waits until *p >= v (ET_WAIT_MS at most); returns whether it happened. */
static inline bool
et_wait_int(const int *p, int v)
{
	struct et_int_ge a = {p, v};
	return nv_test_wait_until(et_int_ge_pred, &a, ET_WAIT_MS);
}

static inline bool
et_int_eq_pred(void *arg)
{
	struct et_int_ge *a = arg;
	return __atomic_load_n(a->p, __ATOMIC_ACQUIRE) == a->v;
}

/* Waits until *p == v (ET_WAIT_MS at most). */
static inline bool
et_wait_int_eq(const int *p, int v)
{
	struct et_int_ge a = {p, v};
	return nv_test_wait_until(et_int_eq_pred, &a, ET_WAIT_MS);
}

struct et_u64_ge {
	const uint64_t *p;
	uint64_t v;
};

static inline bool
et_u64_ge_pred(void *arg)
{
	struct et_u64_ge *a = arg;
	return __atomic_load_n(a->p, __ATOMIC_ACQUIRE) >= a->v;
}

static inline bool
et_wait_u64(const uint64_t *p, uint64_t v)
{
	struct et_u64_ge a = {p, v};
	return nv_test_wait_until(et_u64_ge_pred, &a, ET_WAIT_MS);
}

/* nv_engine_stats field conditions. */
enum et_field { ET_WORKERS, ET_RUNNING, ET_RESULTS, ET_SUCCEEDED, ET_QUEUED };

struct et_stat_eq {
	nv_engine *e;
	enum et_field f;
	uint64_t v;
};

static inline uint64_t
et_stat(nv_engine *e, enum et_field f)
{
	nv_stats st;
	assert_int_equal(nv_engine_stats(e, &st), 0);
	switch (f) {
	case ET_WORKERS:
		return st.workers;
	case ET_RUNNING:
		return st.running;
	case ET_RESULTS:
		return st.results;
	case ET_SUCCEEDED:
		return st.succeeded;
	case ET_QUEUED:
		return st.queued;
	}
	return 0;
}

static inline bool
et_stat_eq_pred(void *arg)
{
	struct et_stat_eq *a = arg;
	return et_stat(a->e, a->f) == a->v;
}

/* Waits until the stats field equals v; returns whether it did. */
static inline bool
et_wait_stat(nv_engine *e, enum et_field f, uint64_t v)
{
	struct et_stat_eq a = {e, f, v};
	return nv_test_wait_until(et_stat_eq_pred, &a, ET_WAIT_MS);
}

/* Waits for a job and returns its final status (asserting the wait
 * itself succeeded). */
static inline nv_status
et_wait_job(nv_engine *e, nv_job_id id)
{
	nv_status st = NV_PENDING;
	int rc = nv_job_wait(e, id, (int)ET_WAIT_MS, &st);
	if (rc != 0)
		fail_msg("wait for job %llu: %s (status %s)",
			 (unsigned long long)id, nv_strerror(rc),
			 nv_status_name(st));
	return st;
}

/* ---------------------------------------------------------------- results */

/* The job's result is want (wlen bytes), or NV_ENORESULT when want is
 * NULL. */
static inline void
expect_result(nv_engine *e, nv_job_id id, const char *want, size_t wlen)
{
	void *res = (void *)1;
	size_t len = 77;
	int rc = nv_job_result(e, id, &res, &len);
	if (want == NULL) {
		assert_int_equal(rc, NV_ENORESULT);
		assert_null(res);
		assert_int_equal(len, 0);
		return;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(len, wlen);
	assert_memory_equal(res, want, wlen);
	nv_free(res);
}

/* The job's error text is want, or NV_ENORESULT when want is NULL. */
static inline void
expect_error(nv_engine *e, nv_job_id id, const char *want)
{
	char *msg = (char *)1;
	int rc = nv_job_error(e, id, &msg);
	if (want == NULL) {
		assert_int_equal(rc, NV_ENORESULT);
		assert_null(msg);
		return;
	}
	assert_int_equal(rc, 0);
	assert_string_equal(msg, want);
	nv_free(msg);
}

/* ---------------------------------------------------------------- stderr */

struct et_capture {
	int saved;
	char path[256];
};

/* Redirects stderr (fd 2) into a temporary file. */
static inline void
et_capture_begin(struct et_capture *c)
{
	const char *base = getenv("TMPDIR");
	int fd;
	snprintf(c->path, sizeof(c->path), "%s/nvtest-log-XXXXXX",
		 base && *base ? base : "/tmp");
	fd = mkstemp(c->path);
	assert_true(fd >= 0);
	fflush(stderr);
	c->saved = dup(2);
	assert_true(c->saved >= 0);
	assert_true(dup2(fd, 2) == 2);
	close(fd);
}

/* Restores stderr; returns what was written meanwhile (free with free). */
static inline char *
et_capture_end(struct et_capture *c)
{
	char *buf;
	long n;
	FILE *f;
	fflush(stderr);
	assert_true(dup2(c->saved, 2) == 2);
	close(c->saved);
	f = fopen(c->path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	buf[fread(buf, 1, (size_t)n, f)] = '\0';
	fclose(f);
	unlink(c->path);
	return buf;
}


#ifdef ET_SHARED_TASKS
/* Tasks and state several engine test binaries use (each binary gets its
 * own copy; define ET_SHARED_TASKS before including this header). */
static struct et_gate gate;
static int g_runs; /* atomic: task executions */

static __attribute__((unused)) int
t_noop(nv_ctx *c, const void *args, size_t len)
{
	(void)c;
	(void)args;
	(void)len;
	__atomic_add_fetch(&g_runs, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static __attribute__((unused)) int
t_gate(nv_ctx *c, const void *args, size_t len)
{
	(void)args;
	(void)len;
	et_gate_pass(&gate);
	return nv_ctx_set_result(c, "gated", 6);
}
#endif /* ET_SHARED_TASKS */

#endif /* NV_ENGINETEST_H */
