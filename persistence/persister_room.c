/*
 * persister_room.c - backpressure on the persister's inbox (persister.h).
 *
 * The backlog is the records submitted and not yet released by the
 * thread (it releases a node once the write that carried it returned, or
 * when it discards it). Nodes are released in seq order, so the thread
 * publishes `released` (every seq <= it is released) and the backlog is
 * next_seq - 1 - released: no extra read-modify-write on the producers'
 * contended line, and a thread checks against the seq it took last
 * (nv__p_over_fast) rather than even loading next_seq. Big nodes (over
 * NV__P_BIG_NODE bytes) are also counted in `backlog_bytes`, which bounds
 * the memory of large payloads; small ones are bounded by the record
 * count alone.
 *
 * A submit that finds a bound reached parks on room_cv before it
 * allocates or takes a seq, so a submit that gives up (NV_EFULL at its
 * timeout, NV_ESTOPPED, NV_EIO) leaves nothing behind. Waiters and the
 * thread form a Dekker pair over `room_waiters` and `released` /
 * `backlog_bytes` (seq_cst, like flush). The bound is checked, then the
 * seq taken, so submitters racing the check may pass it by one record
 * each; so may a thread whose last seq is behind next_seq.
 *
 * Waiting cannot deadlock: the thread never waits for a producer, a
 * worker or the scheduler (it only pops, writes and syncs), so the backlog
 * drains as long as the store makes progress; a failed store discards
 * (and so releases) everything and wakes the waiters with NV_EIO, stop
 * wakes them with NV_ESTOPPED. Before start the bound does not apply:
 * there is no thread to make room, and the records of jobs dispatched to
 * an engine that has not started are written at its start (as before the
 * bound existed).
 *
 * Threads: any submitter (over, wait); the persister thread releases
 * (persister.c: release) and wakes the waiters here.
 */
#include <errno.h>
#include <pthread.h>

#include "base/clock.h"
#include "persistence/persister_int.h"

void
nv__p_wake_room(nv_persister *p)
{
	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->room_cv);
	pthread_mutex_unlock(&p->lock);
}

/* True when a node of nbytes would pass a bound (seq_cst loads: the
 * waiter's half of the Dekker pair with release()). A node larger than the
 * byte bound passes when nothing else is outstanding. */
static bool
over(nv_persister *p, uint64_t nbytes)
{
	/* released first: it never passes next_seq - 1, and next_seq only
	 * grows, so the difference cannot wrap. */
	uint64_t rel = __atomic_load_n(&p->released, __ATOMIC_SEQ_CST);
	uint64_t next = __atomic_load_n(&p->next_seq, __ATOMIC_SEQ_CST);
	uint64_t b;

	if (next - 1 - rel >= p->conf.max_backlog)
		return true;
	if (nbytes <= NV__P_BIG_NODE)
		return false;
	b = __atomic_load_n(&p->backlog_bytes, __ATOMIC_SEQ_CST);
	return b > 0 && b + nbytes > p->conf.max_backlog_bytes;
}

__thread struct nv__p_last nv__p_tl_last;

/* over() without loading next_seq when this thread submitted to p before:
 * its last seq stands for next_seq. The estimate is low by the records
 * others submitted since, so the bound may be passed by one record per
 * thread (as with racing exact checks); the thread's next check uses its
 * fresh seq. An estimate that is high (a new persister at a reused
 * address) only leads to the exact check. */
bool
nv__p_over_fast(nv_persister *p, uint64_t nbytes)
{
	uint64_t rel;

	uint64_t last = nv__p_tl_last.seq;

	if (nv__p_tl_last.p != p || nbytes > NV__P_BIG_NODE)
		return over(p, nbytes);
	rel = __atomic_load_n(&p->released, __ATOMIC_SEQ_CST);
	return last > rel && last - rel >= p->conf.max_backlog &&
	       over(p, nbytes);
}

int
nv__p_wait_room(nv_persister *p, uint64_t nbytes, int timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	/* Before start the backlog is not bounded (see the essay). Acquire:
	 * pairs with the release store in start. */
	if (!__atomic_load_n(&p->running, __ATOMIC_ACQUIRE))
		return 0;
	if (timeout_ms == 0)
		return NV_EFULL;
	if (timeout_ms > 0)
		ts = nv__deadline_ts((uint64_t)timeout_ms);
	__atomic_add_fetch(&p->full_waits, 1, __ATOMIC_RELAXED);
	/* Dekker pair with release(): increment, then read the counters. */
	__atomic_add_fetch(&p->room_waiters, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&p->lock);
	while (over(p, nbytes)) {
		if (__atomic_load_n(&p->error, __ATOMIC_SEQ_CST)) {
			rc = NV_EIO;
			break;
		}
		if (__atomic_load_n(&p->stopping, __ATOMIC_SEQ_CST) ||
		    __atomic_load_n(&p->exited, __ATOMIC_SEQ_CST)) {
			rc = NV_ESTOPPED;
			break;
		}
		if (timeout_ms < 0) {
			pthread_cond_wait(&p->room_cv, &p->lock);
		} else if (pthread_cond_timedwait(&p->room_cv, &p->lock, &ts) ==
			   ETIMEDOUT) {
			rc = over(p, nbytes) ? NV_EFULL : 0;
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	__atomic_sub_fetch(&p->room_waiters, 1, __ATOMIC_SEQ_CST);
	return rc;
}

void
nv__persister_stats(nv_persister *p, nv_persister_stats *out)
{
	/* released before next_seq, as in over(); the rest relaxed. */
	uint64_t rel = __atomic_load_n(&p->released, __ATOMIC_SEQ_CST);
	uint64_t next = __atomic_load_n(&p->next_seq, __ATOMIC_SEQ_CST);
	out->backlog = next - 1 - rel;
	out->backlog_bytes =
	    __atomic_load_n(&p->backlog_bytes, __ATOMIC_RELAXED);
	out->backlog_peak = __atomic_load_n(&p->backlog_peak, __ATOMIC_RELAXED);
	out->full_waits = __atomic_load_n(&p->full_waits, __ATOMIC_RELAXED);
	out->coalesced = __atomic_load_n(&p->coalesced, __ATOMIC_RELAXED);
}

void
nv__persister_set_backlog(nv_persister *p, uint64_t records, uint64_t bytes)
{
	p->conf.max_backlog = records ? records : NV__P_DEFAULT_BACKLOG;
	p->conf.max_backlog_bytes = bytes ? bytes : NV__P_DEFAULT_BACKLOG_BYTES;
}
