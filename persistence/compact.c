/*
 * compact.c - compaction of the file store.
 *
 * The log only grows; the fold (filelog_index.c) knows which records are
 * still live. When the dead bytes in the sealed segments exceed
 * compact_bytes and are at least as many as the live bytes there (so that
 * a compaction always frees at least as much as it rewrites: the write
 * amplification stays under 2), the live records of every sealed segment
 * are rewritten, in seq order, into one snapshot segment that takes the
 * number K of the newest sealed segment:
 *
 *   1. write seg-K.log.tmp: a header with compacted_upto = K and the
 *      highest ids and seq so far (so ids never repeat even when the
 *      records carrying them are dropped), then the live records, each
 *      ENQUEUED rewritten with its folded attempt count;
 *   2. fdatasync it;
 *   3. rename it over seg-K.log, fsync the directory;
 *   4. unlink the segments below K, fsync the directory.
 *
 * A crash before 3 leaves a .tmp that the next open deletes; the old
 * segments are intact. A crash after 3 leaves seg-K as a snapshot next to
 * some of the segments it replaced; the next open sees compacted_upto = K
 * and deletes them before reading anything, so no record is ever read
 * twice and nothing is lost. (Replay is also idempotent by seq, but it
 * never has to be.) Because the snapshot is written in seq order and all
 * its seqs are below those of the active segment, reading the segments in
 * number order still yields records in seq order.
 *
 * The fold tells how many live records the sealed segments hold; if the
 * rewrite finds a different number (bit rot appeared since the open), the
 * snapshot is thrown away, the old segments stay, and compaction stays
 * off until the next open, which will quarantine the damage.
 *
 * Compaction runs on the persister thread, inside maintain(), between
 * batches: writes wait for it. Its cost is proportional to the live data
 * in the sealed segments.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "persistence/filelog_int.h"

#define NV__FL_COMPACT_BUF ((size_t)1 << 20)

struct cmp {
	int fd;
	const char *path;
	uint8_t *buf;
	size_t len, cap;
	uint64_t off;	  /* file offset of buf[0] */
	uint64_t records; /* live records written */
	uint64_t bytes;	  /* their bytes */
	uint64_t segno;	  /* K */
};

static int
cmp_flush(struct fl_store *s, struct cmp *c)
{
	int rc = nv__fl_write_all(s, c->fd, c->buf, c->len, c->off, c->path);
	c->off += c->len;
	c->len = 0;
	return rc;
}

static int
cmp_cb(struct fl_store *s, const nv_rec *r, const uint8_t *raw, size_t len,
       void *arg)
{
	struct cmp *c = arg;
	struct fl_ent *e = nv__fl_live(s, r);
	bool fold;
	nv_rec f;
	int rc;

	if (e == NULL)
		return 0;
	fold = r->type == NV_REC_JOB_ENQUEUED && r->attempt != e->attempts;
	if (fold) {
		f = *r;
		f.attempt = e->attempts;
		len = nv__rec_size(&f);
	}
	if (c->len + len > c->cap) {
		if ((rc = cmp_flush(s, c)) != 0)
			return rc;
		if (len > c->cap) {
			uint8_t *b = nv__malloc(len);
			if (b == NULL)
				return NV_ENOMEM;
			nv__free(c->buf);
			c->buf = b;
			c->cap = len;
		}
	}
	if (fold)
		nv__rec_encode(&f, c->buf + c->len);
	else
		memcpy(c->buf + c->len, raw, len);
	c->len += len;
	if (r->seq == e->a_seq) {
		e->a_seg = c->segno;
		e->a_len = (uint32_t)len;
	} else {
		e->b_seg = c->segno;
		e->b_len = (uint32_t)len;
	}
	c->records++;
	c->bytes += len;
	return 0;
}

/* Writes the snapshot to tmp (steps 1-2). 0, NV_EIO (store failed),
 * NV_ENOMEM, or NV_ECORRUPT when the live count does not match. */
static int
write_snapshot(struct fl_store *s, size_t nsealed, struct cmp *c)
{
	uint8_t hdr[NV__SEG_HDR_LEN];
	nv_seg_hdr h = {
	    .segno = c->segno,
	    .base_seq = s->segs[0].base_seq,
	    .max_job_id = __atomic_load_n(&s->max_job, __ATOMIC_RELAXED),
	    .max_sched_id = __atomic_load_n(&s->max_sched, __ATOMIC_RELAXED),
	    .compacted_upto = c->segno,
	};
	uint64_t expect = 0, floor = 0;
	int rc, r;

	nv__seg_hdr_encode(&h, hdr);
	if ((rc = nv__fl_write_all(s, c->fd, hdr, sizeof(hdr), 0, c->path)))
		return rc;
	c->off = NV__SEG_HDR_LEN;
	for (size_t i = 0; i < nsealed; i++) {
		struct fl_seg *g = &s->segs[i];
		char path[NV__FL_PATH];
		struct fl_scan res;
		int fd;

		expect += g->live_count;
		nv__fl_path(s, path, g->segno, NULL);
		fd = s->io->open(s->io, path, O_RDONLY, 0);
		if (fd < 0)
			return nv__fl_fail(s, "open", path, -fd);
		floor = g->base_seq > floor ? g->base_seq : floor;
		rc = nv__fl_scan(s, fd, g->size, floor, cmp_cb, c, &res);
		floor = res.last_seq;
		s->io->close(s->io, fd);
		if (rc == NV_EIO)
			return nv__fl_fail(s, "read", path, EIO);
		if (rc != 0)
			return rc;
	}
	if ((rc = cmp_flush(s, c)) != 0)
		return rc;
	if (c->records != expect) {
		nv__err("file store %s: compaction found %llu live records in "
			"the sealed segments where %llu were expected; keeping "
			"the segments as they are, compaction off until the "
			"next open",
			s->dir, (unsigned long long)c->records,
			(unsigned long long)expect);
		return NV_ECORRUPT;
	}
	r = s->io->fdatasync(s->io, c->fd);
	if (r < 0)
		return nv__fl_fail(s, "fdatasync", c->path, -r);
	nv__fl_stat_add(s, &s->st.syncs, 1);
	return 0;
}

int
nv__fl_compact(struct fl_store *s)
{
	size_t nsealed = s->nsegs - 1;
	char tmp[NV__FL_PATH], dst[NV__FL_PATH];
	struct cmp c = {.fd = -1, .path = tmp};
	struct fl_seg snap;
	uint64_t before = 0;
	int rc, r;

	if (s->nsegs < 2)
		return 0;
	c.segno = s->segs[nsealed - 1].segno;
	for (size_t i = 0; i < nsealed; i++)
		before += s->segs[i].size;
	nv__fl_path(s, tmp, c.segno, ".tmp");
	nv__fl_path(s, dst, c.segno, NULL);
	c.cap = NV__FL_COMPACT_BUF;
	c.buf = nv__malloc(c.cap);
	if (c.buf == NULL)
		return NV_ENOMEM;
	c.fd = s->io->open(s->io, tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (c.fd < 0) {
		nv__free(c.buf);
		return nv__fl_fail(s, "create", tmp, -c.fd);
	}
	rc = write_snapshot(s, nsealed, &c);
	s->io->close(s->io, c.fd);
	nv__free(c.buf);
	if (rc != 0) {
		s->io->unlink(s->io, tmp); /* best effort; open removes it */
		if (rc == NV_ECORRUPT) {
			s->compact_off = true;
			return 0;
		}
		return rc;
	}
	/* Step 3: the commit point. */
	if ((r = s->io->rename(s->io, tmp, dst)) < 0)
		return nv__fl_fail(s, "rename", tmp, -r);
	if ((rc = nv__fl_dir_sync(s)) != 0)
		return rc;
	/* Step 4. A failure here leaves covered segments that the next open
	 * deletes; the live state on disk is already right. */
	for (size_t i = 0; i + 1 < nsealed; i++) {
		nv__fl_path(s, tmp, s->segs[i].segno, NULL);
		if ((r = s->io->unlink(s->io, tmp)) < 0)
			return nv__fl_fail(s, "unlink", tmp, -r);
	}
	if ((rc = nv__fl_dir_sync(s)) != 0)
		return rc;

	snap = (struct fl_seg){
	    .segno = c.segno,
	    .base_seq = s->segs[0].base_seq,
	    .size = c.off,
	    .rec_bytes = c.bytes,
	    .live_bytes = c.bytes,
	    .live_count = c.records,
	};
	s->segs[0] = snap;
	s->segs[1] = s->segs[s->nsegs - 1];
	s->nsegs = 2;
	nv__fl_stat_add(s, &s->st.compactions, 1);
	nv__info("file store %s: compacted %zu segments (%llu bytes) "
		 "into " NV__FL_SEG_FMT " (%llu bytes, %llu live records)",
		 s->dir, nsealed, (unsigned long long)before,
		 (unsigned long long)c.segno, (unsigned long long)c.off,
		 (unsigned long long)c.records);
	return 0;
}

int
nv__fl_maintain(nv_store *st)
{
	struct fl_store *s = FL(st);
	uint64_t dead = 0, live = 0;
	bool corrupt = false;
	int rc = __atomic_load_n(&s->failed, __ATOMIC_RELAXED);

	if (rc != 0)
		return rc;
	if (s->compact_off || s->nsegs < 2)
		return 0;
	for (size_t i = 0; i + 1 < s->nsegs; i++) {
		struct fl_seg *g = &s->segs[i];
		live += g->live_bytes;
		dead += g->rec_bytes - (g->live_bytes < g->rec_bytes
					    ? g->live_bytes
					    : g->rec_bytes);
		corrupt |= g->corrupt;
	}
	if (corrupt || (dead > s->compact_bytes && dead >= live))
		return nv__fl_compact(s);
	return 0;
}
