/* ctest: labels=unit;concurrency timeout=180 */
/*
 * test_backend_engine.c - backends and the engine: registration errors; a
 * plugin queue backend and a plugin result backend defined here (they wrap
 * the built-in memory ones and count calls) driving a real engine (every
 * job of nv_delay and nv_map runs exactly once, a job another producer put
 * in the plugin queue runs too, results land in the plugin backend and
 * stay readable through nv_job_result after the engine's retention evicted
 * them); unknown backend names; and the file cross-check: an engine picks
 * up what a standalone file queue enqueued, and a standalone file result
 * backend reads what the engine wrote.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nuvom/backend.h"

/* ---------------------------------------------------------------- plugins */

struct wq {
	nv_queue base;
	nv_queue *inner;
};
struct wrs {
	nv_results base;
	nv_results *inner;
};

static uint64_t n_enq, n_pop, n_set; /* atomic */
static struct wq *the_q;	     /* last opened */
static struct wrs *the_r;

static const nv_queue_ops test_queue_ops;
static const nv_results_ops test_results_ops;

static int
tq_open(nv_queue **out, const nv_backend_conf *conf)
{
	struct wq *q = calloc(1, sizeof(*q));
	q->base.ops = &test_queue_ops;
	int rc = nv_queue_open("memory", conf, &q->inner);
	if (rc != 0) {
		free(q);
		return rc;
	}
	the_q = q;
	*out = &q->base;
	return 0;
}
static void
tq_close(nv_queue *b)
{
	struct wq *q = (struct wq *)b;
	nv_queue_close(q->inner);
	free(q);
}
static int
tq_enqueue(nv_queue *b, const nv_job_msg *m)
{
	__atomic_fetch_add(&n_enq, 1, __ATOMIC_RELAXED);
	return nv_queue_enqueue(((struct wq *)b)->inner, m);
}
static int
tq_dequeue(nv_queue *b, nv_job_msg **out, int ms)
{
	int rc = nv_queue_dequeue(((struct wq *)b)->inner, out, ms);
	if (rc == 0)
		__atomic_fetch_add(&n_pop, 1, __ATOMIC_RELAXED);
	return rc;
}
static int
tq_pop_batch(nv_queue *b, nv_job_msg **out, size_t n, size_t *got)
{
	int rc = nv_queue_pop_batch(((struct wq *)b)->inner, out, n, got);
	__atomic_fetch_add(&n_pop, *got, __ATOMIC_RELAXED);
	return rc;
}
static int
tq_qsize(nv_queue *b, uint64_t *n)
{
	return nv_queue_qsize(((struct wq *)b)->inner, n);
}
static int
tq_clear(nv_queue *b, uint64_t *n)
{
	return nv_queue_clear(((struct wq *)b)->inner, n);
}

static const nv_queue_ops test_queue_ops = {
    NV_QUEUE_OPS_VERSION, "testq",	tq_open,  tq_close, tq_enqueue,
    tq_dequeue,		  tq_pop_batch, tq_qsize, tq_clear,
};

static int
tr_open(nv_results **out, const nv_backend_conf *conf)
{
	struct wrs *r = calloc(1, sizeof(*r));
	r->base.ops = &test_results_ops;
	/* The engine passes its own config: keep more than its table. */
	nv_config cfg;
	nv_backend_conf c2 = *conf;
	if (conf->cfg != NULL)
		cfg = *conf->cfg;
	else
		nv_config_init(&cfg);
	cfg.result_retention = 1000000;
	c2.cfg = &cfg;
	int rc = nv_results_open("memory", &c2, &r->inner);
	if (rc != 0) {
		free(r);
		return rc;
	}
	the_r = r;
	*out = &r->base;
	return 0;
}
static void
tr_close(nv_results *b)
{
	struct wrs *r = (struct wrs *)b;
	nv_results_close(r->inner);
	free(r);
}
#define IN(b) (((struct wrs *)(b))->inner)
static int
tr_set_result(nv_results *b, const nv_job_info *i)
{
	__atomic_fetch_add(&n_set, 1, __ATOMIC_RELAXED);
	return nv_results_set_result(IN(b), i);
}
static int
tr_set_error(nv_results *b, const nv_job_info *i)
{
	__atomic_fetch_add(&n_set, 1, __ATOMIC_RELAXED);
	return nv_results_set_error(IN(b), i);
}
static int
tr_get_result(nv_results *b, nv_job_id id, void **buf, size_t *len)
{
	return nv_results_get_result(IN(b), id, buf, len);
}
static int
tr_get_error(nv_results *b, nv_job_id id, char **msg)
{
	return nv_results_get_error(IN(b), id, msg);
}
static int
tr_get_full(nv_results *b, nv_job_id id, nv_job_info **out)
{
	return nv_results_get_full(IN(b), id, out);
}
static int
tr_list(nv_results *b, const nv_job_filter *f, nv_job_info ***o, size_t *n)
{
	return nv_results_list_jobs(IN(b), f, o, n);
}

static const nv_results_ops test_results_ops = {
    NV_RESULTS_OPS_VERSION,
    "testr",
    tr_open,
    tr_close,
    tr_set_result,
    tr_set_error,
    tr_get_result,
    tr_get_error,
    tr_get_full,
    tr_list,
};

/* ---------------------------------------------------------------- tasks */

#define NJOBS 200
static uint32_t runs[NJOBS + 1]; /* atomic, by the index in the args */
static uint64_t done_n;		 /* atomic */

static int
echo(nv_ctx *c, const void *args, size_t len)
{
	uint32_t k = 0;
	if (len == sizeof(k)) {
		memcpy(&k, args, sizeof(k));
		if (k <= NJOBS)
			__atomic_fetch_add(&runs[k], 1, __ATOMIC_RELAXED);
	}
	int rc = len ? nv_ctx_set_result(c, args, len) : 0;
	__atomic_fetch_add(&done_n, 1, __ATOMIC_RELEASE);
	if (k % 7 == 3) { /* some fail */
		nv_ctx_set_error(c, "bad %u", k);
		return 1;
	}
	return rc;
}

static uint64_t want_done;
static bool
all_done(void *arg)
{
	(void)arg;
	return __atomic_load_n(&done_n, __ATOMIC_ACQUIRE) >= want_done;
}

/* ---------------------------------------------------------------- tests */

static void
test_backend_engine_register(void **state)
{
	(void)state;
	nv_queue_ops q = test_queue_ops;
	nv_results_ops r = test_results_ops;
	/* Registered in main: a second time is NV_EEXIST; built-ins too. */
	assert_int_equal(nv_queue_backend_register(&test_queue_ops), NV_EEXIST);
	assert_int_equal(nv_results_backend_register(&test_results_ops),
			 NV_EEXIST);
	q.name = "memory";
	assert_int_equal(nv_queue_backend_register(&q), NV_EEXIST);
	q.name = "other";
	q.version = 2;
	assert_int_equal(nv_queue_backend_register(&q), NV_EINVAL);
	q.version = NV_QUEUE_OPS_VERSION;
	q.pop_batch = NULL;
	assert_int_equal(nv_queue_backend_register(&q), NV_EINVAL);
	q.pop_batch = tq_pop_batch;
	q.name = NULL;
	assert_int_equal(nv_queue_backend_register(&q), NV_EINVAL);
	assert_int_equal(nv_queue_backend_register(NULL), NV_EINVAL);
	r.name = "other";
	r.list_jobs = NULL;
	assert_int_equal(nv_results_backend_register(&r), NV_EINVAL);
	r.list_jobs = tr_list;
	r.version = 0;
	assert_int_equal(nv_results_backend_register(&r), NV_EINVAL);
	/* Nothing of the failures got in. */
	assert_null(nv_queue_backend_find("other"));
	assert_null(nv_results_backend_find("other"));
	assert_ptr_equal(nv_queue_backend_find("testq"), &test_queue_ops);
	char names[256];
	size_t need = nv_queue_backend_names(names, sizeof(names));
	assert_int_equal(need, strlen(names));
	assert_non_null(strstr(names, "memory"));
	assert_non_null(strstr(names, "testq"));
}

static void
test_backend_engine_unknown(void **state)
{
	(void)state;
	nv_config cfg;
	nv_engine *e = (nv_engine *)&e;
	nv_config_init(&cfg);
	cfg.queue_backend = "no-such-queue";
	assert_int_equal(nv_engine_open(&e, &cfg), NV_EINVAL);
	assert_null(e);
	nv_config_init(&cfg);
	cfg.result_backend = "no-such-results";
	assert_int_equal(nv_engine_open(&e, &cfg), NV_EINVAL);
	assert_null(e);
}

static void
test_backend_engine_plugins(void **state)
{
	(void)state;
	nv_config cfg;
	nv_engine *e;
	nv_job_id ids[NJOBS + 1];
	nv_args argv[NJOBS];
	uint32_t keys[NJOBS + 1];
	uint64_t enq0 = __atomic_load_n(&n_enq, __ATOMIC_RELAXED);
	uint64_t set0 = __atomic_load_n(&n_set, __ATOMIC_RELAXED);

	memset(runs, 0, sizeof(runs));
	done_n = 0;
	nv_config_init(&cfg);
	cfg.workers = 2;
	cfg.queue_backend = "testq";
	cfg.result_backend = "testr";
	cfg.result_retention = 4; /* the engine's table forgets fast */
	assert_int_equal(nv_engine_open(&e, &cfg), 0);
	assert_int_equal(nv_task_register(e, "echo", echo, NULL, 0), 0);
	assert_int_equal(nv_engine_start(e), 0);
	for (uint32_t k = 1; k <= NJOBS; k++)
		keys[k] = k;
	for (uint32_t k = 1; k <= NJOBS / 2; k++)
		assert_int_equal(nv_delay(e, "echo", &keys[k], 4, &ids[k]), 0);
	for (uint32_t k = NJOBS / 2 + 1; k <= NJOBS; k++)
		argv[k - NJOBS / 2 - 1] = (nv_args){&keys[k], 4};
	assert_int_equal(
	    nv_map(e, "echo", argv, NJOBS / 2, &ids[NJOBS / 2 + 1]), 0);
	/* Another producer puts a job straight into the plugin queue. */
	uint32_t k0 = 0;
	nv_job_msg foreign = {(nv_job_id)1 << 50, 0, 0, "echo", &k0, 4};
	assert_non_null(the_q);
	assert_int_equal(nv_queue_enqueue(&the_q->base, &foreign), 0);
	want_done = NJOBS + 1;
	assert_true(nv_test_wait_until(all_done, NULL, 30000));
	/* Every final outcome reached the plugin before the waits below. */
	for (uint32_t k = 1; k <= NJOBS; k++) {
		nv_status st;
		assert_int_equal(nv_job_wait(e, ids[k], 10000, &st), 0);
		assert_int_equal(st, k % 7 == 3 ? NV_FAILED : NV_SUCCESS);
	}
	nv_status st;
	assert_int_equal(nv_job_wait(e, foreign.id, 10000, &st), 0);
	assert_int_equal(nv_engine_stop(e, 5000), 0);
	for (uint32_t k = 1; k <= NJOBS; k++)
		assert_int_equal(runs[k], 1); /* exactly once */
	assert_int_equal(runs[0], 1);	      /* the foreign job */
	assert_int_equal(n_enq - enq0, NJOBS + 1);
	assert_int_equal(n_set - set0, NJOBS + 1);
	/* Evicted from the engine's table long ago: read from the plugin. */
	for (uint32_t k = 1; k <= NJOBS; k++) {
		void *buf;
		size_t len;
		char *msg;
		if (k % 7 == 3) {
			assert_int_equal(nv_job_error(e, ids[k], &msg), 0);
			char want[32];
			snprintf(want, sizeof(want), "bad %u", k);
			assert_string_equal(msg, want);
			nv_free(msg);
			continue;
		}
		assert_int_equal(nv_job_result(e, ids[k], &buf, &len), 0);
		assert_int_equal(len, 4);
		assert_memory_equal(buf, &keys[k], 4);
		nv_free(buf);
	}
	/* An id only the plugin knows. */
	nv_job_info only = {
	    .id = 777777, .task = "x", .result = "zz", .result_len = 2};
	assert_int_equal(nv_results_set_result(&the_r->base, &only), 0);
	void *buf;
	size_t len;
	assert_int_equal(nv_job_result(e, 777777, &buf, &len), 0);
	assert_int_equal(len, 2);
	assert_memory_equal(buf, "zz", 2);
	nv_free(buf);
	assert_int_equal(nv_job_status(e, 777777, &st), 0);
	assert_int_equal(st, NV_SUCCESS);
	assert_int_equal(nv_job_status(e, 777778, &st), NV_ENOENT);
	nv_engine_close(e);
	nv_backend_stats bs;
	assert_int_equal(nv_queue_stats("testq", &bs), 0);
	assert_true(bs.calls[NV_BOP_ENQUEUE] >= NJOBS + 1);
	assert_true(bs.items >= NJOBS + 1);
}

static bool
count_reached(void *arg)
{
	return __atomic_load_n(&done_n, __ATOMIC_ACQUIRE) >= *(uint64_t *)arg;
}

static void
test_backend_engine_file_crosscheck(void **state)
{
	(void)state;
	char dir[256];
	nv_config cfg;
	nv_backend_conf bc = {&cfg, NULL};
	nv_queue *q;
	nv_engine *e;
	const char *payloads[] = {"alpha", "beta", "gamma", "delta", "eps"};

	nv_test_tmpdir(dir, sizeof(dir), "bxe");
	nv_config_init(&cfg);
	cfg.data_dir = dir;
	cfg.fsync = NV_FSYNC_OFF;
	cfg.workers = 2;
	cfg.queue_backend = "file";
	cfg.result_backend = "file";
	assert_int_equal(nv_queue_open("file", &bc, &q), 0);
	for (int i = 0; i < 5; i++) {
		nv_job_msg m = {0,	0,	     0,
				"echo", payloads[i], strlen(payloads[i])};
		assert_int_equal(nv_queue_enqueue(q, &m), 0);
	}
	nv_queue_close(q); /* the store's lock: one opener at a time */

	done_n = 0;
	uint64_t want = 5;
	assert_int_equal(nv_engine_open(&e, &cfg), 0);
	assert_int_equal(nv_task_register(e, "echo", echo, NULL, 0), 0);
	assert_int_equal(nv_engine_start(e), 0);
	assert_true(nv_test_wait_until(count_reached, &want, 30000));
	assert_int_equal(nv_engine_stop(e, 5000), 0);
	nv_engine_close(e);

	nv_results *r;
	nv_job_info **l;
	size_t n;
	nv_job_filter all = {0, -1};
	assert_int_equal(nv_results_open("file", &bc, &r), 0);
	assert_int_equal(nv_results_list_jobs(r, &all, &l, &n), 0);
	assert_int_equal(n, 5);
	int seen = 0;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(l[i]->status, NV_SUCCESS);
		assert_string_equal(l[i]->task, "echo");
		for (int k = 0; k < 5; k++)
			if (l[i]->result_len == strlen(payloads[k]) &&
			    memcmp(l[i]->result, payloads[k],
				   l[i]->result_len) == 0)
				seen |= 1 << k;
	}
	assert_int_equal(seen, 0x1f);
	nv_job_info_list_free(l, n);
	nv_results_close(r);
	/* And nothing is left to run. */
	assert_int_equal(nv_queue_open("file", &bc, &q), 0);
	uint64_t left = 9;
	assert_int_equal(nv_queue_qsize(q, &left), 0);
	assert_int_equal(left, 0);
	nv_queue_close(q);
	nv_test_rmrf(dir);
}

int
main(void)
{
	if (nv_queue_backend_register(&test_queue_ops) != 0 ||
	    nv_results_backend_register(&test_results_ops) != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backend_engine_register),
	    cmocka_unit_test(test_backend_engine_unknown),
	    cmocka_unit_test(test_backend_engine_plugins),
	    cmocka_unit_test(test_backend_engine_file_crosscheck),
	};
	return cmocka_run_group_tests(tests, nv_test_env_reset, NULL);
}
