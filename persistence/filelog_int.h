/*
 * persistence/filelog_int.h - internals of the file store, shared by
 * filelog.c (open, recovery, write, sync, replay), filelog_index.c (the
 * in-memory fold), filelog_scan.c (reading segments) and compact.c.
 *
 * Not a public interface: everything here is owned by one struct fl_store
 * and used by one thread at a time (the opener, then the persister), except
 * the stats counters, which other threads may read (relaxed atomics).
 */
#ifndef NV_PERSIST_FILELOG_INT_H
#define NV_PERSIST_FILELOG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "persistence/codec.h"
#include "persistence/io.h"
#include "persistence/store.h"

#define NV__FL_DEFAULT_SEGMENT ((size_t)64 << 20)
#define NV__FL_SEG_FMT "seg-%016llx.log"
#define NV__FL_PATH 4096

/* One segment file. Records refer to a segment by number; after a
 * compaction merges every segment <= K into K, a number that no longer
 * exists resolves to the next one that does (fl_seg_find). */
struct fl_seg {
	uint64_t segno;
	uint64_t base_seq;   /* from its header */
	uint64_t size;	     /* file size (header included) */
	uint64_t rec_bytes;  /* bytes of records in it */
	uint64_t live_bytes; /* bytes of its records that are still live */
	uint64_t live_count; /* number of those records */
	bool corrupt;	     /* quarantined (linked to .corrupt): compact */
};

/* The fold of one id: a job (a = ENQUEUED, b = its outcome: SUCCEEDED,
 * FAILED or the last RETRY) or a schedule (a = SCHED_ADDED, b = the
 * latest SCHED_FIRED). A seq of 0 means absent. */
struct fl_ent {
	uint64_t id;
	uint64_t a_seq, b_seq;
	uint64_t a_seg, b_seg;
	uint32_t a_len, b_len;
	uint32_t attempts; /* jobs: attempts done, folded from every record */
	uint8_t b_type;
	uint8_t used;
};

/* Map id -> fl_ent: a dense entry array plus an open-addressing key
 * table (linear probing, backward-shift deletion, power-of-two capacity);
 * filelog_index.c. */
struct fl_key {
	uint64_t id;
	uint64_t idx1; /* entry index + 1; 0 = empty slot */
};
struct fl_map {
	struct fl_key *keys;
	size_t cap;	     /* key slots */
	struct fl_ent *ents; /* ents[0..count) */
	size_t count, ents_cap;
};

/* A finished job in finish order (for retention); stale entries (the job
 * changed since) are skipped when popped. */
struct fl_fin {
	uint64_t seq, id;
};

struct fl_store {
	nv_store base; /* first: the ops pointer */
	const nv_io_ops *io;
	char dir[NV__FL_PATH - 128];
	nv_fsync_policy fsync;
	uint64_t segment_bytes, compact_bytes, retain;
	int lock_fd;

	struct fl_seg *segs; /* ascending segno; the last one is active */
	size_t nsegs, segs_cap;
	int fd;		  /* the active segment, open for append */
	bool dirty;	  /* written since the last sync */
	bool compact_off; /* compaction found a mismatch: stay off */

	struct fl_map jobs, scheds;
	uint64_t finished; /* jobs whose outcome is final */
	struct fl_fin *finq;
	size_t fin_head, fin_len, fin_cap; /* ring buffer */

	uint8_t *wbuf;
	size_t wcap;
	uint32_t *sizes; /* write(): each record's encoded size */
	size_t szcap;

	uint64_t last_seq, max_job, max_sched; /* atomic (relaxed) */
	nv_store_stats st;		       /* atomic fields (relaxed) */
	int failed;			       /* atomic: 0 or NV_E* */
};

#define FL(s) ((struct fl_store *)(s))

/* filelog_index.c */
void nv__fl_map_free(struct fl_map *m);
struct fl_ent *nv__fl_map_get(struct fl_map *m, uint64_t id);
/* Prefetches the home slot of r's id (a hint; no effect on the fold). */
void nv__fl_prefetch(struct fl_store *s, const nv_rec *r);
/* Makes room for n more entries in both maps and the finish queue so that
 * nv__fl_apply cannot fail; NV_ENOMEM. */
int nv__fl_reserve(struct fl_store *s, size_t n);
/* Folds record r, stored as len bytes in segment segno, into the index. */
void nv__fl_apply(struct fl_store *s, const nv_rec *r, uint64_t segno,
		  uint32_t len);
/* The entry that keeps r live, or NULL when r is dead. */
struct fl_ent *nv__fl_live(struct fl_store *s, const nv_rec *r);
struct fl_seg *nv__fl_seg_find(struct fl_store *s, uint64_t segno);

/* filelog_scan.c */
struct fl_scan {
	uint64_t good_end; /* end of the last valid record */
	uint64_t bad_off;  /* first bad byte, when bad */
	uint64_t skipped;  /* bytes skipped by resyncs */
	uint64_t records;  /* valid records */
	uint64_t last_seq; /* seq of the last valid record (or the floor) */
	bool bad;	   /* a bad record or torn tail was met */
	bool resynced;	   /* valid records were found after a bad one */
};
/* Called for each valid record: raw/len are its bytes on disk. Non-zero
 * stops the scan and is returned by it. */
typedef int (*fl_scan_fn)(struct fl_store *s, const nv_rec *r,
			  const uint8_t *raw, size_t len, void *arg);
/* Reads the records of a segment file of the given size (header already
 * checked) with fd, from NV__SEG_HDR_LEN. Only records with seqs above
 * floor count (seqs rise across the whole log: callers pass the segment's
 * base seq or the last seq of the segments before it, whichever is
 * higher). 0, the callback's value, NV_EIO on a read error, NV_ENOMEM. */
int nv__fl_scan(struct fl_store *s, int fd, uint64_t size, uint64_t floor,
		fl_scan_fn fn, void *arg, struct fl_scan *res);

/* filelog.c */
void nv__fl_path(const struct fl_store *s, char *buf, uint64_t segno,
		 const char *suffix);
/* Puts the store in the failed state (once, logged); returns NV_EIO. */
int nv__fl_fail(struct fl_store *s, const char *what, const char *file,
		int err);
int nv__fl_write_all(struct fl_store *s, int fd, const uint8_t *buf, size_t n,
		     uint64_t off, const char *file);
void nv__fl_stat_add(struct fl_store *s, uint64_t *field, uint64_t n);
int nv__fl_dir_sync(struct fl_store *s);
int nv__fl_segs_push(struct fl_store *s, uint64_t segno, uint64_t base_seq,
		     uint64_t size);
/* Creates segment segno (header only) and makes it the active one. */
int nv__fl_seg_create(struct fl_store *s, uint64_t segno, bool sync_dir);
/* Closes the descriptors and frees s (no I/O beyond close). */
void nv__fl_free(struct fl_store *s);

/* filelog_open.c */
int nv__fl_open(nv_store **out, const nv_store_conf *conf);

/* compact.c */
/* Rewrites the live records of every sealed segment into one snapshot
 * segment and deletes the old ones (crash-safe; see compact.c). */
int nv__fl_compact(struct fl_store *s);
int nv__fl_maintain(nv_store *st);

#endif
