/*
 * engine/fold_int.h - folds a store's replayed records per job and
 * schedule id (engine/fold.c). Shared by recovery (recovery.c) and the
 * store-backed queue/result backends (backend_store.c), so both read a
 * store the same way.
 */
#ifndef NV_ENGINE_FOLD_INT_H
#define NV_ENGINE_FOLD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "persistence/store.h"

enum { NV__RJ_PENDING, NV__RJ_RETRY, NV__RJ_SUCCESS, NV__RJ_FAILED };

/* The folded state of one job. Strings and bytes are nv__malloc'd and
 * owned by the fold (a user may take one and set the field to NULL). */
struct nv__rjob {
	uint64_t id;
	uint32_t attempt;
	uint8_t state;
	bool enqueued; /* saw its JOB_ENQUEUED */
	int64_t created, due, started, finished;
	char *task;
	void *args;
	uint32_t alen;
	void *data; /* result or error */
	uint32_t dlen;
};

struct nv__rsched {
	uint64_t id;
	bool cancelled;
	int64_t next_ms, last_fired;
	char *task;
	void *args;
	uint32_t alen;
	char *spec;
};

struct nv__fidx {
	uint64_t id; /* 0 = empty */
	uint64_t pos; /* in jobs[] */
};

struct nv__fold {
	struct nv__rjob *jobs; /* n entries in first-seen (log) order */
	size_t n, capj;
	struct nv__fidx *idx;  /* open addressing by id: cap slots */
	size_t cap;
	struct nv__rsched *sch;
	size_t nsch, capsch;
	uint64_t max_job, max_sched; /* largest ids seen in the records */
	int rc;
};

/* Replays store into a zeroed *f. Returns 0 or the replay's / the fold's
 * error (NV_ENOMEM); f must be freed with nv__fold_free either way. */
int nv__fold_replay(struct nv__fold *f, nv_store *store);

/* The jobs whose JOB_ENQUEUED was seen, sorted by id (nv__malloc'd array
 * of pointers into f; *n entries). NULL with *n = 0 when there are none;
 * NULL with *n = SIZE_MAX when out of memory. */
struct nv__rjob **nv__fold_jobs(struct nv__fold *f, size_t *n);

void nv__fold_free(struct nv__fold *f);

/* A NUL-terminated nv__malloc'd copy of len bytes of s (NULL: ""). */
char *nv__fold_str(const char *s, uint32_t len);

#endif
