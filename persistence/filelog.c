/*
 * filelog.c - the file store ("file"): an append-only, checksummed,
 * segmented log of job event records (store.h, format in codec.h).
 *
 * Layout. conf->path is a directory holding segment files
 * seg-<16 hex digits>.log, numbered upwards; the highest is the active
 * segment, where batches are appended; the others are sealed. A LOCK file
 * (flock) keeps a second process from opening the same store. When the
 * active segment would grow past segment_bytes it is synced, sealed, and
 * a new one is created (directory fsynced). compact.c rewrites the live
 * records of the sealed segments into one snapshot segment.
 *
 * Write path (persister thread only). write() encodes the whole batch into
 * one buffer and appends it with one pwrite (looping only on a short
 * write); sync() is one fdatasync of the active segment (ALWAYS/BATCH; OFF
 * never syncs). The in-memory fold (filelog_index.c) learns each record
 * after it was written; its map is grown before the write so that this
 * cannot fail half-way.
 *
 * Failure. Any failed write, sync, rename, ... puts the store in the
 * failed state: logged once, and every later write/sync/maintain returns
 * NV_EIO. A failed fsync is never retried (the kernel may have dropped the
 * dirty pages and would report success the second time).
 *
 * Recovery (open). Segments are read in order and folded. A torn or
 * corrupt tail of the LAST segment (bad bytes running to the end of the
 * file) is cut off and counted in stats.truncated_bytes. Anything else -
 * a bad record with valid records after it, a bad tail in a sealed
 * segment, a bad header - is corruption: the segment is hard-linked to
 * <name>.corrupt (so the evidence survives), its readable records are
 * kept, and a compaction at once rewrites them into a clean segment and
 * removes the damaged one; stats.quarantined counts such segments. A
 * segment whose header names a newer format version stops the open
 * (NV_ECORRUPT): it belongs to a newer nuvom and is left untouched.
 *
 * Threads: open, replay and close belong to the owner; write, sync and
 * maintain to the persister thread; stats and max_ids may be called from
 * any thread (relaxed atomic counters).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "persistence/filelog_int.h"

/* ---------------------------------------------------------------- helpers */

void
nv__fl_path(const struct fl_store *s, char *buf, uint64_t segno,
	    const char *suffix)
{
	snprintf(buf, NV__FL_PATH, "%s/" NV__FL_SEG_FMT "%.32s", s->dir,
		 (unsigned long long)segno, suffix ? suffix : "");
}

void
nv__fl_stat_add(struct fl_store *s, uint64_t *field, uint64_t n)
{
	/* Relaxed: statistics; written by one thread, read by any. */
	__atomic_add_fetch(field, n, __ATOMIC_RELAXED);
}

int
nv__fl_fail(struct fl_store *s, const char *what, const char *file, int err)
{
	int zero = 0;
	/* The first failure wins and is the only one logged. */
	if (__atomic_compare_exchange_n(&s->failed, &zero, NV_EIO, false,
					__ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		__atomic_store_n(&s->st.failed, NV_EIO, __ATOMIC_RELAXED);
		nv__err("file store %s: %s of %s failed: %s; the store is now "
			"failed and refuses writes",
			s->dir, what, file ? file : "?", strerror(err));
	}
	return NV_EIO;
}

int
nv__fl_write_all(struct fl_store *s, int fd, const uint8_t *buf, size_t n,
		 uint64_t off, const char *file)
{
	while (n > 0) {
		ssize_t r = s->io->pwrite(s->io, fd, buf, n, off);
		if (r < 0)
			return nv__fl_fail(s, "write", file, (int)-r);
		if (r == 0)
			return nv__fl_fail(s, "write", file, ENOSPC);
		buf += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

int
nv__fl_dir_sync(struct fl_store *s)
{
	int r = s->io->fsync_dir(s->io, s->dir);
	return r < 0 ? nv__fl_fail(s, "fsync", s->dir, -r) : 0;
}

static struct fl_seg *
active(struct fl_store *s)
{
	return &s->segs[s->nsegs - 1];
}

int
nv__fl_segs_push(struct fl_store *s, uint64_t segno, uint64_t base_seq,
		 uint64_t size)
{
	struct fl_seg *g =
	    nv__grow(s->segs, &s->segs_cap, s->nsegs, sizeof(*g), 16);
	if (g == NULL)
		return NV_ENOMEM;
	s->segs = g;
	s->segs[s->nsegs++] =
	    (struct fl_seg){.segno = segno, .base_seq = base_seq, .size = size};
	return 0;
}

/* Creates segment segno (header only) and makes it the active one. */
int
nv__fl_seg_create(struct fl_store *s, uint64_t segno, bool sync_dir)
{
	char path[NV__FL_PATH];
	uint8_t hdr[NV__SEG_HDR_LEN];
	nv_seg_hdr h = {
	    .segno = segno,
	    .base_seq = __atomic_load_n(&s->last_seq, __ATOMIC_RELAXED),
	    .max_job_id = __atomic_load_n(&s->max_job, __ATOMIC_RELAXED),
	    .max_sched_id = __atomic_load_n(&s->max_sched, __ATOMIC_RELAXED),
	};
	int fd, rc;

	nv__fl_path(s, path, segno, NULL);
	if ((rc = nv__fl_segs_push(s, segno, h.base_seq, NV__SEG_HDR_LEN)) != 0)
		return rc;
	fd = s->io->open(s->io, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		s->nsegs--;
		return nv__fl_fail(s, "create", path, -fd);
	}
	s->fd = fd;
	nv__seg_hdr_encode(&h, hdr);
	if ((rc = nv__fl_write_all(s, fd, hdr, sizeof(hdr), 0, path)) != 0)
		return rc;
	s->dirty = true;
	return sync_dir ? nv__fl_dir_sync(s) : 0;
}

/* Seals the active segment (synced unless fsync is off) and starts the
 * next one. */
static int
rotate(struct fl_store *s)
{
	char path[NV__FL_PATH];
	int r;

	nv__fl_path(s, path, active(s)->segno, NULL);
	if (s->fsync != NV_FSYNC_OFF && s->dirty) {
		r = s->io->fdatasync(s->io, s->fd);
		if (r < 0)
			return nv__fl_fail(s, "fdatasync", path, -r);
		nv__fl_stat_add(s, &s->st.syncs, 1);
	}
	s->io->close(s->io, s->fd);
	s->fd = -1;
	s->dirty = false;
	return nv__fl_seg_create(s, active(s)->segno + 1,
				 s->fsync != NV_FSYNC_OFF);
}

/* ---------------------------------------------------------------- write */

static int
fl_write(nv_store *st, const nv_rec *recs, size_t n)
{
	struct fl_store *s = FL(st);
	uint64_t seq = __atomic_load_n(&s->last_seq, __ATOMIC_RELAXED);
	size_t total = 0, off = 0;
	char path[NV__FL_PATH];
	struct fl_seg *g;
	int rc = __atomic_load_n(&s->failed, __ATOMIC_RELAXED);

	if (rc != 0)
		return rc;
	if (n == 0)
		return 0;
	if (recs == NULL)
		return NV_EINVAL;
	if (n > s->szcap) {
		uint32_t *sz = nv__realloc(s->sizes, n * sizeof(*sz));
		if (sz == NULL)
			return NV_ENOMEM;
		s->sizes = sz;
		s->szcap = n;
	}
	for (size_t i = 0; i < n; i++) {
		size_t sz = nv__rec_size(&recs[i]);
		/* seqs must rise: the reader rejects a record that does not
		 * follow its predecessor. */
		if (sz == 0 || recs[i].seq <= seq)
			return NV_EINVAL;
		seq = recs[i].seq;
		s->sizes[i] = (uint32_t)sz; /* <= NV__REC_MAX_BODY + 8 */
		total += sz;
	}
	if ((rc = nv__fl_reserve(s, n)) != 0)
		return rc;
	/* The fold below looks every id up: start the misses now. */
	for (size_t i = 0; i < n; i++)
		nv__fl_prefetch(s, &recs[i]);
	if (total > s->wcap) {
		uint8_t *b = nv__realloc(s->wbuf, total);
		if (b == NULL)
			return NV_ENOMEM;
		s->wbuf = b;
		s->wcap = total;
	}
	g = active(s);
	if (g->size > NV__SEG_HDR_LEN && g->size + total > s->segment_bytes) {
		if ((rc = rotate(s)) != 0)
			return rc;
		g = active(s);
	}
	for (size_t i = 0; i < n; i++)
		off +=
		    nv__rec_encode_sized(&recs[i], s->sizes[i], s->wbuf + off);
	nv__fl_path(s, path, g->segno, NULL);
	s->dirty = true;
	if ((rc = nv__fl_write_all(s, s->fd, s->wbuf, total, g->size, path)))
		return rc;
	for (size_t i = 0; i < n; i++)
		nv__fl_apply(s, &recs[i], g->segno, s->sizes[i]);
	g->size += total;
	nv__fl_stat_add(s, &s->st.records, n);
	nv__fl_stat_add(s, &s->st.bytes, total);
	nv__fl_stat_add(s, &s->st.batches, 1);
	return 0;
}

static int
fl_sync(nv_store *st)
{
	struct fl_store *s = FL(st);
	char path[NV__FL_PATH];
	int rc = __atomic_load_n(&s->failed, __ATOMIC_RELAXED);

	if (rc != 0)
		return rc;
	if (s->fsync == NV_FSYNC_OFF || !s->dirty)
		return 0;
	rc = s->io->fdatasync(s->io, s->fd);
	if (rc < 0) {
		nv__fl_path(s, path, active(s)->segno, NULL);
		return nv__fl_fail(s, "fdatasync", path, -rc);
	}
	s->dirty = false;
	nv__fl_stat_add(s, &s->st.syncs, 1);
	return 0;
}

/* ---------------------------------------------------------------- replay */

struct replay_arg {
	nv_rec_fn fn;
	void *arg;
	uint64_t last;
};

static int
replay_cb(struct fl_store *s, const nv_rec *r, const uint8_t *raw, size_t len,
	  void *arg)
{
	struct replay_arg *ra = arg;
	struct fl_ent *e = nv__fl_live(s, r);
	nv_rec c;

	if (e == NULL || r->seq <= ra->last)
		return 0;
	ra->last = r->seq;
	if (r->type != NV_REC_JOB_ENQUEUED || r->attempt == e->attempts)
		return ra->fn(r, ra->arg);
	c = *r;
	c.attempt = e->attempts; /* the fold: attempts done */
	return ra->fn(&c, ra->arg);
}

static int
fl_replay(nv_store *st, nv_rec_fn fn, void *arg)
{
	struct fl_store *s = FL(st);
	struct replay_arg ra = {fn, arg, 0};
	uint64_t floor = 0;

	if (fn == NULL)
		return NV_EINVAL;
	for (size_t i = 0; i < s->nsegs; i++) {
		struct fl_seg *g = &s->segs[i];
		struct fl_scan res;
		char path[NV__FL_PATH];
		int fd = s->fd, rc;

		if (i + 1 < s->nsegs || fd < 0) {
			nv__fl_path(s, path, g->segno, NULL);
			fd = s->io->open(s->io, path, O_RDONLY, 0);
			if (fd < 0) {
				nv__err("file store: cannot open %s: %s", path,
					strerror(-fd));
				return NV_EIO;
			}
		}
		floor = g->base_seq > floor ? g->base_seq : floor;
		rc = nv__fl_scan(s, fd, g->size, floor, replay_cb, &ra, &res);
		floor = res.last_seq;
		if (fd != s->fd)
			s->io->close(s->io, fd);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---------------------------------------------------------------- misc */

static void
fl_stats(nv_store *st, nv_store_stats *out)
{
	struct fl_store *s = FL(st);
	nv_store_stats *v = &s->st;
	/* Relaxed loads of counters written by the persister thread. */
	out->records = __atomic_load_n(&v->records, __ATOMIC_RELAXED);
	out->bytes = __atomic_load_n(&v->bytes, __ATOMIC_RELAXED);
	out->syncs = __atomic_load_n(&v->syncs, __ATOMIC_RELAXED);
	out->batches = __atomic_load_n(&v->batches, __ATOMIC_RELAXED);
	out->truncated_bytes =
	    __atomic_load_n(&v->truncated_bytes, __ATOMIC_RELAXED);
	out->quarantined = __atomic_load_n(&v->quarantined, __ATOMIC_RELAXED);
	out->compactions = __atomic_load_n(&v->compactions, __ATOMIC_RELAXED);
	out->failed = __atomic_load_n(&s->failed, __ATOMIC_RELAXED);
	out->last_seq = __atomic_load_n(&s->last_seq, __ATOMIC_RELAXED);
}

static void
fl_max_ids(nv_store *st, uint64_t *job_id, uint64_t *sched_id)
{
	struct fl_store *s = FL(st);
	if (job_id)
		*job_id = __atomic_load_n(&s->max_job, __ATOMIC_RELAXED);
	if (sched_id)
		*sched_id = __atomic_load_n(&s->max_sched, __ATOMIC_RELAXED);
}

void
nv__fl_free(struct fl_store *s)
{
	if (s->fd >= 0)
		s->io->close(s->io, s->fd);
	if (s->lock_fd >= 0)
		s->io->close(s->io, s->lock_fd);
	nv__fl_map_free(&s->jobs);
	nv__fl_map_free(&s->scheds);
	nv__free(s->finq);
	nv__free(s->segs);
	nv__free(s->wbuf);
	nv__free(s->sizes);
	nv__free(s);
}

static void
fl_close(nv_store *st)
{
	struct fl_store *s = FL(st);
	if (s == NULL)
		return;
	/* Best effort: a clean close leaves nothing unsynced. Never after a
	 * failure (no fsync retry on a descriptor that failed). */
	if (s->fd >= 0 && s->dirty && s->fsync != NV_FSYNC_OFF &&
	    __atomic_load_n(&s->failed, __ATOMIC_RELAXED) == 0)
		fl_sync(st);
	nv__fl_free(s);
}

const nv_store_ops nv__file_store_ops = {
    .version = NV_STORE_OPS_VERSION,
    .name = "file",
    .open = nv__fl_open,
    .close = fl_close,
    .replay = fl_replay,
    .write = fl_write,
    .sync = fl_sync,
    .maintain = nv__fl_maintain,
    .stats = fl_stats,
    .max_ids = fl_max_ids,
};
