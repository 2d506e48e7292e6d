/* ctest: labels=unit timeout=300 */
/*
 * test_filelog_faults.c - the file store under I/O failures, through the
 * fault-injecting I/O layer: the k-th call fails for every k of a
 * scenario that rotates and compacts, short writes with ENOSPC, a failed
 * fsync never retried, compaction interrupted at each step, a power cut.
 * After each, the store must reopen cleanly with the fold of a prefix of
 * what was written that holds everything synced (tests/filelog_model.h).
 */
#include "testutil.h"

#include "filelog_model.h"

/* ---------------------------------------------------------------- faults */

/* A directory where fsync is cheap (tmpfs) for loops of hundreds of runs;
 * durability itself is not what these tests check. */
static void
fast_tmpdir(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "/dev/shm/nvtest-%s-XXXXXX", tag);
	if (access("/dev/shm", W_OK) != 0 || mkdtemp(buf) == NULL)
		nv_test_tmpdir(buf, len, tag);
}

struct scen {
	struct model written; /* every record handed to write() */
	size_t acked;	      /* records made durable by a successful sync */
	bool failed;
	int open_rc;
};

/* Opens through io, writes 16 batches (sync + maintain after each) and
 * closes. On the first error, checks that the store stays failed. */
static void
scenario(const char *dir, const nv_io_ops *io, struct scen *sc)
{
	struct wl w;
	nv_rec batch[8];
	nv_store *s;
	int rc = 0;

	memset(sc, 0, sizeof(*sc));
	wl_init(&w, 99);
	s = store_open(dir, 700, 1000, 5, io, &sc->open_rc);
	if (s == NULL) {
		assert_true(sc->open_rc == NV_EIO || sc->open_rc == NV_ENOMEM);
		return;
	}
	for (int b = 0; b < 16; b++) {
		size_t n = wl_batch(&w, batch, 6);
		if ((rc = s->ops->write(s, batch, n)) != 0 ||
		    (rc = s->ops->sync(s)) != 0)
			break;
		sc->acked = w.m.n;
		if ((rc = s->ops->maintain(s)) != 0)
			break;
	}
	if (rc != 0) {
		nv_rec r = mk(&w.m, NV_REC_JOB_ENQUEUED, 5000, 0, 1);
		assert_int_equal(rc, NV_EIO);
		sc->failed = true;
		/* Failed for good: no retry, no false success. */
		assert_int_equal(s->ops->write(s, &r, 1), NV_EIO);
		assert_int_equal(s->ops->sync(s), NV_EIO);
		assert_int_equal(s->ops->maintain(s), NV_EIO);
		assert_int_equal(stats_of(s).failed, NV_EIO);
	}
	s->ops->close(s);
	sc->written = w.m;
}

/* Reopens dir without faults: it must open, and its replay must be the
 * fold of a prefix of what was written that holds everything acked. */
static uint64_t g_k; /* the armed call, for messages */

static void
check_recovered(const char *dir, struct scen *sc)
{
	struct collect c = {{0}};
	nv_store *s = store_open(dir, 700, 1000, 5, NULL, NULL);
	nv_rec *f = calloc(sc->written.n + 1, sizeof(*f));
	bool match = false;

	assert_int_equal(s->ops->replay(s, collect_cb, &c), 0);
	for (size_t k = sc->acked; k <= sc->written.n && !match; k++) {
		struct model p;
		size_t n;
		model_prefix(&sc->written, k, &p);
		n = model_fold(&p, 5, f);
		if (n == c.got.n) {
			match = true;
			for (size_t i = 0; i < n && match; i++)
				match = f[i].seq == c.got.v[i].r.seq &&
					f[i].attempt == c.got.v[i].r.attempt &&
					f[i].type == c.got.v[i].r.type;
			if (match) /* full comparison of the match */
				for (size_t i = 0; i < n; i++)
					assert_same_rec(&c.got.v[i].r, &f[i]);
		}
		model_free(&p);
	}
	if (!match)
		fail_msg("fault at call %llu: replay (%zu records) is not the "
			 "fold of any prefix between %zu and %zu records",
			 (unsigned long long)g_k, c.got.n, sc->acked,
			 sc->written.n);
	assert_int_equal(count_suffix(dir, ".tmp", NULL), 0);
	s->ops->close(s);
	free(f);
	model_free(&c.got);
}

static void
test_filelog_fault_at_every_io_call(void **state)
{
	char dir[256];
	nv_io_fault f;
	struct scen sc;
	uint64_t calls, writes, closes, failed = 0;

	nv__log_set_level(-1); /* hundreds of expected error lines */
	fast_tmpdir(dir, sizeof(dir), "fl-fault");
	nv__io_fault_init(&f, NULL);
	scenario(dir, &f.ops, &sc);
	assert_false(sc.failed);
	assert_true(sc.acked == sc.written.n);
	calls = nv__io_fault_calls(&f, NV_IO_ANY);
	writes = nv__io_fault_calls(&f, NV_IO_WRITE);
	closes = nv__io_fault_calls(&f, NV_IO_CLOSE);
	/* The scenario rotates and compacts (so the loop below fails each
	 * step of both). */
	assert_true(nv__io_fault_calls(&f, NV_IO_RENAME) > 0);
	assert_true(nv__io_fault_calls(&f, NV_IO_UNLINK) > 0);
	check_recovered(dir, &sc);
	model_free(&sc.written);
	nv_test_rmrf(dir);

	/* EIO at the k-th call of any kind. */
	for (uint64_t k = 1; k <= calls + 1; k++) {
		fast_tmpdir(dir, sizeof(dir), "fl-fault");
		nv__io_fault_init(&f, NULL);
		nv__io_fault_arm(&f, NV_IO_ANY, k, EIO, 0);
		g_k = k;
		scenario(dir, &f.ops, &sc);
		failed += sc.failed || sc.open_rc != 0;
		assert_true(k > calls || nv__io_fault_injected(&f) == 1);
		check_recovered(dir, &sc);
		model_free(&sc.written);
		nv_test_rmrf(dir);
	}
	/* Every injected fault was reported, except on close (whose errors
	 * are meaningless on Linux: the descriptor is gone either way). */
	assert_int_equal(failed, calls - closes);
	/* A disk filling up: the k-th write is short, ENOSPC from then on. */
	for (uint64_t k = 1; k <= writes; k++) {
		fast_tmpdir(dir, sizeof(dir), "fl-enospc");
		nv__io_fault_init(&f, NULL);
		nv__io_fault_arm(&f, NV_IO_WRITE, k, ENOSPC,
				 NV_IO_FAULT_SHORT | NV_IO_FAULT_STICKY);
		scenario(dir, &f.ops, &sc);
		assert_true(sc.failed || sc.open_rc != 0);
		check_recovered(dir, &sc);
		model_free(&sc.written);
		nv_test_rmrf(dir);
	}
	print_message("fault runs: %llu I/O calls, %llu writes\n",
		      (unsigned long long)calls, (unsigned long long)writes);
	nv__log_set_level(NV__LOG_WARN);
}

static void
test_filelog_enospc_then_reopen(void **state)
{
	char dir[256];
	struct model m = {0};
	nv_io_fault f;
	nv_rec batch[3];
	nv_store *s;
	nv_store_stats st;

	nv__log_set_level(-1);
	nv_test_tmpdir(dir, sizeof(dir), "fl-nospc");
	nv__io_fault_init(&f, NULL);
	s = store_open(dir, 0, 0, 0, &f.ops, NULL);
	for (uint64_t id = 1; id <= 5; id++)
		put(s, &m, mk(&m, NV_REC_JOB_ENQUEUED, id, 0, 100));
	assert_int_equal(s->ops->sync(s), 0);
	nv__io_fault_arm(&f, NV_IO_WRITE, 1, ENOSPC,
			 NV_IO_FAULT_SHORT | NV_IO_FAULT_STICKY);
	for (int i = 0; i < 3; i++)
		batch[i] =
		    mk(&m, NV_REC_JOB_ENQUEUED, 10 + (uint64_t)i, 0, 100);
	assert_int_equal(s->ops->write(s, batch, 3), NV_EIO);
	st = stats_of(s);
	assert_int_equal(st.failed, NV_EIO);
	assert_int_equal(s->ops->sync(s), NV_EIO);
	assert_int_equal(s->ops->write(s, batch, 1), NV_EIO);
	s->ops->close(s);
	/* Half the batch reached the file: one whole record and a torn one.
	 * The whole one was never acknowledged but is a genuine record. */
	s = store_open(dir, 0, 0, 0, NULL, NULL);
	st = stats_of(s);
	assert_true(st.truncated_bytes > 0);
	assert_int_equal(st.failed, 0);
	model_add(&m, &batch[0]);
	assert_fold(s, &m, 0);
	s->ops->close(s);
	model_free(&m);
	nv_test_rmrf(dir);
	nv__log_set_level(NV__LOG_WARN);
}

static void
test_filelog_failed_fsync_never_retried(void **state)
{
	char dir[256];
	struct model m = {0};
	nv_io_fault f;
	nv_store *s;
	uint64_t syncs;

	nv__log_set_level(-1);
	nv_test_tmpdir(dir, sizeof(dir), "fl-fsync");
	nv__io_fault_init(&f, NULL);
	s = store_open(dir, 0, 0, 0, &f.ops, NULL);
	put(s, &m, mk(&m, NV_REC_JOB_ENQUEUED, 1, 0, 10));
	nv__io_fault_arm(&f, NV_IO_SYNC, 1, EIO, 0); /* fails once only */
	assert_int_equal(s->ops->sync(s), NV_EIO);
	syncs = nv__io_fault_calls(&f, NV_IO_SYNC);
	/* The next fdatasync would succeed - and lie. It is never made. */
	assert_int_equal(s->ops->sync(s), NV_EIO);
	assert_int_equal(s->ops->write(s, &m.v[0].r, 1), NV_EIO);
	assert_int_equal(s->ops->maintain(s), NV_EIO);
	s->ops->close(s);
	assert_int_equal(nv__io_fault_calls(&f, NV_IO_SYNC), syncs);
	model_free(&m);
	nv_test_rmrf(dir);
	nv__log_set_level(NV__LOG_WARN);
}

/* A compaction interrupted at its commit point (rename) or after it
 * (unlink of the old segments) loses nothing and duplicates nothing. */
static void
test_filelog_interrupted_compaction(void **state)
{
	const nv_io_kind kinds[] = {NV_IO_WRITE, NV_IO_SYNC, NV_IO_RENAME,
				    NV_IO_UNLINK};
	nv__log_set_level(-1);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		char dir[256];
		struct wl w;
		nv_rec batch[8];
		nv_io_fault f;
		nv_store *s;
		nv_store_stats st;

		nv_test_tmpdir(dir, sizeof(dir), "fl-icomp");
		wl_init(&w, 5 + i);
		g_fsync = NV_FSYNC_OFF;
		s = store_open(dir, 1024, 1 << 30, 5, NULL, NULL);
		for (int t = 0; t < 300; t++) {
			size_t n = wl_batch(&w, batch, 8);
			assert_int_equal(s->ops->write(s, batch, n), 0);
		}
		assert_int_equal(s->ops->maintain(s), 0);
		assert_int_equal(stats_of(s).compactions, 0);
		s->ops->close(s);
		assert_true(count_suffix(dir, ".log", NULL) > 3);

		nv__io_fault_init(&f, NULL);
		s = store_open(dir, 1024, 1, 5, &f.ops, NULL);
		nv__io_fault_arm(&f, kinds[i], 1, EIO, 0);
		assert_int_equal(s->ops->maintain(s), NV_EIO);
		s->ops->close(s);
		s = store_open(dir, 1024, 1, 5, NULL, NULL);
		st = stats_of(s);
		assert_int_equal(st.quarantined + st.truncated_bytes, 0);
		assert_fold(s, &w.m, 5);
		assert_int_equal(s->ops->maintain(s), 0);
		/* Past the rename the compaction is done: the open finished
		 * it by deleting the covered segments. */
		assert_int_equal(stats_of(s).compactions,
				 kinds[i] == NV_IO_UNLINK ? 0 : 1);
		assert_fold(s, &w.m, 5);
		s->ops->close(s);
		assert_int_equal(count_suffix(dir, ".tmp", NULL), 0);
		assert_int_equal(count_suffix(dir, ".log", NULL), 2);
		s = store_open(dir, 1024, 1, 5, NULL, NULL);
		assert_fold(s, &w.m, 5);
		s->ops->close(s);
		model_free(&w.m);
		nv_test_rmrf(dir);
		g_fsync = NV_FSYNC_ALWAYS;
	}
	nv__log_set_level(NV__LOG_WARN);
}

static void
test_filelog_powercut_keeps_synced(void **state)
{
	char dir[256];
	struct model m = {0}, synced;
	nv_io_fault f;
	nv_store *s;
	uint64_t dropped;

	nv_test_tmpdir(dir, sizeof(dir), "fl-power");
	nv__io_fault_init(&f, NULL);
	s = store_open(dir, 1500, 1 << 30, 0, &f.ops, NULL);
	for (uint64_t id = 1; id <= 40; id++)
		put(s, &m, mk(&m, NV_REC_JOB_ENQUEUED, id, 0, 60));
	assert_int_equal(s->ops->sync(s), 0);
	model_prefix(&m, m.n, &synced);
	for (uint64_t id = 41; id <= 45; id++)
		put(s, &m, mk(&m, NV_REC_JOB_ENQUEUED, id, 0, 60));
	/* Power fails before the next sync; the store never learns. */
	dropped = nv__io_fault_powercut(&f);
	assert_true(dropped > 0);
	nv__io_fault_arm(&f, NV_IO_SYNC, 1, EIO, NV_IO_FAULT_STICKY);
	nv__log_set_level(-1);
	s->ops->close(s);
	nv__log_set_level(NV__LOG_WARN);
	s = store_open(dir, 1500, 1 << 30, 0, NULL, NULL);
	assert_fold(s, &synced, 0);
	s->ops->close(s);
	model_free(&m);
	model_free(&synced);
	nv_test_rmrf(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_filelog_fault_at_every_io_call, reset),
	    cmocka_unit_test_setup(test_filelog_enospc_then_reopen, reset),
	    cmocka_unit_test_setup(test_filelog_failed_fsync_never_retried,
				   reset),
	    cmocka_unit_test_setup(test_filelog_interrupted_compaction, reset),
	    cmocka_unit_test_setup(test_filelog_powercut_keeps_synced, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
