/*
 * persistence/persister.h - the write-behind persister thread.
 *
 * Producers (callers, workers, the scheduler) submit records without
 * waiting for disk: a submit copies the record into a node and pushes it
 * on a lock-free MPSC inbox (wait-free for producers). One persister thread
 * per store drains the inbox in batches, writes each batch with one store
 * write (group commit) and syncs per the fsync policy, then publishes the
 * highest durable sequence number. nv__persister_flush(p) waits until the
 * durable sequence reaches the last sequence submitted before the call.
 *
 * Threads: any thread may submit or flush; start/stop/destroy belong to the
 * owner (the engine). After a store failure, submit and flush return
 * NV_EIO (never a false "durable") and the state is in stats.
 */
#ifndef NV_PERSIST_PERSISTER_H
#define NV_PERSIST_PERSISTER_H

#include <stdint.h>

#include "persistence/record.h"
#include "persistence/store.h"

typedef struct nv_persister nv_persister;

typedef struct nv_persister_conf {
	nv_fsync_policy fsync;
	uint32_t interval_ms; /* group commit window (batch policy) */
	uint32_t max_batch;   /* records per write at most */
} nv_persister_conf;

/* Takes ownership of an open store (closed by destroy). */
int nv__persister_create(nv_persister **out, nv_store *store,
			 const nv_persister_conf *conf);
int nv__persister_start(nv_persister *p);
/* Copies r (and the bytes it points to) into the inbox; sets r's seq in
 * *seq_out when not NULL. NV_EIO when failed, NV_ENOMEM. */
int nv__persister_submit(nv_persister *p, const nv_rec *r, uint64_t *seq_out);
/* Waits until every record submitted before the call is durable. */
int nv__persister_flush(nv_persister *p, int timeout_ms);
/* Drains, syncs and joins the thread. */
int nv__persister_stop(nv_persister *p);
void nv__persister_destroy(nv_persister *p);
int nv__persister_error(const nv_persister *p); /* 0 or NV_E* */
nv_store *nv__persister_store(nv_persister *p);

#endif
