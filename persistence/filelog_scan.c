/*
 * filelog_scan.c - reading the records of one segment file.
 *
 * Open (recovery), replay and compaction all read segments the same way:
 * front to back through a window buffer filled with pread, decoding one
 * record at a time. A record is accepted only when its length is possible,
 * it fits in the file, its crc matches, its payload parses, and its seq is
 * above the previous one.
 *
 * At the first bad record the scan records where it happened and looks
 * further for a record that passes every check (a cheap plausibility test
 * on length, type and seq first, then the crc), so that one damaged record
 * in the middle of a segment does not hide the good records after it. If
 * none is found the bad bytes run to the end of the file: a torn tail.
 * The caller decides what to do (filelog.c: truncate a torn tail of the
 * last segment; quarantine anything else).
 *
 * Threads: called by whoever owns the store at the time; the window
 * buffer is local to a scan.
 */
#include <string.h>

#include "base/alloc.h"
#include "nuvom/error.h"
#include "persistence/filelog_int.h"

#define NV__FL_WINDOW ((size_t)1 << 20)
/* A resync candidate's seq must be within this distance of the last one. */
#define NV__FL_SEQ_JUMP ((uint64_t)1 << 40)

struct fl_reader {
	struct fl_store *s;
	int fd;
	uint64_t size;
	uint8_t *buf;
	size_t cap;
	uint64_t base; /* file offset of buf[0] */
	size_t len;    /* valid bytes in buf */
};

/* Makes [off, off + n) available (off + n <= size) and points *out at it.
 * 0, NV_EIO, NV_ENOMEM. */
static int
rd_get(struct fl_reader *rd, uint64_t off, size_t n, const uint8_t **out)
{
	size_t want, got = 0;

	if (off >= rd->base && off + n <= rd->base + rd->len) {
		*out = rd->buf + (off - rd->base);
		return 0;
	}
	if (n > rd->cap) {
		size_t cap = rd->cap;
		uint8_t *b;
		while (cap < n)
			cap *= 2;
		b = nv__malloc(cap);
		if (b == NULL)
			return NV_ENOMEM;
		nv__free(rd->buf);
		rd->buf = b;
		rd->cap = cap;
	}
	want = rd->size - off < rd->cap ? (size_t)(rd->size - off) : rd->cap;
	rd->len = 0;
	while (got < want) {
		ssize_t r = rd->s->io->pread(rd->s->io, rd->fd, rd->buf + got,
					     want - got, off + got);
		if (r <= 0) /* 0: the file shrank under us */
			return NV_EIO;
		got += (size_t)r;
	}
	rd->base = off;
	rd->len = want;
	*out = rd->buf;
	return 0;
}

/* Decodes a record at off. NV__DEC_OK (with *r, *raw, *used), NV__DEC_BAD,
 * or a negative NV_E* read error. */
static int
rd_record(struct fl_reader *rd, uint64_t off, uint64_t prev_seq, nv_rec *r,
	  const uint8_t **raw, size_t *used)
{
	const uint8_t *p;
	uint64_t left = rd->size - off;
	size_t need;
	int rc;

	if (left < NV__REC_HDR_LEN)
		return NV__DEC_BAD;
	if ((rc = rd_get(rd, off, NV__REC_HDR_LEN, &p)) != 0)
		return rc;
	need = nv__rec_peek_size(p);
	if (need == 0 || need > left)
		return NV__DEC_BAD;
	if ((rc = rd_get(rd, off, need, &p)) != 0)
		return rc;
	if (nv__rec_decode(p, need, r, used) != NV__DEC_OK ||
	    r->seq <= prev_seq)
		return NV__DEC_BAD;
	*raw = p;
	return NV__DEC_OK;
}

/* Looks for the next offset >= from holding a valid record; returns 1 and
 * sets *found, 0 when there is none, or a negative NV_E*. */
static int
resync(struct fl_reader *rd, uint64_t from, uint64_t prev_seq, uint64_t *found)
{
	const uint64_t probe = NV__REC_HDR_LEN + NV__REC_FIXED_LEN;

	for (uint64_t off = from;
	     off + NV__REC_HDR_LEN + NV__REC_MIN_BODY <= rd->size; off++) {
		const uint8_t *p, *raw;
		size_t need, used;
		uint64_t seq;
		nv_rec r;
		int rc;

		if ((rc = rd_get(rd, off, probe, &p)) != 0)
			return rc;
		need = nv__rec_peek_size(p);
		seq = nv__get_u64(p + NV__REC_HDR_LEN);
		if (need == 0 || need > rd->size - off || seq <= prev_seq ||
		    seq - prev_seq > NV__FL_SEQ_JUMP ||
		    p[NV__REC_HDR_LEN + 8] < 1 ||
		    p[NV__REC_HDR_LEN + 8] > NV_REC_TYPE_MAX)
			continue;
		rc = rd_record(rd, off, prev_seq, &r, &raw, &used);
		if (rc < 0)
			return rc;
		if (rc == NV__DEC_OK) {
			*found = off;
			return 1;
		}
	}
	return 0;
}

int
nv__fl_scan(struct fl_store *s, int fd, uint64_t size, uint64_t floor,
	    fl_scan_fn fn, void *arg, struct fl_scan *res)
{
	struct fl_reader rd = {.s = s, .fd = fd, .size = size};
	uint64_t off = NV__SEG_HDR_LEN, prev = floor;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	res->good_end = off;
	rd.cap = NV__FL_WINDOW;
	rd.buf = nv__malloc(rd.cap);
	if (rd.buf == NULL)
		return NV_ENOMEM;
	/* A header-only segment (or a shorter one) has no records. */
	while (off < size) {
		const uint8_t *raw;
		size_t used;
		nv_rec r;
		uint64_t next = 0;

		rc = rd_record(&rd, off, prev, &r, &raw, &used);
		if (rc < 0)
			break;
		if (rc == NV__DEC_OK) {
			res->records++;
			off += used;
			res->good_end = off;
			prev = r.seq;
			rc = fn ? fn(s, &r, raw, used, arg) : 0;
			if (rc != 0)
				break;
			continue;
		}
		if (!res->bad) {
			res->bad = true;
			res->bad_off = off;
		}
		rc = resync(&rd, off + 1, prev, &next);
		if (rc <= 0)
			break; /* torn tail (0) or read error */
		res->resynced = true;
		res->skipped += next - off;
		off = next;
		rc = 0;
	}
	res->last_seq = prev;
	nv__free(rd.buf);
	return rc;
}
