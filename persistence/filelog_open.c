/*
 * filelog_open.c - opening the file store: recovery of the segment log.
 *
 * Steps (filelog.c's essay has the policy):
 *   1. create the directory if needed and take its LOCK (flock);
 *   2. list seg-*.log files, delete leftover compaction outputs (*.tmp);
 *   3. read every header; a newer format version stops here;
 *   4. if a compaction snapshot seg-K exists (compacted_upto == K), the
 *      segments below K were merged into it by a compaction that crashed
 *      before deleting them: delete them now;
 *   5. a segment with a bad header: the last one, when shorter than a
 *      header, is a torn creation and is removed; any other is renamed to
 *      .corrupt;
 *   6. scan every segment in order, folding its records into the index;
 *      cut a torn tail of the last one, quarantine anything else;
 *   7. make sure an active segment is open, and compact at once when a
 *      segment was quarantined, so its readable records get a clean home.
 *
 * Threads: runs on the caller's thread before the store is shared.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "persistence/filelog_int.h"

struct seg_list {
	uint64_t *v;
	size_t n, cap;
	char (*tmp)[32];
	size_t ntmp, tmpcap;
	int err;
};

static bool
is_hex(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') ||
		      (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return true;
}

static int
list_cb(const char *name, void *arg)
{
	struct seg_list *l = arg;
	size_t len = strlen(name);

	if (len < 24 || strncmp(name, "seg-", 4) != 0 ||
	    !is_hex(name + 4, 16) || strncmp(name + 20, ".log", 4) != 0)
		return 0;
	if (len == 28 && strcmp(name + 24, ".tmp") == 0) {
		void *p = nv__grow(l->tmp, &l->tmpcap, l->ntmp,
				   sizeof(*l->tmp), 4);
		if (p == NULL)
			return l->err = NV_ENOMEM;
		l->tmp = p;
		memcpy(l->tmp[l->ntmp++], name, len + 1);
		return 0;
	}
	if (len != 24)
		return 0; /* .corrupt and anything else: not ours to read */
	uint64_t *p = nv__grow(l->v, &l->cap, l->n, sizeof(*p), 16);
	if (p == NULL)
		return l->err = NV_ENOMEM;
	l->v = p;
	l->v[l->n++] = strtoull(name + 4, NULL, 16);
	return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

struct seg_info {
	uint64_t segno, size;
	nv_seg_hdr h;
	int status; /* NV__DEC_* */
	bool gone;  /* deleted or moved aside */
};

static int
read_header(struct fl_store *s, struct seg_info *si)
{
	char path[NV__FL_PATH];
	uint8_t buf[NV__SEG_HDR_LEN];
	size_t n, got = 0;
	int fd, r;

	nv__fl_path(s, path, si->segno, NULL);
	fd = s->io->open(s->io, path, O_RDONLY, 0);
	if (fd < 0) {
		nv__err("file store: cannot open %s: %s", path, strerror(-fd));
		return NV_EIO;
	}
	r = s->io->fsize(s->io, fd, &si->size);
	n = si->size < sizeof(buf) ? (size_t)si->size : sizeof(buf);
	while (r == 0 && got < n) {
		ssize_t k = s->io->pread(s->io, fd, buf + got, n - got, got);
		if (k <= 0)
			r = k < 0 ? (int)k : -EIO;
		else
			got += (size_t)k;
	}
	s->io->close(s->io, fd);
	if (r < 0) {
		nv__err("file store: cannot read %s: %s", path, strerror(-r));
		return NV_EIO;
	}
	si->status = nv__seg_hdr_decode(buf, n, &si->h);
	if (si->status == NV__DEC_OK && si->h.segno != si->segno)
		si->status = NV__DEC_BAD; /* renamed by hand, or garbage */
	return 0;
}

/* Moves (rename) or copies (link) segment segno to a free .corrupt name. */
static int
set_aside(struct fl_store *s, uint64_t segno, bool keep, char *out)
{
	char path[NV__FL_PATH];
	int r = -EEXIST;

	nv__fl_path(s, path, segno, NULL);
	for (int i = 0; i < 100 && r == -EEXIST; i++) {
		char sfx[32];
		if (i == 0)
			snprintf(sfx, sizeof(sfx), ".corrupt");
		else
			snprintf(sfx, sizeof(sfx), ".corrupt.%d", i);
		nv__fl_path(s, out, segno, sfx);
		if (keep) {
			r = s->io->link(s->io, path, out);
		} else {
			/* rename would replace an existing file: probe. */
			int fd = s->io->open(s->io, out, O_RDONLY, 0);
			if (fd >= 0) {
				s->io->close(s->io, fd);
				continue;
			}
			r = s->io->rename(s->io, path, out);
		}
	}
	if (r < 0)
		return nv__fl_fail(s, keep ? "link" : "rename", path, -r);
	nv__fl_stat_add(s, &s->st.quarantined, 1);
	return nv__fl_dir_sync(s);
}

static int
apply_cb(struct fl_store *s, const nv_rec *r, const uint8_t *raw, size_t len,
	 void *arg)
{
	const uint64_t *segno = arg;
	int rc = nv__fl_reserve(s, 1);
	if (rc == 0)
		nv__fl_apply(s, r, *segno, (uint32_t)len);
	return rc;
}

static void
max_into(uint64_t *dst, uint64_t v)
{
	if (v > *dst)
		*dst = v;
}

/* Scans segment si (the last one when last), folds it, and handles a bad
 * region. Leaves the last segment's descriptor in s->fd unless it had to
 * be sealed (*seal). */
static int
scan_one(struct fl_store *s, struct seg_info *si, bool last, uint64_t *floor,
	 bool *compact, bool *seal)
{
	char path[NV__FL_PATH], aside[NV__FL_PATH];
	struct fl_scan res;
	struct fl_seg *g;
	int fd, rc;

	nv__fl_path(s, path, si->segno, NULL);
	if ((rc = nv__fl_segs_push(s, si->segno, si->h.base_seq, si->size)))
		return rc;
	g = &s->segs[s->nsegs - 1];
	fd = s->io->open(s->io, path, last ? O_RDWR : O_RDONLY, 0);
	if (fd < 0) {
		nv__err("file store: cannot open %s: %s", path, strerror(-fd));
		return NV_EIO;
	}
	if (si->h.base_seq > *floor)
		*floor = si->h.base_seq;
	rc = nv__fl_scan(s, fd, si->size, *floor, apply_cb, &si->segno, &res);
	*floor = res.last_seq;
	if (rc == 0 && si->status != NV__DEC_OK) {
		/* A bad header is corruption, never a torn tail. */
		if (!res.bad)
			res.bad_off = 0;
		res.bad = res.resynced = true;
	}
	if (rc != 0) {
		s->io->close(s->io, fd);
		if (rc == NV_EIO)
			nv__err("file store: cannot read %s", path);
		return rc;
	}
	if (res.bad && last && !res.resynced) {
		uint64_t cut = si->size - res.good_end;
		int r = s->io->ftruncate(s->io, fd, res.good_end);
		if (r == 0 && s->fsync != NV_FSYNC_OFF)
			r = s->io->fdatasync(s->io, fd);
		if (r < 0) {
			s->io->close(s->io, fd);
			return nv__fl_fail(s, "truncate", path, -r);
		}
		g->size = res.good_end;
		nv__fl_stat_add(s, &s->st.truncated_bytes, cut);
		nv__warn("file store: %s: cut a torn tail of %llu bytes at "
			 "offset %llu (%llu records kept)",
			 path, (unsigned long long)cut,
			 (unsigned long long)res.good_end,
			 (unsigned long long)res.records);
	} else if (res.bad) {
		if ((rc = set_aside(s, si->segno, true, aside)) != 0) {
			s->io->close(s->io, fd);
			return rc;
		}
		nv__err("file store: %s is corrupt at offset %llu; kept its "
			"%llu readable records (%llu bytes skipped); the "
			"segment is saved as %s and its records are being "
			"rewritten",
			path, (unsigned long long)res.bad_off,
			(unsigned long long)res.records,
			(unsigned long long)(res.skipped +
					     (res.resynced
						  ? 0
						  : si->size - res.good_end)),
			aside);
		g->corrupt = true;
		*compact = true;
		if (last)
			*seal = true;
	}
	if (last && !*seal)
		s->fd = fd;
	else
		s->io->close(s->io, fd);
	return 0;
}

static int
recover(struct fl_store *s)
{
	struct seg_list l = {0};
	struct seg_info *si = NULL;
	uint64_t snap = 0, maxseg = 0, floor = 0;
	bool compact = false, seal = false, removed = false;
	size_t last = SIZE_MAX, nbytes;
	int r, rc = 0;

	r = s->io->list_dir(s->io, s->dir, list_cb, &l);
	if (r < 0 || l.err) {
		nv__err("file store: cannot list %s: %s", s->dir,
			r < 0 ? strerror(-r) : "out of memory");
		rc = l.err ? l.err : NV_EIO;
		goto out;
	}
	for (size_t i = 0; i < l.ntmp; i++) {
		char path[NV__FL_PATH];
		snprintf(path, sizeof(path), "%s/%s", s->dir, l.tmp[i]);
		nv__info("file store: removing unfinished compaction %s", path);
		if ((r = s->io->unlink(s->io, path)) < 0) {
			rc = nv__fl_fail(s, "unlink", path, -r);
			goto out;
		}
		removed = true;
	}
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), cmp_u64);
	nbytes = (l.n ? l.n : 1) * sizeof(*si);
	si = nv__malloc(nbytes);
	if (si == NULL) {
		rc = NV_ENOMEM;
		goto out;
	}
	memset(si, 0, nbytes);
	for (size_t i = 0; i < l.n; i++) {
		si[i].segno = l.v[i];
		maxseg = l.v[i];
		if ((rc = read_header(s, &si[i])) != 0)
			goto out;
		if (si[i].status == NV__DEC_NEWER) {
			nv__err("file store: %s/" NV__FL_SEG_FMT " is in a "
				"newer format than this nuvom reads (%u); "
				"not opening",
				s->dir, (unsigned long long)si[i].segno,
				NV__SEG_VERSION);
			rc = NV_ECORRUPT;
			goto out;
		}
		if (si[i].status == NV__DEC_OK &&
		    si[i].h.compacted_upto == si[i].segno)
			snap = si[i].segno;
	}
	for (size_t i = 0; i < l.n && si[i].segno < snap; i++) {
		char path[NV__FL_PATH];
		nv__fl_path(s, path, si[i].segno, NULL);
		nv__info(
		    "file store: removing %s, compacted into " NV__FL_SEG_FMT,
		    path, (unsigned long long)snap);
		if ((r = s->io->unlink(s->io, path)) < 0) {
			rc = nv__fl_fail(s, "unlink", path, -r);
			goto out;
		}
		si[i].gone = removed = true;
	}
	if (removed && (rc = nv__fl_dir_sync(s)) != 0)
		goto out;
	for (size_t i = 0; i < l.n; i++)
		if (!si[i].gone)
			last = i;
	for (size_t i = 0; i < l.n; i++) {
		char path[NV__FL_PATH], aside[NV__FL_PATH];
		if (si[i].gone || si[i].status == NV__DEC_OK)
			continue;
		nv__fl_path(s, path, si[i].segno, NULL);
		if (si[i].size > NV__SEG_HDR_LEN) {
			/* Records may still be readable: scan it as corrupt
			 * (scan_one keeps what it can and quarantines it). */
			nv__err("file store: %s has a bad header", path);
			si[i].h = (nv_seg_hdr){.segno = si[i].segno};
			continue;
		}
		si[i].gone = true;
		if (i == last) {
			/* Created, header never made it to disk: nothing in it
			 * was ever acknowledged. */
			nv__warn("file store: %s: removing a torn segment of "
				 "%llu bytes",
				 path, (unsigned long long)si[i].size);
			if ((r = s->io->unlink(s->io, path)) < 0 ||
			    (r = s->io->fsync_dir(s->io, s->dir)) < 0) {
				rc = nv__fl_fail(s, "unlink", path, -r);
				goto out;
			}
			nv__fl_stat_add(s, &s->st.truncated_bytes, si[i].size);
			continue;
		}
		if ((rc = set_aside(s, si[i].segno, false, aside)) != 0)
			goto out;
		nv__err("file store: %s has a bad header and no records; "
			"moved to %s",
			path, aside);
	}
	last = SIZE_MAX;
	for (size_t i = 0; i < l.n; i++) {
		if (si[i].gone)
			continue;
		last = i;
		max_into(&s->last_seq, si[i].h.base_seq);
		max_into(&s->max_job, si[i].h.max_job_id);
		max_into(&s->max_sched, si[i].h.max_sched_id);
	}
	for (size_t i = 0; i < l.n; i++) {
		if (si[i].gone)
			continue;
		rc = scan_one(s, &si[i], i == last, &floor, &compact, &seal);
		if (rc != 0)
			goto out;
	}
	if (s->nsegs == 0 || seal) {
		if ((rc = nv__fl_seg_create(s, maxseg + 1, true)) != 0)
			goto out;
	}
	if (compact)
		rc = nv__fl_compact(s);
out:
	nv__free(si);
	nv__free(l.v);
	nv__free(l.tmp);
	return rc;
}

int
nv__fl_open(nv_store **out, const nv_store_conf *conf)
{
	struct fl_store *s;
	char path[NV__FL_PATH];
	size_t len;
	int r, rc;

	if (out == NULL || conf == NULL || conf->path == NULL ||
	    conf->path[0] == '\0')
		return NV_EINVAL;
	len = strlen(conf->path);
	while (len > 1 && conf->path[len - 1] == '/')
		len--;
	if (len >= NV__FL_PATH - 128)
		return NV_EINVAL;
	s = nv__malloc(sizeof(*s));
	if (s == NULL)
		return NV_ENOMEM;
	memset(s, 0, sizeof(*s));
	s->base.ops = &nv__file_store_ops;
	s->io = conf->io ? conf->io : &nv__io_real;
	memcpy(s->dir, conf->path, len);
	s->fsync = conf->fsync;
	s->segment_bytes =
	    conf->segment_bytes ? conf->segment_bytes : NV__FL_DEFAULT_SEGMENT;
	s->compact_bytes =
	    conf->compact_bytes ? conf->compact_bytes : 2 * s->segment_bytes;
	s->retain = conf->retain_finished;
	s->fd = -1;
	s->lock_fd = -1;

	r = s->io->mkdir(s->io, s->dir, 0755);
	if (r < 0 && r != -EEXIST) {
		nv__err("file store: cannot create %s: %s", s->dir,
			strerror(-r));
		nv__fl_free(s);
		return NV_EIO;
	}
	snprintf(path, sizeof(path), "%s/LOCK", s->dir);
	s->lock_fd = s->io->lock(s->io, path);
	if (s->lock_fd < 0) {
		rc = s->lock_fd == -EWOULDBLOCK ? NV_EBUSY : NV_EIO;
		nv__err("file store: cannot lock %s: %s", path,
			rc == NV_EBUSY ? "in use by another process"
				       : strerror(-s->lock_fd));
		s->lock_fd = -1;
		nv__fl_free(s);
		return rc;
	}
	rc = recover(s);
	if (rc == 0)
		rc = __atomic_load_n(&s->failed, __ATOMIC_RELAXED);
	if (rc != 0) {
		nv__fl_free(s);
		return rc;
	}
	*out = &s->base;
	return 0;
}
