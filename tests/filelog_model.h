/*
 * tests/filelog_model.h - shared by test_filelog.c and
 * test_filelog_faults.c: a reference model of what was written, the fold
 * of it (written from the rules in docs/file-store.md, independently of
 * persistence/filelog_index.c), store and file helpers, and a random but
 * realistic workload. Functions are static inline so that each test uses
 * what it needs.
 */
#ifndef NV_TEST_FILELOG_MODEL_H
#define NV_TEST_FILELOG_MODEL_H

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
#include "testutil.h"

/* ---------------------------------------------------------------- rng */

static uint64_t rng_state;

static inline uint64_t
rng(void)
{
	return nv_test_rand(&rng_state);
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

static inline void
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

static inline void
model_add(struct model *m, const nv_rec *r)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 256;
		m->v = realloc(m->v, m->cap * sizeof(*m->v));
		assert_non_null(m->v);
	}
	mrec_copy(&m->v[m->n++], r);
}

static inline void
model_free(struct model *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].mem);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

static inline bool
is_sched_type(uint8_t t)
{
	return t >= NV_REC_SCHED_ADDED;
}

static inline bool
is_final_type(uint8_t t)
{
	return t == NV_REC_JOB_SUCCEEDED || t == NV_REC_JOB_FAILED;
}

/* The fold of m (rules in docs/file-store.md), in seq order, into out
 * (shallow copies of m's records, ENQUEUED attempts raised). Assumes the
 * workloads of this file: nothing follows a final record of a job. */
static inline size_t
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

static inline int
collect_cb(const nv_rec *r, void *arg)
{
	model_add(&((struct collect *)arg)->got, r);
	return 0;
}

static inline void
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
static inline void
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

static inline nv_store *
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

static inline nv_store_stats
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

static inline nv_rec
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
static inline void
put(nv_store *s, struct model *m, nv_rec r)
{
	assert_int_equal(s->ops->write(s, &r, 1), 0);
	model_add(m, &r);
}

/* ---------------------------------------------------------------- files */

static inline char *
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
static inline int
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

static inline uint8_t *
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

static inline void
write_file(const char *path, const uint8_t *b, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, len, f), len);
	fclose(f);
}

static inline void
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
static inline size_t
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
static inline void
model_prefix(const struct model *m, size_t k, struct model *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < k; i++)
		model_add(out, &m->v[i].r);
	out->seq = k ? m->v[k - 1].r.seq : 0;
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

static inline void
wl_init(struct wl *w, uint64_t seed)
{
	memset(w, 0, sizeof(*w));
	rng_state = seed;
}

/* Appends 1..max records to out (and to the model); returns how many. */
static inline size_t
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
static inline uint64_t
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

/* A failed test leaves globals behind: every test starts from these. */
static inline int
reset(void **state)
{
	g_fsync = NV_FSYNC_ALWAYS;
	nv__log_set_level(NV__LOG_WARN);
	return 0;
}

#endif
