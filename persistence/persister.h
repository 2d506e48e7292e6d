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
 * Backpressure: the records submitted and not yet written (the backlog)
 * are bounded (conf max_backlog / max_backlog_bytes); a submit that finds
 * the bound reached parks until the thread has written some, or until its
 * timeout (NV_EFULL, nothing submitted). Coalescing: a STARTED record whose
 * job's outcome (SUCCEEDED, FAILED, RETRY of that attempt or later) is in
 * the same batch is left out of the write - the fold (filelog_index.c)
 * learns the attempt from the outcome, so the stored state is the same;
 * stores therefore see seqs that rise strictly but may skip.
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
	/* Backpressure: records (and their bytes) submitted but not yet
	 * handed to the store at most; 0 = the defaults below. A submit
	 * that finds either bound reached waits for room (submit_wait). */
	uint64_t max_backlog;	    /* records */
	uint64_t max_backlog_bytes; /* bytes of the big nodes (below) */
} nv_persister_conf;

#define NV__P_DEFAULT_BACKLOG ((uint64_t)1 << 18)	  /* records */
#define NV__P_DEFAULT_BACKLOG_BYTES ((uint64_t)256 << 20) /* 256 MiB */
/* Nodes (record + payload + ~100 bytes) over this size count against
 * max_backlog_bytes; smaller ones only against max_backlog. */
#define NV__P_BIG_NODE 512u

/* Takes ownership of an open store (closed by destroy). */
int nv__persister_create(nv_persister **out, nv_store *store,
			 const nv_persister_conf *conf);
int nv__persister_start(nv_persister *p);
/* Copies r (and the bytes it points to) into the inbox; sets r's seq in
 * *seq_out when not NULL. When the backlog is at its bound, waits (parked
 * on a condition variable) until the thread has written enough, at most
 * timeout_ms (< 0: no limit, 0: no wait); NV_EFULL when it is still full
 * then, and nothing was submitted. NV_EIO when failed, NV_ESTOPPED,
 * NV_ENOMEM, NV_EINVAL. Waiting cannot deadlock: the thread never waits on
 * a submitter (see persister.c). */
int nv__persister_submit_wait(nv_persister *p, const nv_rec *r,
			      uint64_t *seq_out, int timeout_ms);
/* submit_wait without a time limit. */
int nv__persister_submit(nv_persister *p, const nv_rec *r, uint64_t *seq_out);
/* Waits until every record submitted before the call is durable. */
int nv__persister_flush(nv_persister *p, int timeout_ms);
/* Drains, syncs and joins the thread. */
int nv__persister_stop(nv_persister *p);
void nv__persister_destroy(nv_persister *p);
int nv__persister_error(const nv_persister *p); /* 0 or NV_E* */
nv_store *nv__persister_store(nv_persister *p);

/* Counters for tests and benchmarks (relaxed reads; any thread). */
typedef struct nv_persister_stats {
	uint64_t backlog;	/* records submitted, not yet written */
	uint64_t backlog_bytes; /* their bytes, big nodes only */
	uint64_t backlog_peak;	/* highest backlog the thread saw */
	uint64_t full_waits;	/* submits that had to wait */
	uint64_t coalesced;	/* STARTED records left out */
} nv_persister_stats;
void nv__persister_stats(nv_persister *p, nv_persister_stats *out);
/* Sets the backlog bounds (0 = default). Owner only, before start (the
 * engine's store.c, tests). */
void nv__persister_set_backlog(nv_persister *p, uint64_t records,
			       uint64_t bytes);

#endif
