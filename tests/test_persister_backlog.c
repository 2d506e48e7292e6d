/* ctest: labels=unit;concurrency timeout=120 */
/*
 * test_persister_backlog.c - the persister's bounded backlog and its
 * STARTED coalescing, against the real file store opened on the
 * fault-injecting I/O layer (persistence/io.h): a held NV_IO_WRITE is a
 * disk that stopped answering, so the persister thread blocks inside the
 * store's write and the backlog cannot drain.
 *
 * Backpressure: a full backlog refuses at once with timeout 0, refuses
 * after the timeout (never early) with nothing half-done (no seq taken,
 * counters unchanged), parks waiters without a limit until the disk
 * answers, wakes them on stop (NV_ESTOPPED) and on a store failure
 * (NV_EIO), does not apply before start, holds the records bound under
 * several submitting threads (peak <= bound + threads), and, once the
 * disk answers, every accepted record is durable after a flush (read
 * back by reopening the store).
 *
 * Coalescing: nv__coalesce's shapes, and through the persister and the
 * file store: one batch holding ENQUEUED, STARTED, SUCCEEDED writes two
 * records whose fold is the same; a crash (simulated power cut) after a
 * durable ENQUEUED + STARTED and an unsynced SUCCEEDED recovers the job
 * as pending with its started attempt counted.
 *
 * Reorder buffer (reorder.h): shuffled seqs, some a little ahead (window)
 * and some far (heap), come back exactly in order.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "persistence/coalesce.h"
#include "persistence/io.h"
#include "persistence/persister.h"
#include "persistence/reorder.h"
#include "persistence/store.h"

/* ---------------------------------------------------------------- helpers */

struct fx {
	char dir[256];
	nv_io_fault io;
	nv_store *store;
	nv_persister *p;
};

static nv_store *
open_store(const char *dir, const nv_io_ops *io)
{
	nv_store_conf c = {.path = dir, .fsync = NV_FSYNC_BATCH, .io = io};
	nv_store *s = NULL;
	assert_int_equal(nv__file_store_ops.open(&s, &c), 0);
	return s;
}

/* A started persister over a file store on f->io, with the given bounds
 * and batch size. */
static void
fx_open(struct fx *f, uint64_t records, uint64_t bytes, uint32_t batch)
{
	nv_persister_conf pc = {.fsync = NV_FSYNC_BATCH,
				.interval_ms = 2,
				.max_batch = batch,
				.max_backlog = records,
				.max_backlog_bytes = bytes};
	nv_test_tmpdir(f->dir, sizeof(f->dir), "pbacklog");
	nv__io_fault_init(&f->io, NULL);
	f->store = open_store(f->dir, &f->io.ops);
	assert_int_equal(nv__persister_create(&f->p, f->store, &pc), 0);
	assert_int_equal(nv__persister_start(f->p), 0);
}

static void
fx_close(struct fx *f)
{
	nv__persister_destroy(f->p); /* closes the store */
	nv_test_rmrf(f->dir);
}

static nv_rec
job_rec(uint8_t type, uint64_t id, uint32_t attempt, const void *data,
	uint32_t len)
{
	nv_rec r = {.type = type, .id = id, .attempt = attempt, .time_ms = 7};
	if (type == NV_REC_JOB_ENQUEUED) {
		r.task = "t";
		r.task_len = 1;
	}
	r.data = data;
	r.data_len = len;
	return r;
}

static nv_rec
enq(uint64_t id)
{
	static const uint64_t payload = 0x1234;
	return job_rec(NV_REC_JOB_ENQUEUED, id, 0, &payload, sizeof(payload));
}

static nv_persister_stats
pstats(nv_persister *p)
{
	nv_persister_stats st;
	nv__persister_stats(p, &st);
	return st;
}

static bool
write_parked(void *arg)
{
	return nv__io_fault_parked(arg) > 0;
}

/* Blocks the disk and waits until the persister thread is stuck in a
 * write of one record (id 1), so that the backlog cannot drain. */
static void
stall_disk(struct fx *f)
{
	nv_rec r = enq(1);
	nv__io_fault_hold(&f->io, NV_IO_WRITE, true);
	assert_int_equal(nv__persister_submit_wait(f->p, &r, NULL, 0), 0);
	assert_true(nv_test_wait_until(write_parked, &f->io, 10000));
}

/* What a replay of the store in dir holds. */
struct seen {
	uint64_t records, enq, succ, started;
	uint32_t enq_attempt; /* of the last ENQUEUED */
	uint8_t *ids;	      /* ids[id] = 1 when an ENQUEUED of id came */
	uint64_t max_id;
};

static int
seen_fn(const nv_rec *r, void *arg)
{
	struct seen *s = arg;
	s->records++;
	if (r->type == NV_REC_JOB_ENQUEUED) {
		s->enq++;
		s->enq_attempt = r->attempt;
		if (s->ids && r->id <= s->max_id)
			s->ids[r->id] = 1;
	} else if (r->type == NV_REC_JOB_SUCCEEDED) {
		s->succ++;
	} else if (r->type == NV_REC_JOB_STARTED) {
		s->started++;
	}
	return 0;
}

static void
replay_dir(const char *dir, struct seen *s)
{
	nv_store *st = open_store(dir, NULL);
	assert_int_equal(st->ops->replay(st, seen_fn, s), 0);
	st->ops->close(st);
}

/* ---------------------------------------------------------------- cases */

static void
test_backlog_full_refuses_then_all_durable(void **state)
{
	struct fx f;
	const uint64_t bound = 32;
	uint64_t accepted = 1, last = 0, seq = 0, t0, ms;
	nv_rec r;
	(void)state;

	fx_open(&f, bound, 0, 8);
	stall_disk(&f); /* record 1 sits in the blocked write */
	for (uint64_t id = 2;; id++) {
		r = enq(id);
		int rc = nv__persister_submit_wait(f.p, &r, &seq, 0);
		if (rc == NV_EFULL)
			break;
		assert_int_equal(rc, 0);
		assert_true(seq > last);
		last = seq;
		accepted++;
		assert_true(accepted <= bound);
	}
	/* One submitter: the bound is exact. */
	assert_int_equal(accepted, bound);
	assert_int_equal(pstats(f.p).backlog, bound);

	/* A timed submit waits its whole timeout, then gives up having taken
	 * nothing: the backlog is unchanged and no seq was used. */
	r = enq(1000);
	t0 = nv__mono_ns();
	assert_int_equal(nv__persister_submit_wait(f.p, &r, NULL, 100),
			 NV_EFULL);
	ms = (nv__mono_ns() - t0) / 1000000;
	assert_true(ms >= 100);
	assert_int_equal(pstats(f.p).backlog, bound);
	assert_true(pstats(f.p).full_waits >= 1);

	/* The disk answers: everything drains; a new submit takes the next
	 * seq (nothing was skipped by the refused ones). */
	nv__io_fault_hold(&f.io, NV_IO_WRITE, false);
	r = enq(2000);
	assert_int_equal(nv__persister_submit_wait(f.p, &r, &seq, -1), 0);
	assert_int_equal(seq, last + 1);
	assert_int_equal(nv__persister_flush(f.p, 10000), 0);
	assert_int_equal(pstats(f.p).backlog, 0);
	assert_true(pstats(f.p).backlog_peak <= bound);
	nv__persister_destroy(f.p);

	struct seen s = {.max_id = 4096};
	s.ids = calloc(s.max_id + 1, 1);
	replay_dir(f.dir, &s);
	assert_int_equal(s.enq, accepted + 1);
	for (uint64_t id = 1; id <= accepted; id++)
		assert_int_equal(s.ids[id], 1);
	assert_int_equal(s.ids[1000], 0); /* the refused one */
	assert_int_equal(s.ids[2000], 1);
	free(s.ids);
	nv_test_rmrf(f.dir);
}

static void
test_backlog_bytes_bound(void **state)
{
	struct fx f;
	static uint8_t big[4000];
	uint64_t accepted = 0;
	nv_rec r;
	(void)state;

	fx_open(&f, 0, 16 * 1024, 64);
	stall_disk(&f);
	for (uint64_t id = 2; id < 100; id++) {
		r = job_rec(NV_REC_JOB_ENQUEUED, id, 0, big, sizeof(big));
		if (nv__persister_submit_wait(f.p, &r, NULL, 0) == NV_EFULL)
			break;
		accepted++;
	}
	/* About 16 KiB of 4 KB records (plus the stalled one's node). */
	assert_true(accepted >= 2 && accepted <= 4);
	assert_true(pstats(f.p).backlog_bytes <= 16 * 1024);
	nv__io_fault_hold(&f.io, NV_IO_WRITE, false);
	assert_int_equal(nv__persister_flush(f.p, 10000), 0);
	/* A record larger than the whole byte bound still passes when the
	 * backlog is empty (it could never fit otherwise). */
	static uint8_t huge[64 * 1024];
	r = job_rec(NV_REC_JOB_ENQUEUED, 500, 0, huge, sizeof(huge));
	assert_int_equal(nv__persister_submit_wait(f.p, &r, NULL, 0), 0);
	assert_int_equal(nv__persister_flush(f.p, 10000), 0);
	fx_close(&f);
}

struct waiter {
	nv_persister *p;
	uint64_t first_id, n;
	int timeout_ms;
	int rc;	  /* the last submit's result */
	int done; /* atomic */
	pthread_t th;
};

static void *
waiter_main(void *arg)
{
	struct waiter *w = arg;
	for (uint64_t i = 0; i < w->n; i++) {
		nv_rec r = enq(w->first_id + i);
		w->rc =
		    nv__persister_submit_wait(w->p, &r, NULL, w->timeout_ms);
		if (w->rc != 0)
			break;
	}
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static bool
waits_reached(void *arg)
{
	void **a = arg;
	return pstats(a[0]).full_waits >= *(uint64_t *)a[1];
}

static bool
waiter_done(void *arg)
{
	return __atomic_load_n(&((struct waiter *)arg)->done,
			       __ATOMIC_ACQUIRE) != 0;
}

/* Several threads submit without a time limit while the disk is stalled:
 * they park (the backlog stays within bound + threads), and all their
 * records are durable once it answers. */
static void
test_backlog_parked_threads_bounded(void **state)
{
	enum { NT = 4 };
	struct fx f;
	struct waiter w[NT];
	/* Each thread alone submits more than the bound, so every one of
	 * them parks whatever the stress scale (at 10%, 20 records each
	 * did not fill a bound of 64 and only one thread parked). */
	const uint64_t bound = 64, per = 2 * bound + nv_test_scaled(200);
	uint64_t want = NT;
	void *arg[2] = {NULL, &want};
	(void)state;

	fx_open(&f, bound, 0, 16);
	stall_disk(&f);
	for (int i = 0; i < NT; i++) {
		w[i] = (struct waiter){.p = f.p,
				       .first_id = 10000 + (uint64_t)i * 1000,
				       .n = per,
				       .timeout_ms = -1};
		pthread_create(&w[i].th, NULL, waiter_main, &w[i]);
	}
	arg[0] = f.p;
	assert_true(nv_test_wait_until(waits_reached, arg, 10000));
	assert_true(pstats(f.p).backlog <= bound + NT);
	for (int i = 0; i < NT; i++)
		assert_int_equal(__atomic_load_n(&w[i].done, __ATOMIC_ACQUIRE),
				 0);
	nv__io_fault_hold(&f.io, NV_IO_WRITE, false);
	for (int i = 0; i < NT; i++) {
		pthread_join(w[i].th, NULL);
		assert_int_equal(w[i].rc, 0);
	}
	assert_int_equal(nv__persister_flush(f.p, 10000), 0);
	assert_true(pstats(f.p).backlog_peak <= bound + NT);
	nv__persister_destroy(f.p);

	struct seen s = {0};
	replay_dir(f.dir, &s);
	assert_int_equal(s.enq, 1 + NT * per);
	nv_test_rmrf(f.dir);
}

static void *
stop_main(void *arg)
{
	nv__persister_stop(arg);
	return NULL;
}

/* A parked submit returns NV_ESTOPPED when the persister stops, and
 * NV_EIO when the store fails. */
static void
test_backlog_waiters_woken_by_stop_and_failure(void **state)
{
	struct fx f;
	struct waiter w;
	pthread_t stopper;
	uint64_t want = 1;
	void *arg[2] = {NULL, &want};
	(void)state;

	nv__log_set_level(-1);
	/* Stop. */
	fx_open(&f, 1, 0, 8);
	stall_disk(&f);
	w = (struct waiter){.p = f.p, .first_id = 5, .n = 1, .timeout_ms = -1};
	pthread_create(&w.th, NULL, waiter_main, &w);
	arg[0] = f.p;
	assert_true(nv_test_wait_until(waits_reached, arg, 10000));
	pthread_create(&stopper, NULL, stop_main, f.p);
	assert_true(nv_test_wait_until(waiter_done, &w, 10000));
	assert_int_equal(w.rc, NV_ESTOPPED);
	nv__io_fault_hold(&f.io, NV_IO_WRITE, false); /* stop can finish */
	pthread_join(stopper, NULL);
	pthread_join(w.th, NULL);
	fx_close(&f);

	/* Failure: the stalled write fails when the disk answers. */
	fx_open(&f, 1, 0, 8);
	stall_disk(&f);
	w = (struct waiter){.p = f.p, .first_id = 5, .n = 1, .timeout_ms = -1};
	pthread_create(&w.th, NULL, waiter_main, &w);
	arg[0] = f.p;
	assert_true(nv_test_wait_until(waits_reached, arg, 10000));
	nv__io_fault_arm(&f.io, NV_IO_WRITE, 1, EIO, NV_IO_FAULT_STICKY);
	nv__io_fault_hold(&f.io, NV_IO_WRITE, false);
	pthread_join(w.th, NULL);
	assert_int_equal(w.rc, NV_EIO);
	assert_int_equal(nv__persister_flush(f.p, 10000), NV_EIO);
	fx_close(&f);
	nv__log_set_level(NV__LOG_WARN);
}

/* Before start the bound does not apply (nothing could make room; the
 * records are written at start); once started, a full backlog refuses
 * until the thread has written below the bound. */
static void
test_backlog_unstarted_unbounded(void **state)
{
	char dir[256];
	nv_io_fault io;
	nv_persister *p;
	nv_persister_conf pc = {.fsync = NV_FSYNC_BATCH, .max_backlog = 4};
	nv_rec r;
	(void)state;

	nv_test_tmpdir(dir, sizeof(dir), "pbacklog");
	nv__io_fault_init(&io, NULL);
	assert_int_equal(
	    nv__persister_create(&p, open_store(dir, &io.ops), &pc), 0);
	for (uint64_t id = 1; id <= 10; id++) {
		r = enq(id);
		assert_int_equal(nv__persister_submit_wait(p, &r, NULL, 0), 0);
	}
	assert_int_equal(pstats(p).backlog, 10);
	assert_int_equal(pstats(p).full_waits, 0);
	/* Started with the disk stalled: the backlog is over the bound. */
	nv__io_fault_hold(&io, NV_IO_WRITE, true);
	assert_int_equal(nv__persister_start(p), 0);
	assert_true(nv_test_wait_until(write_parked, &io, 10000));
	r = enq(11);
	assert_int_equal(nv__persister_submit_wait(p, &r, NULL, 0), NV_EFULL);
	assert_int_equal(nv__persister_submit_wait(p, &r, NULL, 20), NV_EFULL);
	nv__io_fault_hold(&io, NV_IO_WRITE, false);
	assert_int_equal(nv__persister_submit_wait(p, &r, NULL, -1), 0);
	assert_int_equal(nv__persister_flush(p, 10000), 0);
	nv__persister_destroy(p);

	struct seen sn = {0};
	replay_dir(dir, &sn);
	assert_int_equal(sn.enq, 11);
	nv_test_rmrf(dir);
}

/* ---------------------------------------------------------------- reorder */

static int drops;

static void
count_drop(void *node)
{
	(void)node;
	drops++;
}

/* ---------------------------------------------------------------- coalesce */

static void
test_coalesce_shapes(void **state)
{
	struct nv_coalesce c;
	nv_rec b[16];
	size_t n = 0, k;
	(void)state;

	assert_int_equal(nv__coalesce_init(&c, 16), 0);
	/* job 1: whole life -> STARTED dropped */
	b[n++] = job_rec(NV_REC_JOB_ENQUEUED, 1, 0, NULL, 0);
	b[n++] = job_rec(NV_REC_JOB_STARTED, 1, 1, NULL, 0);
	/* job 2: STARTED without outcome -> kept */
	b[n++] = job_rec(NV_REC_JOB_STARTED, 2, 1, NULL, 0);
	b[n++] = job_rec(NV_REC_JOB_SUCCEEDED, 1, 1, NULL, 0);
	/* job 3: outcome of an older attempt -> STARTED kept */
	b[n++] = job_rec(NV_REC_JOB_STARTED, 3, 2, NULL, 0);
	b[n++] = job_rec(NV_REC_JOB_FAILED, 3, 1, NULL, 0);
	/* job 4: re-enqueued between -> kept */
	b[n++] = job_rec(NV_REC_JOB_STARTED, 4, 1, NULL, 0);
	b[n++] = job_rec(NV_REC_JOB_ENQUEUED, 4, 0, NULL, 0);
	b[n++] = job_rec(NV_REC_JOB_SUCCEEDED, 4, 1, NULL, 0);
	/* job 5: retry then a second run that fails -> both STARTED gone */
	b[n++] = job_rec(NV_REC_JOB_STARTED, 5, 1, NULL, 0);
	b[n++] = job_rec(NV_REC_JOB_RETRY, 5, 1, NULL, 0);
	b[n++] = job_rec(NV_REC_JOB_STARTED, 5, 2, NULL, 0);
	b[n++] = job_rec(NV_REC_JOB_FAILED, 5, 2, NULL, 0);
	for (size_t i = 0; i < n; i++)
		b[i].seq = i + 1;
	k = nv__coalesce(&c, b, n);
	assert_int_equal(k, n - 3);
	/* Order kept; the survivors are the expected seqs. */
	static const uint64_t want[] = {1, 3, 4, 5, 6, 7, 8, 9, 11, 13};
	assert_int_equal(k, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < k; i++)
		assert_int_equal(b[i].seq, want[i]);
	/* A batch over the table's size is left alone. */
	assert_int_equal(nv__coalesce(&c, b, 17), 17);
	/* Generations: a later batch does not see the earlier pending one. */
	b[0] = job_rec(NV_REC_JOB_STARTED, 9, 1, NULL, 0);
	b[1] = job_rec(NV_REC_JOB_ENQUEUED, 8, 0, NULL, 0);
	assert_int_equal(nv__coalesce(&c, b, 2), 2);
	b[0] = job_rec(NV_REC_JOB_SUCCEEDED, 9, 1, NULL, 0);
	b[1] = job_rec(NV_REC_JOB_ENQUEUED, 8, 0, NULL, 0);
	assert_int_equal(nv__coalesce(&c, b, 2), 2);
	nv__coalesce_free(&c);
}

/* One batch with a job's whole life writes two records; the fold is the
 * same (ENQUEUED with attempt 1, then SUCCEEDED). */
static void
test_coalesce_through_file_store(void **state)
{
	struct fx f;
	static const char res[] = "ok";
	nv_rec r[3];
	nv_store_stats st;
	(void)state;

	fx_open(&f, 0, 0, 64);
	stall_disk(&f); /* the next records pile up into one batch */
	r[0] = enq(2);
	r[1] = job_rec(NV_REC_JOB_STARTED, 2, 1, NULL, 0);
	r[2] = job_rec(NV_REC_JOB_SUCCEEDED, 2, 1, res, 2);
	for (int i = 0; i < 3; i++)
		assert_int_equal(nv__persister_submit(f.p, &r[i], NULL), 0);
	nv__io_fault_hold(&f.io, NV_IO_WRITE, false);
	assert_int_equal(nv__persister_flush(f.p, 10000), 0);
	assert_int_equal(pstats(f.p).coalesced, 1);
	f.store->ops->stats(f.store, &st);
	assert_int_equal(st.records, 1 + 2); /* id 1, then ENQUEUED+SUCC */
	nv__persister_destroy(f.p);

	struct seen s = {0};
	replay_dir(f.dir, &s);
	assert_int_equal(s.enq, 2);
	assert_int_equal(s.succ, 1);
	assert_int_equal(s.started, 0);
	assert_int_equal(s.enq_attempt, 1); /* the attempt, from SUCCEEDED */
	nv_test_rmrf(f.dir);
}

/* A crash between records: ENQUEUED + STARTED durable, SUCCEEDED written
 * but not synced when the power goes. The job comes back pending with
 * its started attempt counted. */
static void
test_crash_between_records(void **state)
{
	char dir[256];
	nv_io_fault io;
	nv_store *s;
	nv_rec r[3];
	(void)state;

	nv__log_set_level(-1);
	nv_test_tmpdir(dir, sizeof(dir), "pbacklog");
	nv__io_fault_init(&io, NULL);
	s = open_store(dir, &io.ops);
	r[0] = enq(7);
	r[1] = job_rec(NV_REC_JOB_STARTED, 7, 1, NULL, 0);
	r[2] = job_rec(NV_REC_JOB_SUCCEEDED, 7, 1, "x", 1);
	for (int i = 0; i < 3; i++)
		r[i].seq = (uint64_t)i + 1;
	assert_int_equal(s->ops->write(s, r, 2), 0);
	assert_int_equal(s->ops->sync(s), 0);
	assert_int_equal(s->ops->write(s, &r[2], 1), 0);
	/* The close's final sync fails: the tail stays unsynced. */
	nv__io_fault_arm(&io, NV_IO_SYNC, 1, EIO, NV_IO_FAULT_STICKY);
	s->ops->close(s);
	assert_true(nv__io_fault_powercut(&io) > 0);
	nv__log_set_level(NV__LOG_WARN);

	struct seen sn = {0};
	replay_dir(dir, &sn);
	assert_int_equal(sn.enq, 1);
	assert_int_equal(sn.succ, 0);
	assert_int_equal(sn.enq_attempt, 1);
	nv_test_rmrf(dir);
}

/* The reorder buffer returns every node exactly in seq order, whether it
 * was put a little ahead (window) or far ahead (heap), or both for seqs
 * that share a window slot. */
static void
test_reorder_shuffled(void **state)
{
	struct nv_reorder ro;
	const uint64_t n = 3 * NV__RO_WIN + 77;
	uint64_t *order = malloc(n * sizeof(*order)), next = 1, rng = 12345;
	(void)state;

	assert_int_equal(nv__ro_init(&ro), 0);
	for (uint64_t i = 0; i < n; i++)
		order[i] = i + 1;
	/* Shuffle blocks of 3 * WIN / 2 seqs: some land in the window,
	 * some in the heap. */
	for (uint64_t i = n - 1; i > 0; i--) {
		uint64_t j;
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		j = i -
		    (rng >> 33) %
			(i < 3 * NV__RO_WIN / 2 ? i + 1 : 3 * NV__RO_WIN / 2);
		uint64_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (uint64_t i = 0; i < n; i++) {
		void *x;
		if (order[i] == next) {
			next++;
		} else {
			assert_true(order[i] > next);
			assert_true(nv__ro_put(&ro, order[i], next,
					       (void *)(uintptr_t)order[i]));
		}
		while ((x = nv__ro_take(&ro, next)) != NULL) {
			assert_int_equal((uintptr_t)x, next);
			next++;
		}
	}
	assert_int_equal(next, n + 1);
	assert_int_equal(nv__ro_len(&ro), 0);
	/* Freeing with nodes still held hands each to drop. */
	assert_true(nv__ro_put(&ro, next + 5, next, (void *)1));
	assert_true(nv__ro_put(&ro, next + 2 * NV__RO_WIN, next, (void *)2));
	drops = 0;
	nv__ro_free(&ro, count_drop);
	assert_int_equal(drops, 2);
	free(order);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backlog_full_refuses_then_all_durable),
	    cmocka_unit_test(test_backlog_bytes_bound),
	    cmocka_unit_test(test_backlog_parked_threads_bounded),
	    cmocka_unit_test(test_backlog_waiters_woken_by_stop_and_failure),
	    cmocka_unit_test(test_backlog_unstarted_unbounded),
	    cmocka_unit_test(test_coalesce_shapes),
	    cmocka_unit_test(test_coalesce_through_file_store),
	    cmocka_unit_test(test_crash_between_records),
	    cmocka_unit_test(test_reorder_shuffled),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
