/* ctest: labels=unit;concurrency timeout=120 */
/*
 * tests/test_engine_persist_backlog.c - backpressure through the engine:
 * nv_delay against a persistent store whose disk stopped answering.
 *
 * The store's write is gated (its method table is swapped, before start,
 * for a copy whose write waits on a condition variable and then calls the
 * real one), and the persister's backlog is bounded to a few records. Then
 * nv_delay succeeds until the backlog is full and afterwards returns
 * NV_EFULL after the engine's enqueue timeout (never early) with nothing
 * half-done: the refused job never runs and is not in the store. Memory
 * stays bounded (the backlog's peak is within bound + submitting
 * threads). Once the gate opens, nv_flush returns 0, every accepted job
 * ran exactly once, and after a restart each one is SUCCESS with its
 * result. Runs for both store kinds.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "engine/engine_int.h"
#include "engine_persist.h"
#include "persistence/persister.h"
#include "persistence/store.h"

#define BOUND 16
#define TIMEOUT_MS 100

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool open;
	int waiting; /* writes blocked now */
	const nv_store_ops *real;
	nv_store_ops ops;
} gate = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static int
gated_write(nv_store *s, const nv_rec *recs, size_t n)
{
	pthread_mutex_lock(&gate.mu);
	gate.waiting++;
	pthread_cond_broadcast(&gate.cv);
	while (!gate.open)
		pthread_cond_wait(&gate.cv, &gate.mu);
	gate.waiting--;
	pthread_mutex_unlock(&gate.mu);
	return gate.real->write(s, recs, n);
}

static void
gate_set(bool open)
{
	pthread_mutex_lock(&gate.mu);
	gate.open = open;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.mu);
}

static bool
write_blocked(void *arg)
{
	bool b;
	(void)arg;
	pthread_mutex_lock(&gate.mu);
	b = gate.waiting > 0;
	pthread_mutex_unlock(&gate.mu);
	return b;
}

static nv_engine *
open_gated(const char *kind, const char *dir, bool gated)
{
	nv_engine *e = NULL;
	nv_config cfg;

	nv_config_init(&cfg);
	cfg.queue_backend = cfg.result_backend = kind;
	cfg.data_dir = dir;
	cfg.workers = 1;
	cfg.queue_capacity = 1024;
	cfg.enqueue_timeout_ms = TIMEOUT_MS;
	cfg.log_level = NV_LOG_ERROR;
	cfg.persist_backlog = BOUND; /* the config field reaches the persister */
	assert_int_equal(nv_engine_open(&e, &cfg), 0);
	assert_int_equal(nv_task_register(e, "count", count_task, NULL, 0), 0);
	if (gated) {
		/* Before start: the persister thread does not run yet. */
		gate.real = e->store->ops;
		gate.ops = *gate.real;
		gate.ops.write = gated_write;
		e->store->ops = &gate.ops;
		gate_set(false);
	}
	assert_int_equal(nv_engine_start(e), 0);
	return e;
}

static void
test_engine_backlog_efull_then_durable(void **state)
{
	struct fix *f = *state;
	nv_job_id ids[4 * BOUND + 1] = {0};
	size_t n = 0;
	uint64_t v, t0 = 0, ms = 0;
	nv_persister_stats ps;
	nv_engine *e = open_gated(f->kind, f->dir, true);
	int rc = 0;

	/* The first record goes into the blocked write; the rest fill the
	 * backlog, then nv_delay refuses. */
	for (n = 0; n < 4 * BOUND; n++) {
		v = n * 7919;
		if (n == 1)
			assert_true(
			    nv_test_wait_until(write_blocked, NULL, 10000));
		t0 = nv__mono_ns();
		rc = nv_delay(e, "count", &v, sizeof(v), &ids[n]);
		if (rc != 0)
			break;
	}
	ms = (nv__mono_ns() - t0) / 1000000;
	assert_int_equal(rc, NV_EFULL);
	assert_true(n >= 1 && n <= BOUND);
	assert_true(ms >= TIMEOUT_MS);
	/* The refused job's id was never handed out to the caller. */
	assert_int_equal(ids[n], 0);
	nv__persister_stats(e->persister, &ps);
	/* Submitters: this thread and the worker. */
	assert_true(ps.backlog_peak <= BOUND + 2);
	assert_true(ps.full_waits >= 1);

	gate_set(true);
	assert_int_equal(nv_flush(e, 10000), 0);
	wait_total(n);
	assert_int_equal(nv_engine_stop(e, 5000), 0);
	assert_counts(ids, n, 1);
	assert_int_equal(g.total, n); /* the refused job never ran */
	nv_engine_close(e);

	session_reset();
	e = open_gated(f->kind, f->dir, false);
	for (size_t i = 0; i < n; i++) {
		nv_status st;
		void *buf = NULL;
		size_t len = 0;
		v = i * 7919;
		assert_int_equal(nv_job_status(e, ids[i], &st), 0);
		assert_int_equal(st, NV_SUCCESS);
		assert_int_equal(nv_job_result(e, ids[i], &buf, &len), 0);
		assert_int_equal(len, sizeof(v));
		assert_memory_equal(buf, &v, sizeof(v));
		nv_free(buf);
	}
	/* Nothing was left behind to run again. */
	assert_int_equal(nv_engine_stop(e, 5000), 0);
	assert_int_equal(g.total, 0);
	nv_engine_close(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_engine_backlog_efull_then_durable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
