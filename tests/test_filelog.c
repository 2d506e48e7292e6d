/* ctest: labels=unit timeout=300 */
/*
 * test_filelog.c - the file store: round trips, recovery of torn tails at
 * every byte, bit flips, corruption of older segments (quarantine),
 * rotation and compaction against a reference fold computed here, I/O
 * failures at every call through the fault layer, ENOSPC, fsync failure,
 * locking, format versions.
 *
 * The reference fold (model_fold) is written from the rules in
 * docs/file-store.md, independently of filelog_index.c.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "persistence/codec.h"
#include "persistence/io.h"
#include "persistence/store.h"

/* ---------------------------------------------------------------- rng */

static uint64_t rng_state;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

/* ---------------------------------------------------------------- model */

/* A deep copy of a record. */
struct mrec {
	nv_rec r;
	uint8_t *mem;
};

struct model {
	struct mrec *v;
	size_t n, cap;
	uint64_t seq; /* last seq handed out */
};

static void
mrec_copy(struct mrec *m, const nv_rec *r)
{
	size_t n = (size_t)r->task_len + r->data_len + r->aux_len;
	uint8_t *p = malloc(n ? n : 1);
	assert_non_null(p);
	m->r = *r;
	m->mem = p;
	if (r->task_len) {
		memcpy(p, r->task, r->task_len);
		m->r.task = (const char *)p;
		p += r->task_len;
	}
	if (r->data_len) {
		memcpy(p, r->data, r->data_len);
		m->r.data = p;
		p += r->data_len;
	}
	if (r->aux_len) {
		memcpy(p, r->aux, r->aux_len);
		m->r.aux = p;
	}
}

static void
model_add(struct model *m, const nv_rec *r)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 256;
		m->v = realloc(m->v, m->cap * sizeof(*m->v));
		assert_non_null(m->v);
	}
	mrec_copy(&m->v[m->n++], r);
}

static void
model_free(struct model *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].mem);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

static bool
is_sched_type(uint8_t t)
{
	return t >= NV_REC_SCHED_ADDED;
}

static bool
is_final_type(uint8_t t)
{
	return t == NV_REC_JOB_SUCCEEDED || t == NV_REC_JOB_FAILED;
}

/* The fold of m (rules in docs/file-store.md), in seq order, into out
 * (shallow copies of m's records, ENQUEUED attempts raised). Assumes the
 * workloads of this file: nothing follows a final record of a job. */
static size_t
model_fold(const struct model *m, uint64_t retain, nv_rec *out)
{
	size_t n = 0, nfin = 0;
	uint64_t *fin = calloc(m->n + 1, sizeof(*fin));
	bool *keep = calloc(m->n + 1, sizeof(*keep));
	uint32_t *att = calloc(m->n + 1, sizeof(*att));

	for (size_t i = 0; i < m->n; i++) {
		const nv_rec *r = &m->v[i].r;
		bool later_enq = false, later_cancel = false;
		/* Is r the live record of its kind for its id? */
		if (r->type == NV_REC_JOB_STARTED ||
		    r->type == NV_REC_SCHED_CANCELLED)
			continue;
		for (size_t j = i + 1; j < m->n; j++) {
			const nv_rec *q = &m->v[j].r;
			if (q->id != r->id ||
			    is_sched_type(q->type) != is_sched_type(r->type))
				continue;
			if (q->type == NV_REC_JOB_ENQUEUED ||
			    q->type == NV_REC_SCHED_ADDED)
				later_enq = true;
			if (q->type == NV_REC_SCHED_CANCELLED)
				later_cancel = true;
			if (r->type != NV_REC_JOB_ENQUEUED &&
			    r->type != NV_REC_SCHED_ADDED && q->type == r->type)
				later_enq = true; /* superseded outcome */
			if ((r->type == NV_REC_JOB_RETRY ||
			     is_final_type(r->type)) &&
			    (is_final_type(q->type) ||
			     q->type == NV_REC_JOB_RETRY))
				later_enq = true;
		}
		if (later_enq || later_cancel)
			continue;
		/* An outcome or FIRED needs its ENQUEUED/ADDED before it. */
		if (r->type != NV_REC_JOB_ENQUEUED &&
		    r->type != NV_REC_SCHED_ADDED) {
			bool has = false;
			for (size_t j = 0; j < i; j++)
				if (m->v[j].r.id == r->id &&
				    m->v[j].r.type ==
					(is_sched_type(r->type)
					     ? NV_REC_SCHED_ADDED
					     : NV_REC_JOB_ENQUEUED))
					has = true;
			if (!has)
				continue;
		}
		keep[i] = true;
		if (r->type == NV_REC_JOB_ENQUEUED) {
			uint32_t a = r->attempt;
			for (size_t j = i + 1; j < m->n; j++)
				if (m->v[j].r.id == r->id &&
				    !is_sched_type(m->v[j].r.type) &&
				    m->v[j].r.attempt > a)
					a = m->v[j].r.attempt;
			att[i] = a;
		}
		if (is_final_type(r->type))
			fin[nfin++] = r->id;
	}
	/* Retention: fin[] is in finish order; drop the oldest. */
	if (retain && nfin > retain) {
		for (size_t k = 0; k < nfin - retain; k++)
			for (size_t i = 0; i < m->n; i++)
				if (m->v[i].r.id == fin[k] &&
				    !is_sched_type(m->v[i].r.type))
					keep[i] = false;
	}
	for (size_t i = 0; i < m->n; i++) {
		if (!keep[i])
			continue;
		out[n] = m->v[i].r;
		if (out[n].type == NV_REC_JOB_ENQUEUED)
			out[n].attempt = att[i];
		n++;
	}
	free(fin);
	free(keep);
	free(att);
	return n;
}

/* ---------------------------------------------------------------- store */

static nv_fsync_policy g_fsync = NV_FSYNC_ALWAYS;

struct collect {
	struct model got;
};

static int
collect_cb(const nv_rec *r, void *arg)
{
	model_add(&((struct collect *)arg)->got, r);
	return 0;
}

static void
assert_same_rec(const nv_rec *a, const nv_rec *b)
{
	assert_int_equal(a->seq, b->seq);
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->id, b->id);
	assert_int_equal(a->attempt, b->attempt);
	assert_int_equal(a->time_ms, b->time_ms);
	assert_int_equal(a->task_len, b->task_len);
	assert_int_equal(a->data_len, b->data_len);
	assert_int_equal(a->aux_len, b->aux_len);
	if (a->task_len)
		assert_memory_equal(a->task, b->task, a->task_len);
	if (a->data_len)
		assert_memory_equal(a->data, b->data, a->data_len);
	if (a->aux_len)
		assert_memory_equal(a->aux, b->aux, a->aux_len);
}

/* replay(s) must equal the fold of m exactly. */
static void
assert_fold(nv_store *s, const struct model *m, uint64_t retain)
{
	nv_rec *want = calloc(m->n + 1, sizeof(*want));
	size_t n = model_fold(m, retain, want);
	struct collect c = {{0}};

	assert_int_equal(s->ops->replay(s, collect_cb, &c), 0);
	if (c.got.n != n)
		fail_msg("replay gave %zu records, the fold has %zu", c.got.n,
			 n);
	for (size_t i = 0; i < n; i++)
		assert_same_rec(&c.got.v[i].r, &want[i]);
	model_free(&c.got);
	free(want);
}

static nv_store *
store_open(const char *dir, size_t seg, size_t compact, uint64_t retain,
	   const nv_io_ops *io, int *rc_out)
{
	nv_store_conf conf = {.path = dir,
			      .fsync = g_fsync,
			      .segment_bytes = seg,
			      .compact_bytes = compact,
			      .io = io,
			      .retain_finished = retain};
	nv_store *s = NULL;
	int rc = nv__file_store_ops.open(&s, &conf);
	if (rc_out)
		*rc_out = rc;
	else
		assert_int_equal(rc, 0);
	return rc == 0 ? s : NULL;
}

static nv_store_stats
stats_of(nv_store *s)
{
	nv_store_stats st;
	memset(&st, 0xab, sizeof(st));
	s->ops->stats(s, &st);
	return st;
}

/* A record with payload bytes derived from its id and type, so that a
 * reader can tell a genuine record from garbage. */
static uint8_t payload_slots[16][4096];
static unsigned payload_next;

static nv_rec
mk(struct model *m, uint8_t type, uint64_t id, uint32_t attempt, size_t dlen)
{
	nv_rec r = {.seq = ++m->seq,
		    .id = id,
		    .type = type,
		    .attempt = attempt,
		    .time_ms = (int64_t)(id * 1000 + type)};
	uint8_t *payload_buf = payload_slots[payload_next++ % 16];
	assert_true(dlen <= sizeof(payload_slots[0]));
	for (size_t i = 0; i < dlen; i++)
		payload_buf[i] = (uint8_t)(id * 31 + type * 7 + i);
	if (type == NV_REC_JOB_ENQUEUED || type == NV_REC_SCHED_ADDED) {
		r.task = "task.name";
		r.task_len = 9;
	}
	if (type == NV_REC_SCHED_ADDED) {
		r.aux = "*/5 * * * *";
		r.aux_len = 11;
	}
	r.data = dlen ? payload_buf : NULL;
	r.data_len = (uint32_t)dlen;
	return r;
}

/* Writes r into s and the model (one record per batch). */
static void
put(nv_store *s, struct model *m, nv_rec r)
{
	assert_int_equal(s->ops->write(s, &r, 1), 0);
	model_add(m, &r);
}

/* ---------------------------------------------------------------- files */

static char *
only_segment(const char *dir, char *buf, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "seg-", 4) == 0 &&
		    strlen(de->d_name) == 24) {
			snprintf(buf, len, "%s/%s", dir, de->d_name);
			n++;
		}
	closedir(d);
	assert_int_equal(n, 1);
	return buf;
}

/* Counts files whose name ends with suffix; total size of seg-*.log. */
static int
count_suffix(const char *dir, const char *suffix, uint64_t *seg_bytes)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	size_t sl = strlen(suffix);
	if (seg_bytes)
		*seg_bytes = 0;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		char p[4200];
		struct stat st;
		if (l >= sl && strcmp(de->d_name + l - sl, suffix) == 0)
			n++;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (seg_bytes && l == 24 &&
		    strncmp(de->d_name, "seg-", 4) == 0 && stat(p, &st) == 0)
			*seg_bytes += (uint64_t)st.st_size;
	}
	closedir(d);
	return n;
}

static uint8_t *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b;
	long n;
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc((size_t)n + 1);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void
write_file(const char *path, const uint8_t *b, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, len, f), len);
	fclose(f);
}

static void
flip_bit(const char *path, uint64_t bit)
{
	size_t len;
	uint8_t *b = read_file(path, &len);
	assert_true(bit / 8 < len);
	b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	write_file(path, b, len);
	free(b);
}

/* Offsets of the records of a segment image (from its header on). */
static size_t
record_offsets(const uint8_t *b, size_t len, size_t *off, size_t max)
{
	size_t n = 0, o = NV__SEG_HDR_LEN;
	while (o + NV__REC_HDR_LEN <= len && n < max) {
		size_t sz = nv__rec_peek_size(b + o);
		assert_true(sz > 0 && o + sz <= len);
		off[n++] = o;
		o += sz;
	}
	off[n] = o;
	return n;
}

/* A model holding the first k records of m. */
static void
model_prefix(const struct model *m, size_t k, struct model *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < k; i++)
		model_add(out, &m->v[i].r);
	out->seq = k ? m->v[k - 1].r.seq : 0;
}

/* ---------------------------------------------------------------- tests */

static void
test_filelog_roundtrip_and_reopen(void **state)
{
	char dir[256];
	struct model m = {0};
	nv_store *s;
	nv_store_stats st;
	uint64_t job, sched;
	nv_rec batch[10];

	nv_test_tmpdir(dir, sizeof(dir), "fl-rt");
	s = store_open(dir, 0, 0, 0, NULL, NULL);
	assert_string_equal(s->ops->name, "file");
	for (uint64_t id = 1; id <= 50; id++)
		put(s, &m, mk(&m, NV_REC_JOB_ENQUEUED, id, 0, id * 3));
	for (uint64_t id = 1; id <= 40; id++)
		put(s, &m, mk(&m, NV_REC_JOB_STARTED, id, 1, 0));
	for (uint64_t id = 1; id <= 20; id++)
		put(s, &m, mk(&m, NV_REC_JOB_SUCCEEDED, id, 1, id));
	for (uint64_t id = 21; id <= 30; id++)
		put(s, &m, mk(&m, NV_REC_JOB_RETRY, id, 1, 5));
	for (uint64_t id = 31; id <= 35; id++)
		put(s, &m, mk(&m, NV_REC_JOB_FAILED, id, 1, 7));
	/* Job 5 enqueued again: it starts afresh. */
	put(s, &m, mk(&m, NV_REC_JOB_ENQUEUED, 5, 2, 4));
	/* Schedules: added, fired twice, one cancelled. */
	for (uint64_t id = 1; id <= 5; id++)
		put(s, &m, mk(&m, NV_REC_SCHED_ADDED, id, 0, 10));
	for (uint64_t id = 1; id <= 5; id++)
		put(s, &m, mk(&m, NV_REC_SCHED_FIRED, id, 0, 0));
	put(s, &m, mk(&m, NV_REC_SCHED_FIRED, 3, 0, 0));
	put(s, &m, mk(&m, NV_REC_SCHED_CANCELLED, 2, 0, 0));
	/* Records about unknown ids are dead on arrival. */
	put(s, &m, mk(&m, NV_REC_JOB_SUCCEEDED, 999, 1, 0));
	/* One batch of ten records in one write. */
	for (int i = 0; i < 10; i++) {
		batch[i] = mk(&m, NV_REC_JOB_ENQUEUED, 60 + (uint64_t)i, 0, 50);
		model_add(&m, &batch[i]);
	}
	assert_int_equal(s->ops->write(s, batch, 10), 0);
	assert_int_equal(s->ops->sync(s), 0);
	assert_fold(s, &m, 0);
	st = stats_of(s);
	assert_int_equal(st.records, m.n);
	assert_int_equal(st.batches, m.n - 9);
	assert_int_equal(st.last_seq, m.seq);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.truncated_bytes, 0);
	assert_int_equal(st.quarantined, 0);
	s->ops->max_ids(s, &job, &sched);
	assert_int_equal(job, 999);
	assert_int_equal(sched, 5);
	/* Bad input is refused without failing the store. */
	{
		nv_rec old = mk(&m, NV_REC_JOB_STARTED, 1, 1, 0);
		nv_rec bad = mk(&m, 0, 1, 1, 0);
		old.seq = 3; /* not above the last seq */
		assert_int_equal(s->ops->write(s, &old, 1), NV_EINVAL);
		assert_int_equal(s->ops->write(s, &bad, 1), NV_EINVAL);
		m.seq -= 2;
		assert_int_equal(stats_of(s).failed, 0);
	}
	s->ops->close(s);

	s = store_open(dir, 0, 0, 0, NULL, NULL);
	assert_fold(s, &m, 0);
	st = stats_of(s);
	assert_int_equal(st.last_seq, m.seq);
	assert_int_equal(st.truncated_bytes, 0);
	assert_int_equal(st.quarantined, 0);
	s->ops->max_ids(s, &job, &sched);
	assert_int_equal(job, 999);
	assert_int_equal(sched, 5);
	s->ops->close(s);
	model_free(&m);
	nv_test_rmrf(dir);
}

static void
test_filelog_bad_open_args(void **state)
{
	nv_store *s = NULL;
	nv_store_conf conf = {0};
	char dir[256], other[300];
	assert_int_equal(nv__file_store_ops.open(&s, NULL), NV_EINVAL);
	assert_int_equal(nv__file_store_ops.open(&s, &conf), NV_EINVAL);
	conf.path = "";
	assert_int_equal(nv__file_store_ops.open(&s, &conf), NV_EINVAL);
	/* A path below a regular file cannot be created. */
	nv_test_tmpdir(dir, sizeof(dir), "fl-args");
	snprintf(other, sizeof(other), "%s/file", dir);
	write_file(other, (const uint8_t *)"x", 1);
	snprintf(other, sizeof(other), "%s/file/store", dir);
	conf.path = other;
	assert_int_equal(nv__file_store_ops.open(&s, &conf), NV_EIO);
	assert_null(s);
	nv_test_rmrf(dir);
}

static void
test_filelog_lock_excludes_second_open(void **state)
{
	char dir[256];
	nv_store *a, *b;
	int rc;
	nv_test_tmpdir(dir, sizeof(dir), "fl-lock");
	a = store_open(dir, 0, 0, 0, NULL, NULL);
	b = store_open(dir, 0, 0, 0, NULL, &rc);
	assert_null(b);
	assert_int_equal(rc, NV_EBUSY);
	a->ops->close(a);
	b = store_open(dir, 0, 0, 0, NULL, NULL);
	b->ops->close(b);
	nv_test_rmrf(dir);
}

static void
test_filelog_torn_tail_every_offset(void **state)
{
	char src[256], dir[256], seg[512], path[600];
	struct model m = {0};
	size_t off[64], n, len;
	uint8_t *img;
	nv_store *s;

	g_fsync = NV_FSYNC_OFF; /* hundreds of opens: skip the fsyncs */
	nv__log_set_level(-1);	/* and their warnings */
	nv_test_tmpdir(src, sizeof(src), "fl-torn");
	s = store_open(src, 0, 0, 0, NULL, NULL);
	for (uint64_t id = 1; id <= 30; id++)
		put(s, &m, mk(&m, NV_REC_JOB_ENQUEUED, id, 0, (id * 37) % 160));
	s->ops->close(s);
	img = read_file(only_segment(src, seg, sizeof(seg)), &len);
	n = record_offsets(img, len, off, 63);
	assert_int_equal(n, 30);
	assert_int_equal(off[n], len);

	nv_test_tmpdir(dir, sizeof(dir), "fl-torn-cut");
	snprintf(path, sizeof(path), "%s/%s", dir, strrchr(seg, '/') + 1);
	for (size_t k = n - 3; k < n; k++) {
		struct model want;
		model_prefix(&m, k, &want);
		for (size_t cut = off[k]; cut < off[k + 1]; cut++) {
			nv_store_stats st;
			write_file(path, img, cut);
			s = store_open(dir, 0, 0, 0, NULL, NULL);
			st = stats_of(s);
			assert_int_equal(st.truncated_bytes, cut - off[k]);
			assert_int_equal(st.quarantined, 0);
			assert_int_equal(st.last_seq, k);
			assert_fold(s, &want, 0);
			s->ops->close(s);
			/* The cut is durable: a second open finds nothing. */
			s = store_open(dir, 0, 0, 0, NULL, NULL);
			assert_int_equal(stats_of(s).truncated_bytes, 0);
			assert_fold(s, &want, 0);
			/* And the log goes on after the cut. */
			if (cut == off[k] + 1) {
				struct model more;
				model_prefix(&m, k, &more);
				put(s, &more,
				    mk(&more, NV_REC_JOB_ENQUEUED, 77, 0, 9));
				assert_fold(s, &more, 0);
				model_free(&more);
			}
			s->ops->close(s);
		}
		model_free(&want);
	}
	assert_int_equal(count_suffix(dir, ".corrupt", NULL), 0);
	free(img);
	model_free(&m);
	nv_test_rmrf(src);
	nv_test_rmrf(dir);
	g_fsync = NV_FSYNC_ALWAYS;
}

static void
test_filelog_bitflips_detected(void **state)
{
	char src[256], dir[256], seg[512], path[600];
	struct model m = {0};
	size_t off[16], n, len;
	uint8_t *img;
	nv_store *s;
	uint64_t trials = nv_test_scaled(60);

	g_fsync = NV_FSYNC_OFF;
	nv__log_set_level(-1);
	nv_test_tmpdir(src, sizeof(src), "fl-flip");
	s = store_open(src, 0, 0, 0, NULL, NULL);
	for (uint64_t id = 1; id <= 10; id++)
		put(s, &m, mk(&m, NV_REC_JOB_ENQUEUED, id, 0, 40));
	s->ops->close(s);
	img = read_file(only_segment(src, seg, sizeof(seg)), &len);
	n = record_offsets(img, len, off, 15);
	assert_int_equal(n, 10);

	rng_state = 42;
	for (uint64_t t = 0; t < trials; t++) {
		/* Odd trials hit the last record (a torn tail), even ones the
		 * middle record (corruption: records after it survive). */
		size_t k = t % 2 ? 9 : 5;
		uint64_t bit = off[k] * 8 + rng() % ((off[k + 1] - off[k]) * 8);
		struct model want = {0};
		nv_store_stats st;

		nv_test_tmpdir(dir, sizeof(dir), "fl-flip-t");
		snprintf(path, sizeof(path), "%s/%s", dir,
			 strrchr(seg, '/') + 1);
		write_file(path, img, len);
		flip_bit(path, bit);
		for (size_t i = 0; i < n; i++)
			if (i != k)
				model_add(&want, &m.v[i].r);
		s = store_open(dir, 0, 0, 0, NULL, NULL);
		st = stats_of(s);
		assert_fold(s, &want, 0);
		if (k == 9) {
			assert_int_equal(st.truncated_bytes, off[10] - off[9]);
			assert_int_equal(st.quarantined, 0);
			assert_int_equal(count_suffix(dir, ".corrupt", NULL),
					 0);
		} else {
			assert_int_equal(st.truncated_bytes, 0);
			assert_int_equal(st.quarantined, 1);
			assert_int_equal(st.compactions, 1);
			assert_int_equal(count_suffix(dir, ".corrupt", NULL),
					 1);
		}
		s->ops->close(s);
		s = store_open(dir, 0, 0, 0, NULL, NULL);
		st = stats_of(s);
		assert_int_equal(st.truncated_bytes + st.quarantined, 0);
		assert_fold(s, &want, 0);
		s->ops->close(s);
		model_free(&want);
		nv_test_rmrf(dir);
	}
	free(img);
	model_free(&m);
	nv_test_rmrf(src);
	g_fsync = NV_FSYNC_ALWAYS;
}

static void
test_filelog_corrupt_older_segment_quarantined(void **state)
{
	char dir[256], path[600];
	struct model m = {0}, want = {0};
	size_t off[64], len, n;
	uint8_t *img;
	nv_store *s;
	nv_store_stats st;

	nv_test_tmpdir(dir, sizeof(dir), "fl-old");
	s = store_open(dir, 2048, 1 << 30, 0, NULL, NULL);
	for (uint64_t id = 1; id <= 80; id++)
		put(s, &m, mk(&m, NV_REC_JOB_ENQUEUED, id, 0, 80));
	s->ops->close(s);
	assert_true(count_suffix(dir, ".log", NULL) >= 4);

	/* A bad record in the middle of segment 1. */
	snprintf(path, sizeof(path), "%s/seg-0000000000000001.log", dir);
	img = read_file(path, &len);
	n = record_offsets(img, len, off, 63);
	assert_true(n > 6);
	free(img);
	flip_bit(path, off[3] * 8 + 8 * 20 + 3);
	for (size_t i = 0; i < m.n; i++)
		if (i != 3)
			model_add(&want, &m.v[i].r);
	s = store_open(dir, 2048, 1 << 30, 0, NULL, NULL);
	st = stats_of(s);
	assert_int_equal(st.quarantined, 1);
	assert_int_equal(st.compactions, 1);
	assert_int_equal(st.truncated_bytes, 0);
	assert_fold(s, &want, 0);
	s->ops->close(s);
	assert_int_equal(count_suffix(dir, ".corrupt", NULL), 1);
	assert_int_equal(access(strcat(path, ".corrupt"), F_OK),
			 0); /* seg 1 kept */

	/* A bad header on a (now) older segment: its records still count. */
	s = store_open(dir, 2048, 1 << 30, 0, NULL, NULL);
	assert_int_equal(stats_of(s).quarantined, 0);
	for (uint64_t id = 81; id <= 120; id++) {
		nv_rec r = mk(&m, NV_REC_JOB_ENQUEUED, id, 0, 80);
		put(s, &m, r);
		model_add(&want, &r);
	}
	s->ops->close(s);
	{
		DIR *d = opendir(dir);
		struct dirent *de;
		char names[64][32];
		int k = 0;
		while ((de = readdir(d)) != NULL)
			if (strlen(de->d_name) == 24 &&
			    strncmp(de->d_name, "seg-", 4) == 0 && k < 64)
				strcpy(names[k++], de->d_name);
		closedir(d);
		qsort(names, (size_t)k, sizeof(names[0]),
		      (int (*)(const void *, const void *))strcmp);
		assert_true(k >= 3);
		snprintf(path, sizeof(path), "%s/%s", dir, names[1]);
		flip_bit(path, 20 * 8); /* the segment number */
	}
	s = store_open(dir, 2048, 1 << 30, 0, NULL, NULL);
	st = stats_of(s);
	assert_int_equal(st.quarantined, 1);
	assert_fold(s, &want, 0);
	s->ops->close(s);
	assert_int_equal(count_suffix(dir, ".corrupt", NULL), 2);
	s = store_open(dir, 2048, 1 << 30, 0, NULL, NULL);
	assert_int_equal(stats_of(s).quarantined, 0);
	assert_fold(s, &want, 0);
	s->ops->close(s);
	model_free(&m);
	model_free(&want);
	nv_test_rmrf(dir);
}

static void
test_filelog_newer_format_refused(void **state)
{
	char dir[256], path[600];
	uint8_t hdr[NV__SEG_HDR_LEN + 10];
	nv_seg_hdr h = {.segno = 1};
	size_t len;
	uint8_t *after;
	int rc;

	nv_test_tmpdir(dir, sizeof(dir), "fl-ver");
	nv__seg_hdr_encode(&h, hdr);
	nv__put_u32(hdr + 8, NV__SEG_VERSION + 1);
	memset(hdr + NV__SEG_HDR_LEN, 0x5a, 10);
	snprintf(path, sizeof(path), "%s/seg-0000000000000001.log", dir);
	write_file(path, hdr, sizeof(hdr));
	assert_null(store_open(dir, 0, 0, 0, NULL, &rc));
	assert_int_equal(rc, NV_ECORRUPT);
	after = read_file(path, &len);
	assert_int_equal(len, sizeof(hdr));
	assert_memory_equal(after, hdr, len);
	free(after);
	nv_test_rmrf(dir);
}

static void
test_filelog_torn_segment_creation(void **state)
{
	char dir[256], path[600];
	struct model m = {0};
	nv_store *s;

	nv_test_tmpdir(dir, sizeof(dir), "fl-newseg");
	s = store_open(dir, 0, 0, 0, NULL, NULL);
	for (uint64_t id = 1; id <= 5; id++)
		put(s, &m, mk(&m, NV_REC_JOB_ENQUEUED, id, 0, 10));
	s->ops->close(s);
	/* A crash right after creating segment 2: a few header bytes. */
	snprintf(path, sizeof(path), "%s/seg-0000000000000002.log", dir);
	write_file(path, (const uint8_t *)"NVL", 3);
	s = store_open(dir, 0, 0, 0, NULL, NULL);
	assert_int_equal(stats_of(s).truncated_bytes, 3);
	assert_int_equal(stats_of(s).quarantined, 0);
	assert_fold(s, &m, 0);
	put(s, &m, mk(&m, NV_REC_JOB_ENQUEUED, 6, 0, 10));
	s->ops->close(s);
	s = store_open(dir, 0, 0, 0, NULL, NULL);
	assert_fold(s, &m, 0);
	s->ops->close(s);
	model_free(&m);
	nv_test_rmrf(dir);
}

/* ---------------------------------------------------------------- workload */

/* A random but realistic stream of job and schedule events: jobs are
 * enqueued, started, retried, finished (nothing follows a final record),
 * some are left running; schedules are added, fired and cancelled. */
struct wl {
	struct model m;
	uint64_t next_job, next_sched;
	uint64_t job[64];
	uint32_t att[64];
	bool started[64];
	int njob;
	uint64_t sched[32];
	int nsched;
	unsigned fire_pct; /* share of extra SCHED_FIRED (dead data) */
};

static void
wl_init(struct wl *w, uint64_t seed)
{
	memset(w, 0, sizeof(*w));
	rng_state = seed;
}

/* Appends 1..max records to out (and to the model); returns how many. */
static size_t
wl_batch(struct wl *w, nv_rec *out, size_t max)
{
	size_t n = 1 + rng() % max;
	for (size_t i = 0; i < n; i++) {
		unsigned a = (unsigned)(rng() % 100);
		nv_rec r;
		if (w->nsched > 0 && rng() % 100 < w->fire_pct) {
			r = mk(&w->m, NV_REC_SCHED_FIRED,
			       w->sched[rng() % (uint64_t)w->nsched], 0, 20);
		} else if (a < 30 && w->njob < 64) {
			uint64_t id = ++w->next_job;
			r = mk(&w->m, NV_REC_JOB_ENQUEUED, id, 0, rng() % 120);
			w->job[w->njob] = id;
			w->att[w->njob] = 0;
			w->started[w->njob++] = false;
		} else if (a < 85 && w->njob > 0) {
			int j = (int)(rng() % (uint64_t)w->njob);
			uint64_t id = w->job[j];
			if (!w->started[j]) {
				r = mk(&w->m, NV_REC_JOB_STARTED, id,
				       ++w->att[j], 0);
				w->started[j] = true;
			} else if (rng() % 3 == 0) {
				r = mk(&w->m, NV_REC_JOB_RETRY, id, w->att[j],
				       rng() % 30);
				w->started[j] = false;
			} else {
				r = mk(&w->m,
				       rng() % 4 ? NV_REC_JOB_SUCCEEDED
						 : NV_REC_JOB_FAILED,
				       id, w->att[j], rng() % 60);
				w->job[j] = w->job[--w->njob];
				w->att[j] = w->att[w->njob];
				w->started[j] = w->started[w->njob];
			}
		} else if (a < 92 && w->nsched < 32) {
			uint64_t id = ++w->next_sched;
			r = mk(&w->m, NV_REC_SCHED_ADDED, id, 0, rng() % 40);
			w->sched[w->nsched++] = id;
		} else if (w->nsched > 0) {
			int j = (int)(rng() % (uint64_t)w->nsched);
			if (a < 97) {
				r = mk(&w->m, NV_REC_SCHED_FIRED, w->sched[j],
				       0, 0);
			} else {
				r = mk(&w->m, NV_REC_SCHED_CANCELLED,
				       w->sched[j], 0, 0);
				w->sched[j] = w->sched[--w->nsched];
			}
		} else {
			uint64_t id = ++w->next_job;
			r = mk(&w->m, NV_REC_JOB_ENQUEUED, id, 0, 8);
		}
		model_add(&w->m, &r);
		out[i] = r;
	}
	return n;
}

/* Bytes the fold takes on disk. */
static uint64_t
fold_bytes(const struct model *m, uint64_t retain)
{
	nv_rec *f = calloc(m->n + 1, sizeof(*f));
	size_t n = model_fold(m, retain, f);
	uint64_t b = 0;
	for (size_t i = 0; i < n; i++)
		b += nv__rec_size(&f[i]);
	free(f);
	return b;
}

static void
rotation_compaction_case(uint64_t retain)
{
	const size_t seg = 4096, compact = 8192;
	char dir[256];
	struct wl w;
	nv_rec batch[8];
	nv_store *s;
	uint64_t steps = nv_test_scaled(1500), job, sched;

	nv_test_tmpdir(dir, sizeof(dir), "fl-compact");
	wl_init(&w, 1234 + retain);
	if (retain == 0)
		w.fire_pct = 60; /* enough dead data to compact */
	g_fsync = NV_FSYNC_OFF;
	s = store_open(dir, seg, compact, retain, NULL, NULL);
	for (uint64_t t = 1; t <= steps; t++) {
		size_t n = wl_batch(&w, batch, 8);
		assert_int_equal(s->ops->write(s, batch, n), 0);
		assert_int_equal(s->ops->sync(s), 0);
		assert_int_equal(s->ops->maintain(s), 0);
		if (t % 250 == 0 || t == steps) {
			uint64_t disk, live = fold_bytes(&w.m, retain);
			assert_fold(s, &w.m, retain);
			count_suffix(dir, ".log", &disk);
			if (retain)
				assert_true(disk <=
					    2 * live + compact + 3 * seg);
		}
	}
	assert_true(stats_of(s).compactions > 0);
	assert_int_equal(count_suffix(dir, ".tmp", NULL), 0);
	s->ops->close(s);
	s = store_open(dir, seg, compact, retain, NULL, NULL);
	assert_fold(s, &w.m, retain);
	s->ops->max_ids(s, &job, &sched);
	assert_int_equal(job, w.next_job);
	assert_int_equal(sched, w.next_sched);
	assert_int_equal(stats_of(s).last_seq, w.m.seq);
	s->ops->close(s);
	model_free(&w.m);
	nv_test_rmrf(dir);
	g_fsync = NV_FSYNC_ALWAYS;
}

static void
test_filelog_rotation_and_compaction_keep_live(void **state)
{
	rotation_compaction_case(0);
}

static void
test_filelog_retention_bounds_disk(void **state)
{
	rotation_compaction_case(20);
}

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

/* A failed test leaves globals behind: every test starts from these. */
static int
reset(void **state)
{
	g_fsync = NV_FSYNC_ALWAYS;
	nv__log_set_level(NV__LOG_WARN);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_filelog_roundtrip_and_reopen, reset),
	    cmocka_unit_test_setup(test_filelog_bad_open_args, reset),
	    cmocka_unit_test_setup(test_filelog_lock_excludes_second_open,
				   reset),
	    cmocka_unit_test_setup(test_filelog_torn_tail_every_offset, reset),
	    cmocka_unit_test_setup(test_filelog_bitflips_detected, reset),
	    cmocka_unit_test_setup(
		test_filelog_corrupt_older_segment_quarantined, reset),
	    cmocka_unit_test_setup(test_filelog_newer_format_refused, reset),
	    cmocka_unit_test_setup(test_filelog_torn_segment_creation, reset),
	    cmocka_unit_test_setup(
		test_filelog_rotation_and_compaction_keep_live, reset),
	    cmocka_unit_test_setup(test_filelog_retention_bounds_disk, reset),
	    cmocka_unit_test_setup(test_filelog_fault_at_every_io_call, reset),
	    cmocka_unit_test_setup(test_filelog_enospc_then_reopen, reset),
	    cmocka_unit_test_setup(test_filelog_failed_fsync_never_retried,
				   reset),
	    cmocka_unit_test_setup(test_filelog_interrupted_compaction, reset),
	    cmocka_unit_test_setup(test_filelog_powercut_keeps_synced, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
