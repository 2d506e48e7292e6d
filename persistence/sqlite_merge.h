/*
 * persistence/sqlite_merge.h - folds the records of one write batch that
 * touch the same job into one row write (sqlite_merge.c).
 *
 * The SQLite store keeps one row per job. A batch often holds a job's
 * whole life (ENQUEUED, STARTED, SUCCEEDED); applied one by one that is an
 * INSERT and two UPDATEs, each also moving the row in the status index.
 * The plan folds every job record that follows a job's ENQUEUED in the
 * batch (up to the next ENQUEUED of that id) into the ENQUEUED's row, so
 * that one upsert writes the final state. The fold mirrors the SQL of the
 * single-record statements exactly (sqlite_store.c), so the row is the one
 * the records applied in order would leave.
 *
 * Threads: a plan belongs to its store (the persister thread).
 */
#ifndef NV_PERSIST_SQLITE_MERGE_H
#define NV_PERSIST_SQLITE_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "persistence/record.h"

/* A job row as the folded records leave it. */
struct sqm_row {
	int status; /* 0 pending, 1 running, 2 success, 3 failed */
	uint32_t attempts;
	int64_t created_ms, updated_ms, due_ms;
	int has_due;	    /* due_ms is set (else NULL) */
	const void *result; /* NULL: SQL NULL */
	uint32_t result_len;
	const char *error; /* NULL: SQL NULL */
	uint32_t error_len;
	uint32_t finals; /* SUCCEEDED/FAILED records folded in */
};

/* What write() does with recs[i]. */
enum { SQM_APPLY = -1, SQM_SKIP = -2 };

struct sqm_plan {
	int32_t *act; /* per record: SQM_APPLY, SQM_SKIP, or a row index
		       * (an ENQUEUED that writes rows[act]) */
	struct sqm_row *rows;
	size_t cap;	      /* act and rows hold cap entries */
	struct sqm_slot *tab; /* id -> row index, tcap slots */
	size_t tcap;
	uint32_t gen;
	size_t merged; /* records folded away by the last plan */
};

/* Plans recs[0..n). 0, or NV_ENOMEM (then apply every record as is). */
int nv__sqm_plan(struct sqm_plan *p, const nv_rec *recs, size_t n);
void nv__sqm_free(struct sqm_plan *p);

/* Binds the row columns ?4 and ?6..?10 of the jobs upsert (ST_ENQ in
 * sqlite_store.c) for ENQUEUED r: r alone (w == NULL: status 0, updated
 * = created, the rest NULL) or the folded row w. SQLite result code. */
struct sqlite3_stmt;
int nv__sqm_bind(struct sqlite3_stmt *st, const nv_rec *r,
		 const struct sqm_row *w);

#endif
