/*
 * filelog_index.c - the in-memory fold of the file store.
 *
 * While records are written (and while they are replayed at open), each
 * one is folded into an entry per job id or schedule id. The fold is what
 * replay() hands back and what compaction keeps; it is the same for the
 * SQLite store (docs/file-store.md has the rules with examples):
 *
 *   job:      ENQUEUED (its attempt raised to the attempts done, folded
 *             from every later STARTED / RETRY / final record), then the
 *             outcome if any: the latest of SUCCEEDED, FAILED, RETRY.
 *             A later ENQUEUED of the same id starts the job afresh.
 *             STARTED records are never live themselves: a STARTED with
 *             no later outcome ("was running at the crash") only raises
 *             ENQUEUED.attempt.
 *             Finished jobs (SUCCEEDED/FAILED) beyond retain_finished are
 *             dropped, oldest finish first.
 *   schedule: SCHED_ADDED, then its latest SCHED_FIRED; a SCHED_CANCELLED
 *             removes the schedule (and is not live itself). A later
 *             SCHED_ADDED of the same id replaces the schedule.
 *   records about an unknown id, or older than the entry's current
 *   records (lower seq), are dead on arrival.
 *
 * The index also keeps the accounting compaction needs: for each live
 * record, the segment holding it and its size, so that each segment knows
 * how many of its bytes are live. The map is an open-addressing table of
 * entries (no allocation per id); nv__fl_reserve grows it before a batch
 * is written so that folding a written record can never fail.
 *
 * Threads: one at a time (the opener, then the persister thread).
 */
#include <string.h>

#include "base/alloc.h"
#include "persistence/filelog_int.h"

/* Fibonacci hashing: the top bits of id * 2^64/phi. Sequential ids (the
 * common case) spread evenly, and no pattern of ids piles up in one run
 * of slots (which would make linear probing quadratic). */
static inline size_t
map_hash(uint64_t id, size_t cap)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ull) >>
			(64 - __builtin_ctzll((unsigned long long)cap)));
}

void
nv__fl_map_free(struct fl_map *m)
{
	nv__free(m->slots);
	memset(m, 0, sizeof(*m));
}

struct fl_ent *
nv__fl_map_get(struct fl_map *m, uint64_t id)
{
	size_t i;
	if (m->cap == 0)
		return NULL;
	for (i = map_hash(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
		struct fl_ent *e = &m->slots[i];
		if (!e->used)
			return NULL;
		if (e->id == id)
			return e;
	}
}

/* Capacity kept at or under 3/4 load. */
static int
map_grow(struct fl_map *m, size_t need)
{
	size_t cap = m->cap ? m->cap : 64, bytes;
	struct fl_ent *slots;

	while (need > cap / 4 * 3)
		cap *= 2;
	if (cap == m->cap)
		return 0;
	bytes = cap * sizeof(*slots);
	slots = nv__malloc(bytes);
	if (slots == NULL)
		return NV_ENOMEM;
	memset(slots, 0, bytes);
	for (size_t i = 0; i < m->cap; i++) {
		struct fl_ent *e = &m->slots[i];
		size_t j;
		if (!e->used)
			continue;
		for (j = map_hash(e->id, cap); slots[j].used;
		     j = (j + 1) & (cap - 1))
			;
		slots[j] = *e;
	}
	nv__free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

/* Inserts id (known absent; room reserved) and returns its zeroed entry. */
static struct fl_ent *
map_put(struct fl_map *m, uint64_t id)
{
	size_t i;
	for (i = map_hash(id, m->cap); m->slots[i].used;
	     i = (i + 1) & (m->cap - 1))
		;
	memset(&m->slots[i], 0, sizeof(m->slots[i]));
	m->slots[i].id = id;
	m->slots[i].used = 1;
	m->count++;
	return &m->slots[i];
}

/* Backward-shift deletion: no tombstones, probes stay short. e moves. */
static void
map_del(struct fl_map *m, struct fl_ent *e)
{
	size_t i = (size_t)(e - m->slots), j = i;

	m->slots[i].used = 0;
	m->count--;
	for (;;) {
		size_t k;
		j = (j + 1) & (m->cap - 1);
		if (!m->slots[j].used)
			return;
		k = map_hash(m->slots[j].id, m->cap);
		/* Move j back to i when its home k is not in (i, j]. */
		if ((j > i && (k <= i || k > j)) ||
		    (j < i && (k <= i && k > j))) {
			m->slots[i] = m->slots[j];
			m->slots[j].used = 0;
			i = j;
		}
	}
}

int
nv__fl_reserve(struct fl_store *s, size_t n)
{
	int rc;
	if ((rc = map_grow(&s->jobs, s->jobs.count + n)) != 0 ||
	    (rc = map_grow(&s->scheds, s->scheds.count + n)) != 0)
		return rc;
	if (s->retain && s->fin_len + n > s->fin_cap) {
		size_t cap = s->fin_cap ? s->fin_cap : 256;
		struct fl_fin *q;
		while (cap < s->fin_len + n)
			cap *= 2;
		size_t bytes = cap * sizeof(*q);
		q = nv__malloc(bytes);
		if (q == NULL)
			return NV_ENOMEM;
		for (size_t i = 0; i < s->fin_len; i++)
			q[i] = s->finq[(s->fin_head + i) % s->fin_cap];
		nv__free(s->finq);
		s->finq = q;
		s->fin_cap = cap;
		s->fin_head = 0;
	}
	return 0;
}

struct fl_seg *
nv__fl_seg_find(struct fl_store *s, uint64_t segno)
{
	size_t lo = 0, hi = s->nsegs;
	/* First segment with a number >= segno (see struct fl_seg). */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->segs[mid].segno < segno)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->nsegs ? &s->segs[lo] : NULL;
}

static void
live_add(struct fl_store *s, uint64_t segno, uint32_t len)
{
	struct fl_seg *g = nv__fl_seg_find(s, segno);
	if (g) {
		g->live_bytes += len;
		g->live_count++;
	}
}

static void
live_sub(struct fl_store *s, uint64_t seq, uint64_t segno, uint32_t len)
{
	struct fl_seg *g;
	if (seq == 0)
		return;
	g = nv__fl_seg_find(s, segno);
	if (g) {
		/* Clamped: an aborted compaction may leave sizes a few bytes
		 * off; the counts only steer when to compact. */
		g->live_bytes -= g->live_bytes < len ? g->live_bytes : len;
		g->live_count -= g->live_count ? 1 : 0;
	}
}

static bool
is_final(uint8_t type)
{
	return type == NV_REC_JOB_SUCCEEDED || type == NV_REC_JOB_FAILED;
}

static void
fin_push(struct fl_store *s, uint64_t seq, uint64_t id)
{
	if (!s->retain || s->fin_len == s->fin_cap)
		return; /* cannot happen after nv__fl_reserve */
	s->finq[(s->fin_head + s->fin_len) % s->fin_cap] =
	    (struct fl_fin){seq, id};
	s->fin_len++;
}

/* Drops the whole job e (its records become dead). */
static void
job_drop(struct fl_store *s, struct fl_ent *e)
{
	live_sub(s, e->a_seq, e->a_seg, e->a_len);
	live_sub(s, e->b_seq, e->b_seg, e->b_len);
	if (e->b_seq && is_final(e->b_type))
		s->finished--;
	map_del(&s->jobs, e);
}

/* Retention: drops the oldest finished jobs beyond s->retain. Stale queue
 * entries (the job was re-enqueued or retried since) are skipped. */
static void
retain_apply(struct fl_store *s)
{
	while (s->retain && s->finished > s->retain && s->fin_len > 0) {
		struct fl_fin f = s->finq[s->fin_head];
		struct fl_ent *e;
		s->fin_head = (s->fin_head + 1) % s->fin_cap;
		s->fin_len--;
		e = nv__fl_map_get(&s->jobs, f.id);
		if (e && e->b_seq == f.seq && is_final(e->b_type))
			job_drop(s, e);
	}
}

static void
apply_job(struct fl_store *s, const nv_rec *r, uint64_t segno, uint32_t len)
{
	struct fl_ent *e = nv__fl_map_get(&s->jobs, r->id);

	if (r->type == NV_REC_JOB_ENQUEUED) {
		if (e && r->seq <= e->a_seq)
			return; /* older than what we hold */
		if (e)
			job_drop(s, e);
		e = map_put(&s->jobs, r->id);
		e->a_seq = r->seq;
		e->a_seg = segno;
		e->a_len = len;
		e->attempts = r->attempt;
		live_add(s, segno, len);
		return;
	}
	if (e == NULL || r->seq <= e->a_seq)
		return; /* orphan: its job is unknown or was replaced */
	if (r->attempt > e->attempts)
		e->attempts = r->attempt;
	if (r->type == NV_REC_JOB_STARTED || r->seq <= e->b_seq)
		return;
	if (e->b_seq) {
		live_sub(s, e->b_seq, e->b_seg, e->b_len);
		if (is_final(e->b_type))
			s->finished--;
	}
	e->b_seq = r->seq;
	e->b_seg = segno;
	e->b_len = len;
	e->b_type = r->type;
	live_add(s, segno, len);
	if (is_final(r->type)) {
		s->finished++;
		fin_push(s, r->seq, r->id);
		retain_apply(s);
	}
}

static void
apply_sched(struct fl_store *s, const nv_rec *r, uint64_t segno, uint32_t len)
{
	struct fl_ent *e = nv__fl_map_get(&s->scheds, r->id);

	if (r->type == NV_REC_SCHED_ADDED) {
		if (e && r->seq <= e->a_seq)
			return;
		if (e) {
			live_sub(s, e->a_seq, e->a_seg, e->a_len);
			live_sub(s, e->b_seq, e->b_seg, e->b_len);
			map_del(&s->scheds, e);
		}
		e = map_put(&s->scheds, r->id);
		e->a_seq = r->seq;
		e->a_seg = segno;
		e->a_len = len;
		live_add(s, segno, len);
		return;
	}
	if (e == NULL || r->seq <= e->a_seq || r->seq <= e->b_seq)
		return;
	if (r->type == NV_REC_SCHED_CANCELLED) {
		live_sub(s, e->a_seq, e->a_seg, e->a_len);
		live_sub(s, e->b_seq, e->b_seg, e->b_len);
		map_del(&s->scheds, e);
		return;
	}
	live_sub(s, e->b_seq, e->b_seg, e->b_len); /* SCHED_FIRED */
	e->b_seq = r->seq;
	e->b_seg = segno;
	e->b_len = len;
	e->b_type = r->type;
	live_add(s, segno, len);
}

static bool
is_sched(uint8_t type)
{
	return type >= NV_REC_SCHED_ADDED;
}

void
nv__fl_apply(struct fl_store *s, const nv_rec *r, uint64_t segno, uint32_t len)
{
	struct fl_seg *g = nv__fl_seg_find(s, segno);
	uint64_t *max = is_sched(r->type) ? &s->max_sched : &s->max_job;

	if (g)
		g->rec_bytes += len;
	/* Relaxed: other threads read these only as hints (max_ids, stats);
	 * the persister thread is the only writer. */
	if (r->id > __atomic_load_n(max, __ATOMIC_RELAXED))
		__atomic_store_n(max, r->id, __ATOMIC_RELAXED);
	if (r->seq > __atomic_load_n(&s->last_seq, __ATOMIC_RELAXED))
		__atomic_store_n(&s->last_seq, r->seq, __ATOMIC_RELAXED);
	if (is_sched(r->type))
		apply_sched(s, r, segno, len);
	else
		apply_job(s, r, segno, len);
	/* Compact the finish queue when stale entries pile up. */
	if (s->retain && s->fin_len > 2 * s->finished + 1024) {
		size_t n = 0;
		for (size_t i = 0; i < s->fin_len; i++) {
			struct fl_fin f =
			    s->finq[(s->fin_head + i) % s->fin_cap];
			struct fl_ent *e = nv__fl_map_get(&s->jobs, f.id);
			/* The write position never passes the read one. */
			if (e && e->b_seq == f.seq && is_final(e->b_type))
				s->finq[(s->fin_head + n++) % s->fin_cap] = f;
		}
		s->fin_len = n;
	}
}

struct fl_ent *
nv__fl_live(struct fl_store *s, const nv_rec *r)
{
	struct fl_ent *e;
	if (is_sched(r->type)) {
		e = nv__fl_map_get(&s->scheds, r->id);
		if (e &&
		    ((r->type == NV_REC_SCHED_ADDED && r->seq == e->a_seq) ||
		     (r->type == NV_REC_SCHED_FIRED && r->seq == e->b_seq)))
			return e;
		return NULL;
	}
	e = nv__fl_map_get(&s->jobs, r->id);
	if (e && ((r->type == NV_REC_JOB_ENQUEUED && r->seq == e->a_seq) ||
		  (r->type != NV_REC_JOB_STARTED && r->seq == e->b_seq &&
		   r->type == e->b_type)))
		return e;
	return NULL;
}
