/*
 * persistence/coalesce.h - drops the STARTED records of a write batch that
 * a later outcome of the same job in the batch makes redundant.
 *
 * The fold (filelog_index.c, and the SQLite row) only takes the attempt
 * number from a STARTED record; an outcome (SUCCEEDED, FAILED, RETRY) of
 * the same attempt or a later one carries it too. So when one batch holds
 * a job's STARTED and, later, its outcome, with no ENQUEUED of that id
 * between them, writing the outcome alone leaves the same stored state.
 * Written in one write and made durable by one sync, the outcome is
 * durable exactly when the STARTED would have been; a job that crashes
 * the process never submits its outcome, so its STARTED is still written
 * (the crash counts as an attempt). Seqs of dropped records are skipped:
 * stores see seqs that rise strictly but may have gaps.
 *
 * Threads: one table per persister, used by its thread only.
 */
#ifndef NV_PERSIST_COALESCE_H
#define NV_PERSIST_COALESCE_H

#include <stddef.h>
#include <stdint.h>

#include "persistence/record.h"

struct nv_coalesce {
	struct nv_cslot *tab; /* open addressing, cap slots, <= 1/2 full */
	uint32_t cap, gen;    /* gen stamps the slots of the current batch */
	uint32_t max_batch;
};

/* A table for batches of up to max_batch records; 0 or NV_ENOMEM. */
int nv__coalesce_init(struct nv_coalesce *c, uint32_t max_batch);
void nv__coalesce_free(struct nv_coalesce *c);

/* Removes the redundant STARTED records from b[0..n) (n <= max_batch),
 * keeping the order of the others; returns how many are left. */
size_t nv__coalesce(struct nv_coalesce *c, nv_rec *b, size_t n);

#endif
