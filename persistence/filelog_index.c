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
 * how many of its bytes are live. The map (no allocation per id) is a
 * dense array of entries plus an open-addressing key table (id -> entry
 * index; linear probing at most half full, backward-shift deletion;
 * deleting moves the last entry into the hole). nv__fl_reserve grows both
 * before a batch is written so that folding a written record can never
 * fail. Why two parts: with a million jobs the map is far larger than the
 * caches and ids hash to random slots, so the lookup of a new job is a
 * cache (and TLB) miss. A key slot is 16 bytes and probes stay short, so a
 * lookup touches one line, which fl_write prefetches for the whole batch
 * before it encodes and writes it (the misses overlap each other and the
 * write); new entries are appended, so a job's later records find its
 * entry still in cache. (One table of 56-byte entries probed in place
 * cost about a quarter of the persister thread at 1M jobs.)
 *
 * Threads: one at a time (the opener, then the persister thread).
 */
#include <string.h>
#include <sys/mman.h>

#include "base/alloc.h"
#include "persistence/filelog_int.h"

#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_MAP ((size_t)4 << 20)

/* Fibonacci hashing: the top bits of id * 2^64/phi. Sequential ids (the
 * common case) spread evenly, and no pattern of ids piles up in one run
 * of slots (which would make linear probing quadratic). */
static inline size_t
map_hash(uint64_t id, size_t cap)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ull) >>
			(64 - __builtin_ctzll((unsigned long long)cap)));
}

/* Zeroed memory. A large block is aligned to 2 MiB and asks for huge
 * pages (a hint, ignored where transparent huge pages are off): the key
 * table is probed at random slots, and with 4 KiB pages nearly each probe
 * would also miss the TLB. */
static void *
map_alloc(size_t bytes)
{
	void *p;
	if (bytes < HUGE_MAP)
		return nv__calloc(1, bytes);
	p = nv__aligned_alloc(HUGE_PAGE, bytes); /* zeroed */
	if (p != NULL)
		(void)madvise(p, bytes, MADV_HUGEPAGE);
	return p;
}

void
nv__fl_map_free(struct fl_map *m)
{
	nv__free(m->keys);
	nv__free(m->ents);
	memset(m, 0, sizeof(*m));
}

void
nv__fl_prefetch(struct fl_store *s, const nv_rec *r)
{
	struct fl_map *m =
	    r->type >= NV_REC_SCHED_ADDED ? &s->scheds : &s->jobs;
	if (m->cap != 0)
		__builtin_prefetch(&m->keys[map_hash(r->id, m->cap)], 1, 1);
}

/* The key slot of id, or the empty slot where it would go. */
static struct fl_key *
key_find(const struct fl_map *m, uint64_t id)
{
	for (size_t i = map_hash(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
		struct fl_key *k = &m->keys[i];
		if (k->idx1 == 0 || k->id == id)
			return k;
	}
}

struct fl_ent *
nv__fl_map_get(struct fl_map *m, uint64_t id)
{
	struct fl_key *k;
	if (m->cap == 0)
		return NULL;
	k = key_find(m, id);
	return k->idx1 ? &m->ents[k->idx1 - 1] : NULL;
}

/* Room for need entries: the key table at or under 1/2 load (short
 * probes), the entry array dense. */
static int
map_grow(struct fl_map *m, size_t need)
{
	size_t cap = m->cap ? m->cap : 64;

	if (need > m->ents_cap) {
		size_t ec = m->ents_cap ? m->ents_cap : 32, bytes;
		struct fl_ent *ents;
		while (ec < need)
			ec *= 2;
		bytes = ec * sizeof(*ents);
		ents = nv__realloc(m->ents, bytes);
		if (ents == NULL)
			return NV_ENOMEM;
		m->ents = ents;
		m->ents_cap = ec;
	}
	while (need > cap / 2)
		cap *= 2;
	if (cap != m->cap) {
		struct fl_key *keys = map_alloc(cap * sizeof(*keys));
		if (keys == NULL)
			return NV_ENOMEM;
		for (size_t i = 0; i < m->cap; i++) {
			struct fl_key *k = &m->keys[i];
			size_t j;
			if (k->idx1 == 0)
				continue;
			for (j = map_hash(k->id, cap); keys[j].idx1 != 0;
			     j = (j + 1) & (cap - 1))
				;
			keys[j] = *k;
		}
		nv__free(m->keys);
		m->keys = keys;
		m->cap = cap;
	}
	return 0;
}

/* Inserts id (known absent; room reserved) and returns its zeroed entry,
 * appended to the dense array (so new jobs are written in order). */
static struct fl_ent *
map_put(struct fl_map *m, uint64_t id)
{
	struct fl_key *k = key_find(m, id);
	struct fl_ent *e = &m->ents[m->count];

	k->id = id;
	k->idx1 = ++m->count;
	memset(e, 0, sizeof(*e));
	e->id = id;
	e->used = 1;
	return e;
}

/* Removes e: backward-shift deletion in the key table (no tombstones,
 * probes stay short), and the last entry moves into e's place. Pointers
 * to the last entry are invalid afterwards. */
static void
map_del(struct fl_map *m, struct fl_ent *e)
{
	struct fl_key *k = key_find(m, e->id);
	size_t i = (size_t)(k - m->keys), j = i;
	size_t at = (size_t)(e - m->ents), last = m->count - 1;

	m->keys[i].idx1 = 0;
	for (;;) {
		size_t h;
		j = (j + 1) & (m->cap - 1);
		if (m->keys[j].idx1 == 0)
			break;
		h = map_hash(m->keys[j].id, m->cap);
		/* Move j back to i when its home h is not in (i, j]. */
		if ((j > i && (h <= i || h > j)) ||
		    (j < i && (h <= i && h > j))) {
			m->keys[i] = m->keys[j];
			m->keys[j].idx1 = 0;
			i = j;
		}
	}
	if (at != last) {
		m->ents[at] = m->ents[last];
		key_find(m, m->ents[at].id)->idx1 = at + 1;
	}
	m->count--;
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
