/*
 * persistence/store.h - the store method table (file log, SQLite, plugins).
 *
 * A store persists job event records. Like sqlite3_io_methods, a store is
 * a versioned table of methods; an instance begins with a pointer to its
 * table. The persister thread is the only caller of write/sync/maintain on
 * an open store; replay runs before the persister starts (recovery).
 *
 * Failure contract: once write or sync fails, the store is "failed": later
 * calls return the same error, never a false success, and sync is never
 * retried on the same descriptor (a failed fsync may have dropped dirty
 * pages). The caller surfaces the state (nv_flush -> NV_EIO).
 */
#ifndef NV_PERSIST_STORE_H
#define NV_PERSIST_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nuvom.h"
#include "persistence/record.h"

typedef struct nv_store nv_store;

#define NV_STORE_OPS_VERSION 1

typedef struct nv_store_conf {
	const char *path;       /* file store: directory; sqlite: db file */
	nv_fsync_policy fsync;  /* what sync() does */
	size_t segment_bytes;   /* file store: rotate at this size (64 MiB) */
	size_t compact_bytes;   /* file store: compact when dead bytes exceed */
	const struct nv_io_ops *io; /* file store I/O layer; NULL = real */
	uint64_t retain_finished; /* finished jobs the fold keeps (oldest
				     dropped first); 0 = keep all */
} nv_store_conf;

typedef struct nv_store_stats {
	uint64_t records, bytes, syncs, batches;
	uint64_t truncated_bytes; /* cut from a torn tail at open */
	uint64_t quarantined;     /* segments moved aside as .corrupt */
	uint64_t compactions;
	int failed;               /* 0 or the NV_E* code of the failure */
	uint64_t last_seq;        /* highest seq written or recovered; the
				     persister continues after it */
} nv_store_stats;

typedef struct nv_store_ops {
	unsigned version; /* NV_STORE_OPS_VERSION; methods below are v1 */
	const char *name; /* "file", "sqlite", ... */
	/* Opens (creating if needed) and checks the store; recovery of a torn
	 * tail happens here. Errors: NV_EIO / NV_ECORRUPT with a message
	 * naming the file logged; *out untouched. */
	int (*open)(nv_store **out, const nv_store_conf *conf);
	void (*close)(nv_store *s);
	/* Calls fn for every live record in write (seq) order. */
	int (*replay)(nv_store *s, nv_rec_fn fn, void *arg);
	/* Appends a batch of records (one group commit). Not durable until
	 * sync returns 0. */
	int (*write)(nv_store *s, const nv_rec *recs, size_t n);
	/* Makes every written record durable per conf->fsync. */
	int (*sync)(nv_store *s);
	/* Optional (may be NULL): rotation/compaction work between batches. */
	int (*maintain)(nv_store *s);
	void (*stats)(nv_store *s, nv_store_stats *out);
	/* Largest job id and schedule id ever written (ids never repeat). */
	void (*max_ids)(nv_store *s, uint64_t *job_id, uint64_t *sched_id);
} nv_store_ops;

struct nv_store {
	const nv_store_ops *ops;
};

/* Built-in stores. */
extern const nv_store_ops nv__file_store_ops;
extern const nv_store_ops nv__sqlite_store_ops;

/* Finds a store by name ("file", "sqlite"); NULL when unknown. */
const nv_store_ops *nv__store_find(const char *name);

#endif
