/* ctest: labels=unit;concurrency timeout=180 */
/*
 * test_backend_results.c - one conformance suite run against every
 * built-in result backend (memory, file, sqlite): set/get of results and
 * errors, get_full fields, list_jobs (newest first, limit, status filter),
 * NV_ENOENT / NV_ENORESULT / NV_EINVAL, concurrent writers, retention, and
 * for the persistent ones close and reopen.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nuvom/backend.h"

static const char *bk;

struct fx {
	char dir[256];
	nv_config cfg;
	nv_backend_conf conf;
	nv_results *r;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	nv_test_tmpdir(f->dir, sizeof(f->dir), "br");
	nv_config_init(&f->cfg);
	f->cfg.data_dir = f->dir;
	f->cfg.fsync = NV_FSYNC_OFF;
	f->conf.cfg = &f->cfg;
	assert_int_equal(nv_results_open(bk, &f->conf, &f->r), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	nv_results_close(f->r);
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
set_ok(nv_results *r, nv_job_id id, const char *res, int64_t created)
{
	nv_job_info i = {.id = id,
			 .task = "t.ok",
			 .attempts = 1,
			 .created_ms = created,
			 .started_ms = created + 1,
			 .finished_ms = created + 2,
			 .result = res,
			 .result_len = strlen(res)};
	assert_int_equal(nv_results_set_result(r, &i), 0);
}

static void
set_err(nv_results *r, nv_job_id id, const char *err, int64_t created)
{
	nv_job_info i = {.id = id,
			 .task = "t.bad",
			 .attempts = 3,
			 .created_ms = created,
			 .finished_ms = created + 5,
			 .error = err};
	assert_int_equal(nv_results_set_error(r, &i), 0);
}

static void
check_values(nv_results *r)
{
	void *buf;
	size_t len;
	char *msg;
	nv_job_info *i;

	assert_int_equal(nv_results_get_result(r, 5, &buf, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(buf, "abc", 3);
	nv_free(buf);
	assert_int_equal(nv_results_get_error(r, 5, &msg), NV_ENORESULT);
	assert_null(msg);
	assert_int_equal(nv_results_get_error(r, 6, &msg), 0);
	assert_string_equal(msg, "boom");
	nv_free(msg);
	assert_int_equal(nv_results_get_result(r, 6, &buf, &len), NV_ENORESULT);
	assert_null(buf);
	assert_int_equal(len, 0);
	assert_int_equal(nv_results_get_result(r, 99, &buf, &len), NV_ENOENT);
	assert_int_equal(nv_results_get_error(r, 99, &msg), NV_ENOENT);
	assert_int_equal(nv_results_get_full(r, 99, &i), NV_ENOENT);
	assert_null(i);

	assert_int_equal(nv_results_get_full(r, 5, &i), 0);
	assert_int_equal(i->id, 5);
	assert_string_equal(i->task, "t.ok");
	assert_int_equal(i->status, NV_SUCCESS);
	assert_int_equal(i->attempts, 1);
	assert_int_equal(i->created_ms, 1000);
	assert_int_equal(i->finished_ms, 1002);
	assert_int_equal(i->result_len, 3);
	assert_memory_equal(i->result, "abc", 3);
	assert_null(i->error);
	nv_free(i);
	assert_int_equal(nv_results_get_full(r, 6, &i), 0);
	assert_string_equal(i->task, "t.bad");
	assert_int_equal(i->status, NV_FAILED);
	assert_int_equal(i->attempts, 3);
	assert_int_equal(i->created_ms, 2000);
	assert_int_equal(i->finished_ms, 2005);
	assert_string_equal(i->error, "boom");
	assert_null(i->result);
	nv_free(i);
}

static void
test_backend_results_set_get(void **state)
{
	struct fx *f = *state;
	set_ok(f->r, 5, "abc", 1000);
	set_err(f->r, 6, "boom", 2000);
	check_values(f->r);
	if (!persistent())
		return;
	nv_results_close(f->r);
	f->r = NULL;
	assert_int_equal(nv_results_open(bk, &f->conf, &f->r), 0);
	check_values(f->r); /* the same after a reopen */
}

static void
test_backend_results_list(void **state)
{
	struct fx *f = *state;
	nv_job_info **l;
	size_t n;
	nv_job_filter all = {0, -1}, top3 = {3, -1}, failed = {0, NV_FAILED};

	assert_int_equal(nv_results_list_jobs(f->r, &all, &l, &n), 0);
	assert_int_equal(n, 0);
	assert_null(l);
	for (int i = 1; i <= 10; i++) {
		if (i % 3 == 0)
			set_err(f->r, (nv_job_id)i, "e", 1000 * i);
		else
			set_ok(f->r, (nv_job_id)i, "r", 1000 * i);
	}
	for (int round = 0; round < 2; round++) {
		assert_int_equal(nv_results_list_jobs(f->r, &all, &l, &n), 0);
		assert_int_equal(n, 10);
		for (size_t i = 0; i < n; i++) /* newest first */
			assert_int_equal(l[i]->id, 10 - i);
		nv_job_info_list_free(l, n);
		assert_int_equal(nv_results_list_jobs(f->r, &top3, &l, &n), 0);
		assert_int_equal(n, 3);
		assert_int_equal(l[0]->id, 10);
		assert_int_equal(l[2]->id, 8);
		nv_job_info_list_free(l, n);
		assert_int_equal(nv_results_list_jobs(f->r, &failed, &l, &n),
				 0);
		assert_int_equal(n, 3); /* 9, 6, 3 */
		assert_int_equal(l[0]->id, 9);
		assert_int_equal(l[1]->id, 6);
		assert_int_equal(l[2]->id, 3);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(l[i]->status, NV_FAILED);
			assert_string_equal(l[i]->error, "e");
		}
		nv_job_info_list_free(l, n);
		if (!persistent())
			break;
		nv_results_close(f->r);
		f->r = NULL;
		assert_int_equal(nv_results_open(bk, &f->conf, &f->r), 0);
	}
}

static void
test_backend_results_bad_args(void **state)
{
	struct fx *f = *state;
	void *buf;
	size_t len, n;
	char *msg;
	nv_job_info *i, **l;
	nv_job_info zero = {0};
	nv_job_info badres = {.id = 1, .result_len = 4};
	nv_job_filter bad = {0, 7}, ok = {0, -1};
	nv_results *r = (nv_results *)&r;

	assert_int_equal(nv_results_open("nope", NULL, &r), NV_EINVAL);
	assert_null(r);
	assert_int_equal(nv_results_set_result(f->r, NULL), NV_EINVAL);
	assert_int_equal(nv_results_set_result(f->r, &zero), NV_EINVAL);
	assert_int_equal(nv_results_set_result(f->r, &badres), NV_EINVAL);
	assert_int_equal(nv_results_set_error(NULL, &badres), NV_EINVAL);
	assert_int_equal(nv_results_get_result(f->r, 0, &buf, &len), NV_EINVAL);
	assert_int_equal(nv_results_get_result(f->r, 1, NULL, &len), NV_EINVAL);
	assert_int_equal(nv_results_get_error(f->r, 1, NULL), NV_EINVAL);
	assert_int_equal(nv_results_get_error(NULL, 1, &msg), NV_EINVAL);
	assert_int_equal(nv_results_get_full(f->r, 0, &i), NV_EINVAL);
	assert_int_equal(nv_results_list_jobs(f->r, &bad, &l, &n), NV_EINVAL);
	assert_int_equal(nv_results_list_jobs(f->r, NULL, &l, &n), NV_EINVAL);
	assert_int_equal(nv_results_list_jobs(f->r, &ok, NULL, &n), NV_EINVAL);
	assert_null(nv_job_info_dup(NULL));
	assert_null(nv_job_info_dup(&badres));
	nv_job_info_list_free(NULL, 0);
}

struct wr {
	nv_results *r;
	unsigned base, n;
};

static void *
writer(void *arg)
{
	struct wr *w = arg;
	char buf[32];
	for (unsigned i = 0; i < w->n; i++) {
		nv_job_info info = {.id = w->base + i + 1, .task = "w"};
		snprintf(buf, sizeof(buf), "v%u", w->base + i + 1);
		info.result = buf;
		info.result_len = strlen(buf);
		info.error = buf;
		if ((i % 2 ? nv_results_set_error(w->r, &info)
			   : nv_results_set_result(w->r, &info)) != 0)
			return (void *)1;
	}
	return NULL;
}

static void
test_backend_results_concurrent(void **state)
{
	struct fx *f = *state;
	enum { NT = 4 };
	pthread_t t[NT];
	struct wr w[NT];
	unsigned per = (unsigned)nv_test_scaled(persistent() ? 300 : 3000);
	for (unsigned k = 0; k < NT; k++) {
		w[k] = (struct wr){f->r, k * per, per};
		pthread_create(&t[k], NULL, writer, &w[k]);
	}
	for (unsigned k = 0; k < NT; k++) {
		void *rv;
		pthread_join(t[k], &rv);
		assert_null(rv);
	}
	char want[32];
	for (unsigned id = 1; id <= NT * per; id++) {
		snprintf(want, sizeof(want), "v%u", id);
		if ((id - 1) % per % 2) {
			char *msg;
			assert_int_equal(nv_results_get_error(f->r, id, &msg),
					 0);
			assert_string_equal(msg, want);
			nv_free(msg);
		} else {
			void *buf;
			size_t len;
			assert_int_equal(
			    nv_results_get_result(f->r, id, &buf, &len), 0);
			assert_int_equal(len, strlen(want));
			assert_memory_equal(buf, want, len);
			nv_free(buf);
		}
	}
}

static void
test_backend_results_retention(void **state)
{
	struct fx *f = *state;
	nv_results *r;
	nv_config cfg = f->cfg;
	nv_backend_conf conf = {&cfg, NULL};
	nv_job_info *i;
	if (persistent())
		skip(); /* the persistent cap applies at open (the store's) */
	cfg.result_retention = 3;
	assert_int_equal(nv_results_open(bk, &conf, &r), 0);
	for (int k = 1; k <= 5; k++)
		set_ok(r, (nv_job_id)k, "x", k);
	assert_int_equal(nv_results_get_full(r, 1, &i), NV_ENOENT);
	assert_int_equal(nv_results_get_full(r, 2, &i), NV_ENOENT);
	for (int k = 3; k <= 5; k++) {
		assert_int_equal(nv_results_get_full(r, (nv_job_id)k, &i), 0);
		nv_free(i);
	}
	nv_results_close(r);
}

int
main(void)
{
	static const char *names[] = {"memory", "file", "sqlite"};
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_backend_results_set_get, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_backend_results_list, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_backend_results_bad_args,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backend_results_concurrent,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backend_results_retention,
					    setup, teardown),
	};
	int fails = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char group[64];
		bk = names[i];
		snprintf(group, sizeof(group), "backend_results[%s]", bk);
		fails += _cmocka_run_group_tests(
		    group, tests, sizeof(tests) / sizeof(tests[0]), NULL, NULL);
	}
	return fails;
}
