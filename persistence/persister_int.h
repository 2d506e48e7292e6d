/*
 * persistence/persister_int.h - the persister's state, shared by
 * persister.c (inbox, thread, API) and persister_room.c (backpressure:
 * the bound on the backlog, parked submits, statistics). Not a public
 * interface; the threads and atomics are described in persister.c.
 */
#ifndef NV_PERSIST_PERSISTER_INT_H
#define NV_PERSIST_PERSISTER_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "persistence/coalesce.h"
#include "persistence/persister.h"
#include "persistence/reorder.h"

#define NV__CACHELINE 64

struct qnode {
	struct qnode *next; /* atomic */
};

struct pnode {
	struct qnode q;	 /* first: a qnode * is a pnode * */
	nv_rec rec;	 /* task/data/aux point into bytes[] */
	uint64_t nbytes; /* node size (in backlog_bytes when big) */
	bool cancelled;	 /* submitted while stopping: fills its seq only */
	uint8_t bytes[];
};

struct nv_persister {
	/* Producers' line. */
	struct qnode *tail __attribute__((aligned(NV__CACHELINE))); /* atomic */
	uint64_t next_seq; /* atomic: the next seq to hand out */

	/* Flags read by everyone, written rarely. */
	int sleeping __attribute__((aligned(NV__CACHELINE))); /* atomic */
	int stopping;					      /* atomic */
	int error;					      /* atomic */
	int flush_waiters;				      /* atomic */
	uint64_t released;	/* atomic: every seq <= it was released */
	uint64_t backlog_bytes; /* atomic: nbytes of the big nodes out */
	uint64_t backlog_peak;	/* atomic (relaxed): statistics */
	int room_waiters;	/* atomic: submits parked for room */
	int running;		/* atomic: the thread was started */
	uint64_t durable;	/* atomic: every seq <= durable is durable */
	uint64_t full_waits, coalesced; /* atomic (relaxed): statistics */

	pthread_mutex_t lock;
	pthread_cond_t wake_cv;	 /* the thread sleeps here */
	pthread_cond_t flush_cv; /* flushers sleep here */
	pthread_cond_t room_cv;	 /* submits wait for room here */

	/* The thread's own (and the owner's before start / after join). */
	struct qnode *head __attribute__((aligned(NV__CACHELINE)));
	struct qnode stub;
	nv_store *store;
	nv_persister_conf conf;
	pthread_t thread;
	bool started, joined;
	int exited;	      /* atomic: the thread has returned */
	struct nv_reorder ro; /* early nodes (reorder.h) */
	uint64_t written;     /* highest seq written (or skipped), contiguous */
	nv_rec *batch;
	struct pnode **bnodes;
	uint64_t last_sync_ms;
	uint64_t rel_bytes;    /* big nodes' bytes freed, not yet subtracted */
	struct nv_coalesce co; /* STARTED coalescing (coalesce.h) */
};

/* persister_room.c */
void nv__p_wake_room(nv_persister *p); /* wakes parked submits */
/* True when a node of nbytes may not be submitted now (an estimate that
 * errs towards admitting; exact when it says full). */
bool nv__p_over_fast(nv_persister *p, uint64_t nbytes);
/* Parks until a node of nbytes fits. 0 (also at once before start),
 * NV_EFULL (timeout), NV_EIO, NV_ESTOPPED. */
int nv__p_wait_room(nv_persister *p, uint64_t nbytes, int timeout_ms);
/* The seq this thread took last, and from which persister: a lower bound
 * of next_seq that costs no load of the producers' contended line. */
struct nv__p_last {
	const nv_persister *p;
	uint64_t seq;
};
extern __thread struct nv__p_last nv__p_tl_last;

/* Notes the seq this thread just took from p (for nv__p_over_fast). */
static inline void
nv__p_note_seq(nv_persister *p, uint64_t seq)
{
	nv__p_tl_last.p = p;
	nv__p_tl_last.seq = seq;
}

#endif
