/* ctest: labels=unit */
/*
 * tests/test_persist_sqlite_merge.c - the SQLite store's per-batch row
 * fold (persistence/sqlite_merge.c).
 *
 * The oracle is the store itself without the fold: the same records
 * written one per write() (a plan of one record never folds anything) must
 * leave exactly the same jobs table, every column compared, as when they
 * are written as one batch. Shapes: a whole life (ENQUEUED, STARTED,
 * SUCCEEDED), a retry pending (RETRY keeps updated_ms), a running job
 * (STARTED sets attempts, not max), a failure, a re-enqueue inside the
 * batch, records of jobs enqueued in an earlier batch or never, and
 * schedules between them; then random streams. The plan itself is checked
 * for what it folds.
 */
#include "testutil.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persistence/sqlite_merge.h"
#include "persistence/sqlite_schema.h"
#include "persistence/store.h"

static const nv_store_ops *ops = &nv__sqlite_store_ops;

static nv_rec
rec(uint8_t type, uint64_t id, uint32_t attempt, int64_t t, const char *data)
{
	nv_rec r = {.type = type, .id = id, .attempt = attempt, .time_ms = t};
	if (type == NV_REC_JOB_ENQUEUED || type == NV_REC_SCHED_ADDED) {
		r.task = "task";
		r.task_len = 4;
	}
	if (data) {
		r.data = data;
		r.data_len = (uint32_t)strlen(data);
	}
	return r;
}

static nv_store *
open_db(const char *dir, const char *name)
{
	char path[512];
	nv_store_conf c = {.path = path, .fsync = NV_FSYNC_OFF};
	nv_store *s = NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(ops->open(&s, &c), 0);
	return s;
}

/* Every column of every jobs row of a and b is the same. */
static void
assert_same_jobs(nv_store *a, nv_store *b)
{
	static const char sql[] =
	    "SELECT id, task, args, status, attempts, created_ms, updated_ms,"
	    " due_ms, result, error FROM jobs ORDER BY id";
	sqlite3_stmt *sa, *sb;
	int ra, rb, rows = 0;

	assert_int_equal(
	    sqlite3_prepare_v2(nv__sqlite_store_db(a), sql, -1, &sa, NULL),
	    SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(nv__sqlite_store_db(b), sql, -1, &sb, NULL),
	    SQLITE_OK);
	for (;;) {
		ra = sqlite3_step(sa);
		rb = sqlite3_step(sb);
		assert_int_equal(ra, rb);
		if (ra != SQLITE_ROW)
			break;
		rows++;
		for (int i = 0; i < 10; i++) {
			int ta = sqlite3_column_type(sa, i);
			int na = sqlite3_column_bytes(sa, i);
			if (ta != sqlite3_column_type(sb, i) ||
			    na != sqlite3_column_bytes(sb, i) ||
			    (na > 0 && memcmp(sqlite3_column_blob(sa, i),
					      sqlite3_column_blob(sb, i),
					      (size_t)na) != 0))
				fail_msg("job %lld: column %d differs",
					 (long long)sqlite3_column_int64(sa, 0),
					 i);
		}
	}
	assert_int_equal(ra, SQLITE_DONE);
	assert_true(rows > 0);
	sqlite3_finalize(sa);
	sqlite3_finalize(sb);
}

/* Writes recs[0..n) to a as one batch and to b one by one. */
static void
write_both(nv_store *a, nv_store *b, nv_rec *recs, size_t n, uint64_t *seq)
{
	for (size_t i = 0; i < n; i++)
		recs[i].seq = ++*seq;
	assert_int_equal(ops->write(a, recs, n), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ops->write(b, &recs[i], 1), 0);
}

static void
test_sqlite_merge_shapes_same_rows(void **state)
{
	char dir[256];
	nv_store *a, *b;
	nv_rec w[32];
	size_t n = 0;
	uint64_t seq = 0;
	(void)state;

	nv_test_tmpdir(dir, sizeof(dir), "sqmerge");
	a = open_db(dir, "a.db");
	b = open_db(dir, "b.db");
	/* An earlier batch: job 9 exists before. */
	w[n++] = rec(NV_REC_JOB_ENQUEUED, 9, 0, 50, "args9");
	write_both(a, b, w, n, &seq);
	n = 0;
	w[n++] = rec(NV_REC_JOB_ENQUEUED, 1, 0, 100, "args1");
	w[n++] = rec(NV_REC_JOB_STARTED, 1, 1, 110, NULL);
	w[n++] = rec(NV_REC_SCHED_ADDED, 3, 0, 115, "sargs");
	w[n++] = rec(NV_REC_JOB_SUCCEEDED, 1, 1, 120, "result1");
	w[n++] = rec(NV_REC_JOB_ENQUEUED, 2, 0, 200, NULL);
	w[n++] = rec(NV_REC_JOB_STARTED, 2, 1, 210, NULL);
	w[n++] = rec(NV_REC_JOB_RETRY, 2, 1, 999, "try again");
	w[n++] = rec(NV_REC_JOB_ENQUEUED, 4, 3, 300, "a4");
	w[n++] = rec(NV_REC_JOB_STARTED, 4, 1, 310, NULL); /* sets, not max */
	w[n++] = rec(NV_REC_JOB_STARTED, 9, 1, 320, NULL); /* earlier batch */
	w[n++] = rec(NV_REC_JOB_SUCCEEDED, 9, 1, 330, NULL);
	w[n++] = rec(NV_REC_JOB_STARTED, 77, 1, 340, NULL); /* never queued */
	w[n++] = rec(NV_REC_JOB_ENQUEUED, 5, 0, 400, "a5");
	w[n++] = rec(NV_REC_JOB_STARTED, 5, 1, 410, NULL);
	w[n++] = rec(NV_REC_JOB_FAILED, 5, 1, 420, "boom");
	w[n++] = rec(NV_REC_JOB_ENQUEUED, 5, 0, 430, "again"); /* afresh */
	w[n++] = rec(NV_REC_JOB_STARTED, 5, 1, 440, NULL);
	w[n++] = rec(NV_REC_JOB_ENQUEUED, 6, 0, 500, "a6");
	w[n++] = rec(NV_REC_JOB_FAILED, 6, 2, 520, NULL); /* empty error */
	w[n++] = rec(NV_REC_SCHED_FIRED, 3, 0, 530, NULL);
	write_both(a, b, w, n, &seq);
	assert_same_jobs(a, b);

	/* The plan folded what it should: 1 (2 records), 2 (2), 4 (1), the
	 * first 5 (2), the second 5 (1), 6 (1); not 9, 77 or schedules. */
	struct sqm_plan p = {0};
	assert_int_equal(nv__sqm_plan(&p, w, n), 0);
	assert_int_equal(p.merged, 9);
	assert_int_equal(p.act[9], SQM_APPLY);	/* STARTED 9 */
	assert_int_equal(p.act[11], SQM_APPLY); /* STARTED 77 */
	assert_int_equal(p.act[2], SQM_APPLY);	/* SCHED_ADDED */
	assert_int_equal(p.act[3], SQM_SKIP);
	assert_true(p.act[0] >= 0);
	assert_int_equal(p.rows[p.act[0]].status, 2);
	assert_int_equal(p.rows[p.act[0]].attempts, 1);
	assert_int_equal(p.rows[p.act[4]].has_due, 1);
	assert_int_equal(p.rows[p.act[4]].updated_ms, 210); /* STARTED */
	assert_int_equal(p.rows[p.act[7]].attempts, 1);
	nv__sqm_free(&p);
	ops->close(a);
	ops->close(b);
	nv_test_rmrf(dir);
}

static uint64_t rng = 88172645463325252ull;

static uint32_t
rnd(uint32_t n)
{
	return (uint32_t)(nv_test_rand(&rng) % n);
}

static void
test_sqlite_merge_random_same_rows(void **state)
{
	static const char *const texts[] = {NULL, "x", "result", "err"};
	char dir[256];
	nv_store *a, *b;
	nv_rec w[64];
	uint64_t seq = 0;
	size_t rounds = nv_test_scaled(60);
	(void)state;

	nv_test_tmpdir(dir, sizeof(dir), "sqmerge");
	a = open_db(dir, "a.db");
	b = open_db(dir, "b.db");
	for (size_t k = 0; k < rounds; k++) {
		size_t n = 1 + rnd(64);
		for (size_t i = 0; i < n; i++) {
			uint64_t id = 1 + rnd(12);
			uint8_t t = (uint8_t)(NV_REC_JOB_ENQUEUED + rnd(5));
			w[i] = rec(t, id, rnd(4), rnd(100000), texts[rnd(4)]);
		}
		write_both(a, b, w, n, &seq);
	}
	assert_same_jobs(a, b);
	ops->close(a);
	ops->close(b);
	nv_test_rmrf(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sqlite_merge_shapes_same_rows),
	    cmocka_unit_test(test_sqlite_merge_random_same_rows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
