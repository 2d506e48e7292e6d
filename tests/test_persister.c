/* ctest: labels=unit;concurrency timeout=240 */
/*
 * test_persister.c - the write-behind persister: ordering and durability
 * under concurrent submitters (against an in-memory store that checks
 * every seq and knows what is synced), flush semantics per fsync policy,
 * end-to-end durability through the file store with a simulated power
 * cut, failure (NV_EIO from flush and submit), timeouts, stop, idling.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/log.h"
#include "persistence/io.h"
#include "persistence/persister.h"
#include "persistence/store.h"

/* ---------------------------------------------------------------- memstore */

/* An in-memory store that checks what the persister hands it: seqs must
 * arrive contiguous and increasing, and each payload must match its id. */
struct memstore {
	nv_store base;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t first_seq; /* the store's last_seq at open */
	uint64_t last_seq;  /* last written */
	uint64_t synced;    /* last seq covered by a sync */
	uint64_t records, writes, syncs, bad, max_batch;
	bool block_sync; /* sync waits while true */
	int in_sync;	 /* a sync is blocked */
	int fail_write, fail_sync;
	bool closed;
};

#define MS(s) ((struct memstore *)(s))

static uint8_t
pattern(uint64_t id, size_t i)
{
	return (uint8_t)(id * 131 + i * 7);
}

static int
ms_write(nv_store *s, const nv_rec *r, size_t n)
{
	struct memstore *m = MS(s);
	pthread_mutex_lock(&m->mu);
	if (m->fail_write) {
		pthread_mutex_unlock(&m->mu);
		return NV_EIO;
	}
	for (size_t i = 0; i < n; i++) {
		const uint8_t *d = r[i].data;
		if (r[i].seq != m->last_seq + 1)
			m->bad++;
		m->last_seq = r[i].seq;
		for (uint32_t k = 0; k < r[i].data_len; k++)
			if (d[k] != pattern(r[i].id, k))
				m->bad++;
	}
	m->records += n;
	m->writes++;
	if (n > m->max_batch)
		m->max_batch = n;
	pthread_mutex_unlock(&m->mu);
	return 0;
}

static int
ms_sync(nv_store *s)
{
	struct memstore *m = MS(s);
	int rc = 0;
	pthread_mutex_lock(&m->mu);
	m->in_sync++;
	pthread_cond_broadcast(&m->cv);
	while (m->block_sync)
		pthread_cond_wait(&m->cv, &m->mu);
	m->in_sync--;
	if (m->fail_sync)
		rc = NV_EIO;
	else
		m->synced = m->last_seq;
	m->syncs++;
	pthread_mutex_unlock(&m->mu);
	return rc;
}

static void
ms_stats(nv_store *s, nv_store_stats *out)
{
	struct memstore *m = MS(s);
	memset(out, 0, sizeof(*out));
	out->last_seq = m->first_seq;
}

static void
ms_close(nv_store *s)
{
	MS(s)->closed = true; /* freed by the test */
}

static const nv_store_ops memstore_ops = {
    .version = NV_STORE_OPS_VERSION,
    .name = "memtest",
    .close = ms_close,
    .write = ms_write,
    .sync = ms_sync,
    .stats = ms_stats,
};

static struct memstore *
ms_new(uint64_t first_seq)
{
	struct memstore *m = calloc(1, sizeof(*m));
	m->base.ops = &memstore_ops;
	m->first_seq = m->last_seq = m->synced = first_seq;
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	return m;
}

static void
ms_free(struct memstore *m)
{
	pthread_mutex_destroy(&m->mu);
	pthread_cond_destroy(&m->cv);
	free(m);
}

static uint64_t
ms_get(struct memstore *m, uint64_t *field)
{
	uint64_t v;
	pthread_mutex_lock(&m->mu);
	v = *field;
	pthread_mutex_unlock(&m->mu);
	return v;
}

static nv_rec
rec_for(uint64_t id, uint8_t *buf, size_t len)
{
	nv_rec r = {.id = id,
		    .type = NV_REC_JOB_ENQUEUED,
		    .task = "t",
		    .task_len = 1,
		    .data = buf,
		    .data_len = (uint32_t)len};
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern(id, i);
	return r;
}

static nv_persister *
mk_persister(nv_store *s, nv_fsync_policy pol, uint32_t interval,
	     uint32_t batch)
{
	nv_persister *p = NULL;
	nv_persister_conf c = {
	    .fsync = pol, .interval_ms = interval, .max_batch = batch};
	assert_int_equal(nv__persister_create(&p, s, &c), 0);
	return p;
}

/* ---------------------------------------------------------------- threads */

struct prod {
	nv_persister *p;
	struct memstore *m; /* NULL with a real store */
	nv_fsync_policy pol;
	unsigned idx;
	uint64_t n;	  /* records to submit */
	uint64_t flushed; /* records covered by a flush that returned */
	uint64_t flushes;
	uint64_t last_seq;
	int err;
};

static void *
producer(void *arg)
{
	struct prod *t = arg;
	uint8_t buf[64];
	for (uint64_t i = 0; i < t->n; i++) {
		uint64_t id = (uint64_t)t->idx << 32 | i, seq;
		nv_rec r = rec_for(id, buf, (size_t)(i % 48));
		int rc = nv__persister_submit(t->p, &r, &seq);
		if (rc != 0) {
			t->err = rc;
			return NULL;
		}
		if (seq <= t->last_seq)
			t->err = NV_EINVAL; /* seqs of one thread must rise */
		t->last_seq = seq;
		if (i % 211 == 210 || i + 1 == t->n) {
			rc = nv__persister_flush(t->p, 30000);
			if (rc != 0) {
				t->err = rc;
				return NULL;
			}
			t->flushes++;
			t->flushed = i + 1;
			/* Durable means synced, or written for OFF. */
			if (t->m && ms_get(t->m, t->pol == NV_FSYNC_OFF
						     ? &t->m->last_seq
						     : &t->m->synced) < seq)
				t->err = NV_EIO;
		}
	}
	return NULL;
}

static void
run_producers(nv_persister *p, struct memstore *m, nv_fsync_policy pol,
	      unsigned nthreads, uint64_t per, struct prod *t)
{
	pthread_t th[16];
	for (unsigned i = 0; i < nthreads; i++) {
		t[i] = (struct prod){
		    .p = p, .m = m, .pol = pol, .idx = i + 1, .n = per};
		pthread_create(&th[i], NULL, producer, &t[i]);
	}
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	for (unsigned i = 0; i < nthreads; i++)
		assert_int_equal(t[i].err, 0);
}

/* ---------------------------------------------------------------- tests */

static void
concurrent_case(nv_fsync_policy pol, uint32_t interval)
{
	const unsigned nt = 4;
	uint64_t per = nv_test_scaled(20000);
	struct memstore *m = ms_new(1000);
	nv_persister *p = mk_persister(&m->base, pol, interval, 256);
	struct prod t[4];

	assert_int_equal(nv__persister_start(p), 0);
	run_producers(p, m, pol, nt, per, t);
	assert_int_equal(nv__persister_flush(p, 10000), 0);
	assert_int_equal(nv__persister_stop(p), 0);
	assert_int_equal(m->records, nt * per);
	assert_int_equal(m->last_seq, 1000 + nt * per); /* contiguous */
	assert_int_equal(m->bad, 0);
	assert_true(m->max_batch <= 256);
	if (pol == NV_FSYNC_OFF)
		assert_int_equal(m->syncs, 0);
	else
		assert_int_equal(m->synced, m->last_seq);
	if (pol == NV_FSYNC_ALWAYS)
		assert_true(m->syncs >= m->writes);
	print_message("policy %d: %llu records in %llu writes, %llu syncs\n",
		      (int)pol, (unsigned long long)m->records,
		      (unsigned long long)m->writes,
		      (unsigned long long)m->syncs);
	nv__persister_destroy(p);
	assert_true(m->closed);
	ms_free(m);
}

static void
test_persister_concurrent_batch(void **state)
{
	concurrent_case(NV_FSYNC_BATCH, 2);
}

static void
test_persister_concurrent_always(void **state)
{
	concurrent_case(NV_FSYNC_ALWAYS, 0);
}

static void
test_persister_concurrent_off(void **state)
{
	concurrent_case(NV_FSYNC_OFF, 0);
}

static void
test_persister_stop_drains_everything(void **state)
{
	struct memstore *m = ms_new(0);
	nv_persister *p = mk_persister(&m->base, NV_FSYNC_BATCH, 50, 0);
	uint64_t n = nv_test_scaled(10000), seq = 0;
	uint8_t buf[16];

	assert_int_equal(nv__persister_start(p), 0);
	for (uint64_t i = 1; i <= n; i++) {
		nv_rec r = rec_for(i, buf, sizeof(buf));
		assert_int_equal(nv__persister_submit(p, &r, &seq), 0);
		assert_int_equal(seq, i);
	}
	assert_int_equal(nv__persister_stop(p), 0);
	assert_int_equal(m->records, n);
	assert_int_equal(m->synced, n);
	assert_int_equal(m->bad, 0);
	{
		nv_rec r = rec_for(1, buf, 4);
		assert_int_equal(nv__persister_submit(p, &r, NULL),
				 NV_ESTOPPED);
	}
	assert_int_equal(nv__persister_flush(p, 100), 0);
	nv__persister_destroy(p);
	ms_free(m);
}

static void
test_persister_bad_args(void **state)
{
	struct memstore *m = ms_new(0);
	nv_persister *p = NULL;
	nv_persister_conf c = {.fsync = (nv_fsync_policy)9};
	nv_rec bad = {.type = 0};

	assert_int_equal(nv__persister_create(&p, &m->base, &c), NV_EINVAL);
	assert_int_equal(nv__persister_create(&p, NULL, &c), NV_EINVAL);
	p = mk_persister(&m->base, NV_FSYNC_BATCH, 1, 0);
	assert_int_equal(nv__persister_submit(p, &bad, NULL), NV_EINVAL);
	assert_int_equal(nv__persister_submit(p, NULL, NULL), NV_EINVAL);
	assert_ptr_equal(nv__persister_store(p), &m->base);
	assert_int_equal(nv__persister_error(p), 0);
	nv__persister_destroy(p); /* never started: fine */
	ms_free(m);
}

static void
test_persister_flush_timeout(void **state)
{
	struct memstore *m = ms_new(0);
	nv_persister *p = mk_persister(&m->base, NV_FSYNC_ALWAYS, 0, 0);
	uint8_t buf[8];
	nv_rec r = rec_for(1, buf, sizeof(buf));

	/* Nothing submitted: nothing to wait for. */
	assert_int_equal(nv__persister_flush(p, 0), 0);
	/* Not started: the record cannot become durable. */
	assert_int_equal(nv__persister_submit(p, &r, NULL), 0);
	assert_int_equal(nv__persister_flush(p, 0), NV_ETIMEDOUT);
	assert_int_equal(nv__persister_flush(p, 30), NV_ETIMEDOUT);
	/* A sync that hangs: flush times out, then completes when the
	 * disk answers. */
	pthread_mutex_lock(&m->mu);
	m->block_sync = true;
	pthread_mutex_unlock(&m->mu);
	assert_int_equal(nv__persister_start(p), 0);
	pthread_mutex_lock(&m->mu);
	while (m->in_sync == 0)
		pthread_cond_wait(&m->cv, &m->mu);
	pthread_mutex_unlock(&m->mu);
	assert_int_equal(nv__persister_flush(p, 30), NV_ETIMEDOUT);
	pthread_mutex_lock(&m->mu);
	m->block_sync = false;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
	assert_int_equal(nv__persister_flush(p, 10000), 0);
	assert_int_equal(ms_get(m, &m->synced), 1);
	nv__persister_destroy(p);
	ms_free(m);
}

static void
failure_case(bool in_write)
{
	struct memstore *m = ms_new(0);
	nv_persister *p = mk_persister(&m->base, NV_FSYNC_BATCH, 1, 0);
	uint8_t buf[8];
	nv_rec r = rec_for(1, buf, sizeof(buf));

	assert_int_equal(nv__persister_start(p), 0);
	assert_int_equal(nv__persister_submit(p, &r, NULL), 0);
	assert_int_equal(nv__persister_flush(p, 10000), 0);
	pthread_mutex_lock(&m->mu);
	if (in_write)
		m->fail_write = 1;
	else
		m->fail_sync = 1;
	pthread_mutex_unlock(&m->mu);
	r = rec_for(2, buf, sizeof(buf));
	assert_int_equal(nv__persister_submit(p, &r, NULL), 0);
	/* Never a false "durable": the flush fails. */
	assert_int_equal(nv__persister_flush(p, 10000), NV_EIO);
	assert_int_equal(nv__persister_error(p), NV_EIO);
	assert_int_equal(nv__persister_submit(p, &r, NULL), NV_EIO);
	assert_int_equal(nv__persister_flush(p, 10000), NV_EIO);
	assert_int_equal(nv__persister_stop(p), NV_EIO);
	nv__persister_destroy(p);
	ms_free(m);
}

static void
test_persister_write_failure_eio(void **state)
{
	nv__log_set_level(-1);
	failure_case(true);
	nv__log_set_level(NV__LOG_WARN);
}

static void
test_persister_sync_failure_eio(void **state)
{
	nv__log_set_level(-1);
	failure_case(false);
	nv__log_set_level(NV__LOG_WARN);
}

static double
cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void
test_persister_idle_thread_sleeps(void **state)
{
	struct memstore *m = ms_new(0);
	nv_persister *p = mk_persister(&m->base, NV_FSYNC_BATCH, 1, 0);
	uint8_t buf[8];
	nv_rec r = rec_for(1, buf, sizeof(buf));
	struct timespec ts = {0, 300 * 1000000L};
	double cpu;
	uint64_t syncs;

	assert_int_equal(nv__persister_start(p), 0);
	assert_int_equal(nv__persister_submit(p, &r, NULL), 0);
	assert_int_equal(nv__persister_flush(p, 10000), 0);
	syncs = ms_get(m, &m->syncs);
	cpu = cpu_seconds();
	nanosleep(&ts, NULL);
	/* A polling thread would burn the whole 300 ms. */
	assert_true(cpu_seconds() - cpu < 0.1);
	/* And it did not sync with nothing to sync. */
	assert_int_equal(ms_get(m, &m->syncs), syncs);
	nv__persister_destroy(p);
	ms_free(m);
}

/* ---------------------------------------------------------------- file */

struct found {
	uint64_t n, bad, last_seq;
	uint64_t *max_i; /* per thread: highest index seen + 1 */
	uint8_t *seen;	 /* per thread x index */
	uint64_t per;
};

static int
found_cb(const nv_rec *r, void *arg)
{
	struct found *f = arg;
	uint64_t t = r->id >> 32, i = r->id & 0xffffffffu;
	const uint8_t *d = r->data;
	if (r->seq <= f->last_seq || t < 1 || t > 4 || i >= f->per ||
	    r->data_len != i % 48 || f->seen[(t - 1) * f->per + i]) {
		f->bad++;
		return 0;
	}
	for (uint32_t k = 0; k < r->data_len; k++)
		if (d[k] != pattern(r->id, k))
			f->bad++;
	f->seen[(t - 1) * f->per + i] = 1;
	f->last_seq = r->seq;
	f->n++;
	return 0;
}

/* End to end: four threads submit to a file store and flush; then the
 * disk refuses every further sync, more records are written but never
 * synced, and the power fails. Every record whose flush returned must
 * come back, exactly once, and nothing else that was not submitted. */
static void
file_powercut_case(nv_fsync_policy pol)
{
	char dir[256];
	nv_io_fault f;
	nv_store_conf conf = {
	    .fsync = pol, .segment_bytes = 256 << 10, .compact_bytes = 1 << 20};
	nv_store *s;
	nv_persister *p;
	struct prod t[4];
	uint64_t per = nv_test_scaled(5000);
	struct found fd = {.per = per};
	uint8_t buf[64];

	nv_test_tmpdir(dir, sizeof(dir), "pers-power");
	conf.path = dir;
	nv__io_fault_init(&f, NULL);
	conf.io = &f.ops;
	assert_int_equal(nv__file_store_ops.open(&s, &conf), 0);
	p = mk_persister(s, pol, 2, 512);
	assert_int_equal(nv__persister_start(p), 0);
	run_producers(p, NULL, pol, 4, per, t);
	/* The disk stops syncing; what follows is written, never durable. */
	nv__log_set_level(-1);
	nv__io_fault_arm(&f, NV_IO_SYNC, 1, EIO, NV_IO_FAULT_STICKY);
	for (uint64_t i = 0; i < 50; i++) {
		nv_rec r = rec_for((uint64_t)1 << 32 | (per + i), buf, 8);
		nv__persister_submit(p, &r, NULL);
	}
	assert_int_equal(nv__persister_flush(p, 10000), NV_EIO);
	assert_int_equal(nv__persister_stop(p), NV_EIO);
	nv__persister_destroy(p); /* closes the store */
	nv__log_set_level(NV__LOG_WARN);
	print_message("power cut dropped %llu unsynced bytes\n",
		      (unsigned long long)nv__io_fault_powercut(&f));

	conf.io = NULL;
	assert_int_equal(nv__file_store_ops.open(&s, &conf), 0);
	fd.seen = calloc(4 * per, 1);
	assert_int_equal(s->ops->replay(s, found_cb, &fd), 0);
	assert_int_equal(fd.bad, 0);
	for (unsigned i = 0; i < 4; i++)
		for (uint64_t k = 0; k < t[i].flushed; k++)
			if (!fd.seen[i * per + k])
				fail_msg("thread %u record %llu was flushed "
					 "but is lost",
					 i + 1, (unsigned long long)k);
	s->ops->close(s);
	free(fd.seen);
	nv_test_rmrf(dir);
}

static void
test_persister_file_flush_is_durable_batch(void **state)
{
	file_powercut_case(NV_FSYNC_BATCH);
}

static void
test_persister_file_flush_is_durable_always(void **state)
{
	file_powercut_case(NV_FSYNC_ALWAYS);
}

/* The persister continues the store's seqs after a restart. */
static void
test_persister_seq_continues_after_reopen(void **state)
{
	char dir[256];
	nv_store_conf conf = {.fsync = NV_FSYNC_BATCH};
	nv_store *s;
	nv_persister *p;
	uint8_t buf[8];
	uint64_t seq = 0, first = 0;

	nv_test_tmpdir(dir, sizeof(dir), "pers-seq");
	conf.path = dir;
	for (int round = 0; round < 3; round++) {
		assert_int_equal(nv__file_store_ops.open(&s, &conf), 0);
		p = mk_persister(s, NV_FSYNC_BATCH, 1, 0);
		assert_int_equal(nv__persister_start(p), 0);
		for (uint64_t i = 0; i < 100; i++) {
			nv_rec r = rec_for(round * 100 + i + 1, buf, 8);
			assert_int_equal(nv__persister_submit(p, &r, &seq), 0);
			if (i == 0)
				first = seq;
		}
		assert_int_equal(first, (uint64_t)round * 100 + 1);
		assert_int_equal(nv__persister_stop(p), 0);
		nv__persister_destroy(p);
	}
	assert_int_equal(seq, 300);
	nv_test_rmrf(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_persister_bad_args),
	    cmocka_unit_test(test_persister_concurrent_batch),
	    cmocka_unit_test(test_persister_concurrent_always),
	    cmocka_unit_test(test_persister_concurrent_off),
	    cmocka_unit_test(test_persister_stop_drains_everything),
	    cmocka_unit_test(test_persister_flush_timeout),
	    cmocka_unit_test(test_persister_write_failure_eio),
	    cmocka_unit_test(test_persister_sync_failure_eio),
	    cmocka_unit_test(test_persister_idle_thread_sleeps),
	    cmocka_unit_test(test_persister_file_flush_is_durable_batch),
	    cmocka_unit_test(test_persister_file_flush_is_durable_always),
	    cmocka_unit_test(test_persister_seq_continues_after_reopen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
