/* ctest: labels=unit;concurrency timeout=180 */
/*
 * test_backend_queue.c - one conformance suite run against every built-in
 * queue backend (memory, file, sqlite) through the public wrappers: FIFO
 * order, dequeue timeout and wake-up, pop_batch, qsize, clear, bad
 * arguments, several producers and consumers (every message exactly once,
 * each producer's messages in order), and for the persistent ones: close
 * and reopen, a popped-but-unfinished job coming back, a cleared one not.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "nuvom/backend.h"

static const char *bk; /* the backend under test */

struct fx {
	char dir[256];
	nv_config cfg;
	nv_backend_conf conf;
	nv_queue *q;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	nv_test_tmpdir(f->dir, sizeof(f->dir), "bq");
	nv_config_init(&f->cfg);
	f->cfg.data_dir = f->dir;
	f->cfg.fsync = NV_FSYNC_OFF;
	f->cfg.queue_capacity = 4096;
	f->conf.cfg = &f->cfg;
	assert_int_equal(nv_queue_open(bk, &f->conf, &f->q), 0);
	assert_non_null(f->q);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	nv_queue_close(f->q);
	nv_test_rmrf(f->dir);
	free(f);
	return 0;
}

static bool
persistent(void)
{
	return strcmp(bk, "memory") != 0;
}

static void
put(nv_queue *q, nv_job_id id, const char *payload)
{
	nv_job_msg m = {id, 0, 0, "task.x", payload, strlen(payload)};
	assert_int_equal(nv_queue_enqueue(q, &m), 0);
}

static void
expect_msg(nv_job_msg *m, const char *payload)
{
	assert_non_null(m);
	assert_string_equal(m->task, "task.x");
	assert_int_equal(m->args_len, strlen(payload));
	assert_memory_equal(m->args, payload, m->args_len);
	assert_true(m->id != 0);
	assert_true(m->created_ms > 0);
}

static void
test_backend_queue_fifo(void **state)
{
	struct fx *f = *state;
	char buf[32];
	uint64_t n = 99;
	nv_job_msg *m;
	nv_job_id prev = 0;

	assert_int_equal(nv_queue_qsize(f->q, &n), 0);
	assert_int_equal(n, 0);
	for (int i = 0; i < 20; i++) {
		snprintf(buf, sizeof(buf), "p%d", i);
		put(f->q, 0, buf);
	}
	assert_int_equal(nv_queue_qsize(f->q, &n), 0);
	assert_int_equal(n, 20);
	for (int i = 0; i < 20; i++) {
		snprintf(buf, sizeof(buf), "p%d", i);
		assert_int_equal(nv_queue_dequeue(f->q, &m, 0), 0);
		expect_msg(m, buf);
		assert_true(m->id != prev); /* fresh ids */
		assert_int_equal(m->attempt, 0);
		prev = m->id;
		nv_free(m);
	}
	assert_int_equal(nv_queue_dequeue(f->q, &m, 0), NV_ETIMEDOUT);
	assert_null(m);
	/* An explicit id and attempt travel unchanged. */
	nv_job_msg x = {4242, 3, 1000, "task.x", NULL, 0};
	assert_int_equal(nv_queue_enqueue(f->q, &x), 0);
	assert_int_equal(nv_queue_dequeue(f->q, &m, 0), 0);
	assert_int_equal(m->id, 4242);
	assert_int_equal(m->attempt, 3);
	assert_int_equal(m->created_ms, 1000);
	assert_int_equal(m->args_len, 0);
	nv_free(m);
}

static void
test_backend_queue_timeout(void **state)
{
	struct fx *f = *state;
	nv_job_msg *m = (nv_job_msg *)&m;
	uint64_t t0 = nv__mono_ns();
	assert_int_equal(nv_queue_dequeue(f->q, &m, 120), NV_ETIMEDOUT);
	uint64_t ms = (nv__mono_ns() - t0) / 1000000;
	assert_null(m);
	assert_true(ms >= 119);	 /* never early (ms truncation: -1) */
	assert_true(ms < 10000); /* and not forever */
}

struct waker {
	nv_queue *q;
	int rc;
	int entered; /* atomic */
	nv_job_msg *m;
};

static void *
waiter_main(void *arg)
{
	struct waker *w = arg;
	__atomic_store_n(&w->entered, 1, __ATOMIC_SEQ_CST);
	w->rc = nv_queue_dequeue(w->q, &w->m, 20000);
	__atomic_store_n(&w->entered, 2, __ATOMIC_SEQ_CST);
	return NULL;
}

static bool
entered(void *arg)
{
	return __atomic_load_n(&((struct waker *)arg)->entered,
			       __ATOMIC_SEQ_CST) >= 1;
}

static bool
done(void *arg)
{
	return __atomic_load_n(&((struct waker *)arg)->entered,
			       __ATOMIC_SEQ_CST) == 2;
}

static void
test_backend_queue_wakes(void **state)
{
	struct fx *f = *state;
	struct waker w = {f->q, -1, 0, NULL};
	pthread_t t;
	pthread_create(&t, NULL, waiter_main, &w);
	assert_true(nv_test_wait_until(entered, &w, 10000));
	put(f->q, 0, "wake");
	/* Woken by the enqueue: well before its own 20 s timeout. */
	assert_true(nv_test_wait_until(done, &w, 10000));
	pthread_join(t, NULL);
	assert_int_equal(w.rc, 0);
	expect_msg(w.m, "wake");
	nv_free(w.m);
}

static void
test_backend_queue_pop_batch(void **state)
{
	struct fx *f = *state;
	nv_job_msg *out[10];
	size_t got = 99;
	uint64_t n;

	assert_int_equal(nv_queue_pop_batch(f->q, out, 10, &got), 0);
	assert_int_equal(got, 0);
	put(f->q, 0, "a");
	put(f->q, 0, "b");
	put(f->q, 0, "c");
	assert_int_equal(nv_queue_pop_batch(f->q, out, 2, &got), 0);
	assert_int_equal(got, 2);
	expect_msg(out[0], "a");
	expect_msg(out[1], "b");
	nv_free(out[0]);
	nv_free(out[1]);
	assert_int_equal(nv_queue_pop_batch(f->q, out, 10, &got), 0);
	assert_int_equal(got, 1); /* partial: what there is, no wait */
	expect_msg(out[0], "c");
	nv_free(out[0]);
	assert_int_equal(nv_queue_qsize(f->q, &n), 0);
	assert_int_equal(n, 0);
}

static void
test_backend_queue_clear(void **state)
{
	struct fx *f = *state;
	uint64_t n = 0, removed = 0;
	nv_job_msg *m;
	for (int i = 0; i < 5; i++)
		put(f->q, 0, "z");
	assert_int_equal(nv_queue_clear(f->q, &removed), 0);
	assert_int_equal(removed, 5);
	assert_int_equal(nv_queue_qsize(f->q, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(nv_queue_dequeue(f->q, &m, 0), NV_ETIMEDOUT);
	assert_int_equal(nv_queue_clear(f->q, NULL), 0); /* empty, NULL ok */
	put(f->q, 0, "after");
	assert_int_equal(nv_queue_dequeue(f->q, &m, 0), 0);
	expect_msg(m, "after");
	nv_free(m);
}

static void
test_backend_queue_bad_args(void **state)
{
	struct fx *f = *state;
	nv_job_msg *m, *out[2];
	size_t got;
	uint64_t n;
	nv_queue *q = (nv_queue *)&q;
	nv_job_msg no_task = {0, 0, 0, NULL, NULL, 0};
	nv_job_msg bad_args = {0, 0, 0, "t", NULL, 5};

	assert_int_equal(nv_queue_open("no-such-backend", NULL, &q), NV_EINVAL);
	assert_null(q);
	assert_int_equal(nv_queue_open(bk, NULL, NULL), NV_EINVAL);
	assert_int_equal(nv_queue_enqueue(NULL, &no_task), NV_EINVAL);
	assert_int_equal(nv_queue_enqueue(f->q, NULL), NV_EINVAL);
	assert_int_equal(nv_queue_enqueue(f->q, &no_task), NV_EINVAL);
	assert_int_equal(nv_queue_enqueue(f->q, &bad_args), NV_EINVAL);
	assert_int_equal(nv_queue_dequeue(NULL, &m, 0), NV_EINVAL);
	assert_int_equal(nv_queue_dequeue(f->q, NULL, 0), NV_EINVAL);
	assert_int_equal(nv_queue_pop_batch(f->q, out, 0, &got), NV_EINVAL);
	assert_int_equal(nv_queue_pop_batch(f->q, NULL, 2, &got), NV_EINVAL);
	assert_int_equal(nv_queue_pop_batch(f->q, out, 2, NULL), NV_EINVAL);
	assert_int_equal(nv_queue_qsize(f->q, NULL), NV_EINVAL);
	assert_int_equal(nv_queue_qsize(NULL, &n), NV_EINVAL);
	assert_int_equal(nv_queue_clear(NULL, &n), NV_EINVAL);
	nv_queue_close(NULL);
	assert_null(nv_job_msg_new(1, NULL, NULL, 0, 0, 0));
	assert_null(nv_job_msg_new(1, "t", NULL, 3, 0, 0));
	/* Nothing went in. */
	assert_int_equal(nv_queue_qsize(f->q, &n), 0);
	assert_int_equal(n, 0);
}

/* ---------------------------------------------------------------- MPMC */

#define NPROD 3
#define NCONS 3

struct mp {
	nv_queue *q;
	uint64_t per;	/* messages per producer */
	uint64_t taken; /* atomic: messages consumed */
	uint32_t *seen; /* [prod * per + seq], atomic */
	uint64_t *last; /* per consumer x producer: last seq seen + 1 */
	int bad;	/* atomic */
	unsigned idx;	/* atomic: thread index */
};

static void *
producer(void *arg)
{
	struct mp *p = arg;
	unsigned me = __atomic_fetch_add(&p->idx, 1, __ATOMIC_RELAXED);
	for (uint64_t s = 0; s < p->per; s++) {
		uint64_t v[2] = {me, s};
		nv_job_msg m = {0, 0, 0, "task.x", v, sizeof(v)};
		int rc;
		while ((rc = nv_queue_enqueue(p->q, &m)) == NV_EFULL)
			sched_yield();
		if (rc != 0)
			__atomic_store_n(&p->bad, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *
consumer(void *arg)
{
	struct mp *p = arg;
	unsigned me = __atomic_fetch_add(&p->idx, 1, __ATOMIC_RELAXED) - NPROD;
	uint64_t total = p->per * NPROD;
	uint64_t *last = &p->last[me * NPROD];
	nv_job_msg *batch[8];
	unsigned turn = 0;
	while (__atomic_load_n(&p->taken, __ATOMIC_RELAXED) < total) {
		size_t got = 0;
		int rc;
		if (turn++ % 2) {
			rc = nv_queue_pop_batch(p->q, batch, 8, &got);
		} else {
			rc = nv_queue_dequeue(p->q, &batch[0], 50);
			got = rc == 0;
			if (rc == NV_ETIMEDOUT)
				rc = 0;
		}
		if (rc != 0) {
			__atomic_store_n(&p->bad, 2, __ATOMIC_RELAXED);
			break;
		}
		for (size_t i = 0; i < got; i++) {
			uint64_t v[2];
			memcpy(v, batch[i]->args, sizeof(v));
			if (v[0] >= NPROD || v[1] >= p->per ||
			    __atomic_fetch_add(&p->seen[v[0] * p->per + v[1]],
					       1, __ATOMIC_RELAXED) != 0 ||
			    v[1] + 1 <= last[v[0]]) /* per-producer order */
				__atomic_store_n(&p->bad, 3, __ATOMIC_RELAXED);
			last[v[0]] = v[1] + 1;
			nv_free(batch[i]);
		}
		__atomic_fetch_add(&p->taken, got, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void
test_backend_queue_mpmc(void **state)
{
	struct fx *f = *state;
	struct mp p;
	pthread_t t[NPROD + NCONS];
	uint64_t n;

	memset(&p, 0, sizeof(p));
	p.q = f->q;
	p.per = nv_test_scaled(persistent() ? 1500 : 20000);
	p.seen = calloc(p.per * NPROD, sizeof(*p.seen));
	p.last = calloc(NCONS * NPROD, sizeof(*p.last));
	for (int i = 0; i < NPROD; i++)
		pthread_create(&t[i], NULL, producer, &p);
	/* Consumers get indexes after the producers. */
	while (__atomic_load_n(&p.idx, __ATOMIC_RELAXED) < NPROD)
		sched_yield();
	for (int i = 0; i < NCONS; i++)
		pthread_create(&t[NPROD + i], NULL, consumer, &p);
	for (int i = 0; i < NPROD + NCONS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(p.bad, 0);
	assert_int_equal(p.taken, p.per * NPROD);
	for (uint64_t i = 0; i < p.per * NPROD; i++)
		assert_int_equal(p.seen[i], 1);
	assert_int_equal(nv_queue_qsize(f->q, &n), 0);
	assert_int_equal(n, 0);
	free(p.seen);
	free(p.last);
}

/* ---------------------------------------------------------------- reopen */

static void
test_backend_queue_reopen(void **state)
{
	struct fx *f = *state;
	nv_job_msg *m, *b;
	uint64_t n, removed;
	nv_backend_stats st0, st1;

	if (!persistent())
		skip();
	assert_int_equal(nv_queue_stats(bk, &st0), 0);
	put(f->q, 0, "cleared");
	assert_int_equal(nv_queue_clear(f->q, &removed), 0);
	assert_int_equal(removed, 1);
	put(f->q, 0, "B");
	put(f->q, 0, "C");
	put(f->q, 0, "D");
	assert_int_equal(nv_queue_dequeue(f->q, &b, 0), 0); /* never finished */
	expect_msg(b, "B");
	nv_job_id bid = b->id;
	nv_free(b);
	nv_queue_close(f->q);
	f->q = NULL;

	assert_int_equal(nv_queue_open(bk, &f->conf, &f->q), 0);
	assert_int_equal(nv_queue_qsize(f->q, &n), 0);
	assert_int_equal(n, 3); /* B came back, "cleared" did not */
	assert_int_equal(nv_queue_dequeue(f->q, &m, 0), 0);
	expect_msg(m, "B");
	assert_int_equal(m->id, bid);
	assert_int_equal(m->attempt, 1); /* its started attempt counts */
	nv_free(m);
	assert_int_equal(nv_queue_dequeue(f->q, &m, 0), 0);
	expect_msg(m, "C");
	nv_job_id cid = m->id;
	nv_free(m);
	/* New ids never repeat one the store has seen. */
	put(f->q, 0, "E");
	nv_job_msg *batch[4];
	size_t got;
	assert_int_equal(nv_queue_pop_batch(f->q, batch, 4, &got), 0);
	assert_int_equal(got, 2);
	expect_msg(batch[0], "D");
	expect_msg(batch[1], "E");
	assert_true(batch[1]->id > cid && batch[1]->id > batch[0]->id);
	nv_free(batch[0]);
	nv_free(batch[1]);
	/* The wrappers counted the calls. */
	assert_int_equal(nv_queue_stats(bk, &st1), 0);
	assert_true(st1.calls[NV_BOP_ENQUEUE] >= st0.calls[NV_BOP_ENQUEUE] + 5);
	assert_true(st1.calls[NV_BOP_OPEN] >= st0.calls[NV_BOP_OPEN] + 1);
	assert_true(st1.items >= st0.items + 5);
	assert_int_equal(nv_queue_stats("no-such", &st1), NV_EINVAL);
}

static void
test_backend_queue_memory_full(void **state)
{
	struct fx *f = *state;
	nv_queue *q;
	nv_config cfg = f->cfg;
	nv_backend_conf conf = {&cfg, NULL};
	nv_job_msg m = {0, 0, 0, "t", NULL, 0};
	if (persistent())
		skip();
	cfg.queue_capacity = 4;
	assert_int_equal(nv_queue_open("memory", &conf, &q), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(nv_queue_enqueue(q, &m), 0);
	assert_int_equal(nv_queue_enqueue(q, &m), NV_EFULL);
	nv_queue_close(q); /* frees the 4 still queued */
}

int
main(void)
{
	static const char *names[] = {"memory", "file", "sqlite"};
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_backend_queue_fifo, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_backend_queue_timeout, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_backend_queue_wakes, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_backend_queue_pop_batch, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_backend_queue_clear, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_backend_queue_bad_args, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_backend_queue_mpmc, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_backend_queue_reopen, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_backend_queue_memory_full,
					    setup, teardown),
	};
	int fails = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char group[64];
		bk = names[i];
		snprintf(group, sizeof(group), "backend_queue[%s]", bk);
		fails += _cmocka_run_group_tests(
		    group, tests, sizeof(tests) / sizeof(tests[0]), NULL, NULL);
	}
	return fails;
}
