/*
 * persister.c - the write-behind persister thread (persister.h).
 *
 * Inbox. Producers never wait for disk: a submit copies the record and its
 * bytes into one node, takes the next seq from an atomic counter, and
 * pushes the node on an intrusive MPSC queue (Vyukov's: one exchange on
 * the tail, then a release store linking the previous node - wait-free for
 * producers). The queue is private to this file and uses __atomic
 * builtins so that ThreadSanitizer sees every ordering.
 *
 * Order. Taking a seq and pushing are two steps, so nodes can arrive out
 * of seq order (a producer preempted between them). The thread takes
 * nodes in seq order: one that arrives early waits until the seqs before
 * it have come, in the reorder buffer (reorder.h: a window indexed by seq,
 * a heap beyond it); nodes in order, the common case, never go there. A
 * gap waits for its producer, whose push wakes the thread. So the store
 * sees seqs strictly increasing, and "durable up to S" always means every
 * seq <= S.
 *
 * Group commit. The thread takes what is available, writes it in batches
 * of up to max_batch records with one store write each, then syncs per
 * policy:
 * ALWAYS after every write; BATCH when a flusher waits, when interval_ms
 * has passed since the last sync, or when stopping; OFF never (a written
 * record counts as durable: safe from a process crash, not a power cut).
 * After a sync it publishes the durable seq and wakes the flushers.
 * maintain() (compaction) runs after a sync, between batches.
 *
 * Sleeping. The thread sleeps on a condition variable when it has nothing
 * to do (with a deadline when BATCH data awaits its sync). The flag
 * `sleeping` and the inbox tail form a Dekker pair (seq_cst operations,
 * no fences, so that ThreadSanitizer follows it): the thread sets the
 * flag and looks at the tail once more; a producer exchanges the tail and
 * reads the flag; at least one of them sees the other, so no wake-up is
 * lost, and producers touch the mutex only when the thread really
 * sleeps.
 *
 * Flush. nv__persister_flush reads the seq counter (everything submitted
 * before the call has a seq below it) and waits on a condition variable
 * until the durable seq reaches it. Flushers and the thread form the same
 * kind of Dekker pair over `flush_waiters` and `durable`.
 *
 * Stop. stop sets `stopping`; a submit that sees it after taking its seq
 * pushes its node marked cancelled (filling its seq without being written)
 * and returns NV_ESTOPPED. The thread reads the seq counter after seeing
 * `stopping`, drains and writes everything below it, syncs, and exits.
 *
 * Failure. A failed store write or sync sets `error` (NV_EIO): flushers
 * wake and return NV_EIO, later submits and flushes return NV_EIO, and the
 * thread discards what it pops from then on. Nothing is ever reported
 * durable after the failure.
 *
 * Backpressure (persister_room.c): the records submitted and not yet
 * written are bounded; a submit that finds the bound reached parks, before
 * it allocates or takes a seq, until the thread releases written nodes
 * (release(), in seq order: `released`) or its timeout passes.
 *
 * Coalescing. Before a batch is written, nv__coalesce (coalesce.c) leaves
 * out the STARTED records that a later outcome of the same job in the
 * batch makes redundant; the nodes are still freed after the write.
 */
#include "persistence/persister.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "persistence/codec.h"
#include "persistence/persister_int.h"

#define NV__P_DEFAULT_BATCH 1024u
#define NV__P_IDLE_MS                                                          \
	1000u /* safety net: an idle thread checks once a second */

/* ---------------------------------------------------------------- inbox */

static void
q_push(nv_persister *p, struct qnode *n)
{
	struct qnode *prev;
	__atomic_store_n(&n->next, NULL, __ATOMIC_RELAXED);
	/* seq_cst (acq_rel would do for the queue itself): also the write
	 * half of the Dekker pair with sleep_until (see there). */
	prev = __atomic_exchange_n(&p->tail, n, __ATOMIC_SEQ_CST);
	/* Pairs with the acquire loads of ->next in q_pop. */
	__atomic_store_n(&prev->next, n, __ATOMIC_RELEASE);
}

/* Consumer only. NULL when empty or when the next push is half done (its
 * producer will wake us when it links). */
static struct qnode *
q_pop(nv_persister *p)
{
	struct qnode *h = p->head, *next, *t;

	next = __atomic_load_n(&h->next, __ATOMIC_ACQUIRE);
	if (h == &p->stub) {
		if (next == NULL)
			return NULL;
		p->head = h = next;
		next = __atomic_load_n(&h->next, __ATOMIC_ACQUIRE);
	}
	if (next != NULL) {
		p->head = next;
		return h;
	}
	t = __atomic_load_n(&p->tail, __ATOMIC_ACQUIRE);
	if (t != h)
		return NULL;
	q_push(p, &p->stub);
	next = __atomic_load_n(&h->next, __ATOMIC_ACQUIRE);
	if (next != NULL) {
		p->head = next;
		return h;
	}
	return NULL;
}

/* ---------------------------------------------------------------- thread */

static void
wake_flushers(nv_persister *p)
{
	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->flush_cv);
	pthread_mutex_unlock(&p->lock);
}

static void
publish(nv_persister *p, uint64_t seq)
{
	/* seq_cst store, then seq_cst load of flush_waiters: the Dekker
	 * pair with nv__persister_flush (increment, then load durable). */
	__atomic_store_n(&p->durable, seq, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&p->flush_waiters, __ATOMIC_SEQ_CST) > 0)
		wake_flushers(p);
}

static void
fail(nv_persister *p, int rc, const char *what)
{
	if (__atomic_load_n(&p->error, __ATOMIC_RELAXED) == 0) {
		nv__err("persister: store %s failed (%s); records are refused "
			"from now on",
			what, nv_strerror(rc));
		/* seq_cst: flushers check error after waking. */
		__atomic_store_n(&p->error, NV_EIO, __ATOMIC_SEQ_CST);
	}
	wake_flushers(p);
	nv__p_wake_room(p); /* parked submits return NV_EIO */
}

static void
drop_node(void *n)
{
	nv__free(n);
}

/* Frees a node the thread took; its backlog share is given back by the
 * next release(). */
static void
node_free(nv_persister *p, struct pnode *n)
{
	if (n->nbytes > NV__P_BIG_NODE)
		p->rel_bytes += n->nbytes;
	nv__free(n);
}

/* Publishes that every seq up to p->written is released (their nodes were
 * freed), gives the big nodes' bytes back, and wakes parked submitters.
 * The seq_cst store / subtraction and the seq_cst load of room_waiters
 * are the thread's half of the Dekker pair with nv__p_wait_room (increment
 * room_waiters, then load released and backlog_bytes). */
static void
release(nv_persister *p)
{
	uint64_t out, peak;

	if (__atomic_load_n(&p->released, __ATOMIC_RELAXED) == p->written)
		return;
	/* Statistics: the backlog before this release (relaxed; released is
	 * this thread's own, below next_seq). */
	out = __atomic_load_n(&p->next_seq, __ATOMIC_RELAXED) - 1 -
	      __atomic_load_n(&p->released, __ATOMIC_RELAXED);
	peak = __atomic_load_n(&p->backlog_peak, __ATOMIC_RELAXED);
	if (out > peak)
		__atomic_store_n(&p->backlog_peak, out, __ATOMIC_RELAXED);
	if (p->rel_bytes) {
		__atomic_sub_fetch(&p->backlog_bytes, p->rel_bytes,
				   __ATOMIC_SEQ_CST);
		p->rel_bytes = 0;
	}
	__atomic_store_n(&p->released, p->written, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&p->room_waiters, __ATOMIC_SEQ_CST) > 0)
		nv__p_wake_room(p);
}

/* Takes the next node in seq order: from the reorder buffer when it holds
 * it, else from the inbox (a node that arrives early goes to the reorder
 * buffer). NULL when the next seq is not here yet. */
static struct pnode *
next_node(nv_persister *p)
{
	for (;;) {
		uint64_t want = p->written + 1;
		struct pnode *x;
		struct qnode *q;
		if (nv__ro_len(&p->ro) > 0 &&
		    (x = nv__ro_take(&p->ro, want)) != NULL)
			return x;
		q = q_pop(p);
		if (q == NULL)
			return NULL;
		x = (struct pnode *)q;
		if (x->rec.seq <= want)
			return x; /* the common case: in order */
		if (!nv__ro_put(&p->ro, x->rec.seq, want, x)) {
			/* Cannot hold it back: the store would get a gap. */
			fail(p, NV_ENOMEM, "reorder buffer");
			node_free(p, x);
		}
	}
}

/* Writes one batch of up to max_batch consecutive records (more only when
 * a batch was all cancelled nodes). One batch per call, so that under a
 * steady stream the main loop still syncs on time and serves flushers.
 * Returns true when something was written. */
static bool
write_runs(nv_persister *p)
{
	bool wrote = false;

	while (!wrote) {
		size_t n = 0, nw;
		struct pnode *x;
		int rc;

		while (n < p->conf.max_batch && (x = next_node(p)) != NULL) {
			if (x->rec.seq <= p->written) { /* cannot happen */
				node_free(p, x);
				continue;
			}
			p->written = x->rec.seq;
			if (x->cancelled ||
			    __atomic_load_n(&p->error, __ATOMIC_RELAXED)) {
				node_free(p, x);
				continue;
			}
			p->batch[n] = x->rec;
			p->bnodes[n++] = x;
			if (x->nbytes > NV__P_BIG_NODE) /* x is in cache */
				p->rel_bytes += x->nbytes;
		}
		if (n == 0) {
			release(p);
			break;
		}
		nw = nv__coalesce(&p->co, p->batch, n);
		if (nw < n) /* relaxed: statistics */
			__atomic_add_fetch(&p->coalesced, n - nw,
					   __ATOMIC_RELAXED);
		rc = __atomic_load_n(&p->error, __ATOMIC_RELAXED)
			 ? NV_EIO /* failed meanwhile: discard */
			 : p->store->ops->write(p->store, p->batch, nw);
		if (rc != 0)
			fail(p, rc, "write");
		for (size_t i = 0; i < n; i++)
			nv__free(p->bnodes[i]); /* counted above */
		release(p);
		if (rc != 0)
			continue;
		wrote = true;
		if (p->conf.fsync == NV_FSYNC_ALWAYS) {
			rc = p->store->ops->sync(p->store);
			if (rc != 0)
				fail(p, rc, "sync");
			else
				publish(p, p->written);
			p->last_sync_ms = nv__mono_ms();
		}
	}
	/* OFF: written is as durable as it gets. */
	if (wrote && p->conf.fsync == NV_FSYNC_OFF &&
	    __atomic_load_n(&p->error, __ATOMIC_RELAXED) == 0)
		publish(p, p->written);
	return wrote;
}

/* Sleeps until a push, a flush (when unsynced data waits), stop, or
 * deadline_ms (monotonic). */
static void
sleep_until(nv_persister *p, uint64_t deadline_ms, bool unsynced)
{
	struct timespec ts;
	uint64_t now = nv__mono_ms();
	bool busy;

	if (deadline_ms <= now)
		return;
	ts = nv__deadline_ts(deadline_ms - now);
	pthread_mutex_lock(&p->lock);
	/* Dekker pair with wake_thread, all seq_cst: we store sleeping and
	 * then read the tail; a producer exchanges the tail and then reads
	 * sleeping. One of the two reads sees the other's write, so either
	 * we see the push (and stay up) or the producer sees us asleep. The
	 * same holds for flushers (flush_waiters) and stop (stopping). */
	__atomic_store_n(&p->sleeping, 1, __ATOMIC_SEQ_CST);
	busy =
	    __atomic_load_n(&p->tail, __ATOMIC_SEQ_CST) != p->head ||
	    __atomic_load_n(&p->stopping, __ATOMIC_SEQ_CST) ||
	    (unsynced && __atomic_load_n(&p->flush_waiters, __ATOMIC_SEQ_CST));
	/* A push is pending when the tail moved away from the head; if its
	 * link is not visible yet we come straight back (a few ns). */
	while (!busy && __atomic_load_n(&p->sleeping, __ATOMIC_RELAXED) &&
	       pthread_cond_timedwait(&p->wake_cv, &p->lock, &ts) != ETIMEDOUT)
		;
	__atomic_store_n(&p->sleeping, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&p->lock);
}

/* Wakes the thread if it sleeps (producers, flushers, stop). The caller's
 * preceding seq_cst write (tail exchange, flush_waiters increment) and
 * this seq_cst read form the other half of the Dekker pair above. */
static void
wake_thread(nv_persister *p)
{
	if (__atomic_load_n(&p->sleeping, __ATOMIC_SEQ_CST)) {
		pthread_mutex_lock(&p->lock);
		__atomic_store_n(&p->sleeping, 0, __ATOMIC_RELAXED);
		pthread_cond_signal(&p->wake_cv);
		pthread_mutex_unlock(&p->lock);
	}
}

static void *
persister_main(void *arg)
{
	nv_persister *p = arg;
	uint64_t stop_at = 0; /* seqs below it must be handled before exit */
	bool unsynced = false, unmaintained = false;

	p->last_sync_ms = nv__mono_ms();
	for (;;) {
		bool stopping =
		    __atomic_load_n(&p->stopping, __ATOMIC_SEQ_CST) != 0;
		bool failed;
		uint64_t now;

		if (stopping && stop_at == 0) /* seq_cst: see the essay */
			stop_at =
			    __atomic_load_n(&p->next_seq, __ATOMIC_SEQ_CST);
		if (write_runs(p)) {
			unsynced = p->conf.fsync == NV_FSYNC_BATCH;
			unmaintained = true;
		}
		failed = __atomic_load_n(&p->error, __ATOMIC_RELAXED) != 0;
		now = nv__mono_ms();
		if (unsynced && !failed &&
		    (stopping ||
		     __atomic_load_n(&p->flush_waiters, __ATOMIC_SEQ_CST) > 0 ||
		     now - p->last_sync_ms >= p->conf.interval_ms)) {
			int rc = p->store->ops->sync(p->store);
			p->last_sync_ms = now;
			unsynced = false;
			if (rc != 0)
				fail(p, rc, "sync");
			else
				publish(p, p->written);
		}
		if (unmaintained && !unsynced && !failed &&
		    p->store->ops->maintain) {
			int rc = p->store->ops->maintain(p->store);
			unmaintained = false;
			if (rc != 0)
				fail(p, rc, "maintenance");
		}
		if (stopping && p->written + 1 >= stop_at && !unsynced)
			break;
		if (failed && stopping)
			break;
		sleep_until(p,
			    unsynced ? p->last_sync_ms + p->conf.interval_ms
				     : now + NV__P_IDLE_MS,
			    unsynced);
	}
	/* Everything below stop_at is written and synced (or skipped). */
	if (__atomic_load_n(&p->error, __ATOMIC_RELAXED) == 0)
		publish(p, p->written);
	__atomic_store_n(&p->exited, 1, __ATOMIC_SEQ_CST);
	wake_flushers(p);
	nv__p_wake_room(p);
	return NULL;
}

/* ---------------------------------------------------------------- API */

int
nv__persister_create(nv_persister **out, nv_store *store,
		     const nv_persister_conf *conf)
{
	nv_persister *p;
	nv_store_stats st;
	pthread_condattr_t ca;
	size_t bytes;

	if (out == NULL || store == NULL || conf == NULL ||
	    conf->fsync > NV_FSYNC_OFF)
		return NV_EINVAL;
	p = nv__aligned_alloc(NV__CACHELINE, sizeof(*p));
	if (p == NULL)
		return NV_ENOMEM;
	memset(p, 0, sizeof(*p));
	p->store = store;
	p->conf = *conf;
	if (p->conf.max_batch == 0)
		p->conf.max_batch = NV__P_DEFAULT_BATCH;
	bytes = p->conf.max_batch * sizeof(*p->batch);
	p->batch = nv__malloc(bytes);
	bytes = p->conf.max_batch * sizeof(*p->bnodes);
	p->bnodes = nv__malloc(bytes);
	if (p->conf.max_backlog == 0)
		p->conf.max_backlog = NV__P_DEFAULT_BACKLOG;
	if (p->conf.max_backlog_bytes == 0)
		p->conf.max_backlog_bytes = NV__P_DEFAULT_BACKLOG_BYTES;
	if (p->batch == NULL || p->bnodes == NULL || nv__ro_init(&p->ro) != 0 ||
	    nv__coalesce_init(&p->co, p->conf.max_batch) != 0) {
		nv__free(p->batch);
		nv__free(p->bnodes);
		nv__ro_free(&p->ro, NULL);
		nv__aligned_free(p);
		return NV_ENOMEM;
	}
	memset(&st, 0, sizeof(st));
	store->ops->stats(store, &st);
	p->written = p->durable = p->released = st.last_seq;
	p->next_seq = st.last_seq + 1;
	p->head = p->tail = &p->stub;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->wake_cv, &ca);
	pthread_cond_init(&p->flush_cv, &ca);
	pthread_cond_init(&p->room_cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = p;
	return 0;
}

int
nv__persister_start(nv_persister *p)
{
	if (p == NULL || p->started)
		return NV_EINVAL;
	if (pthread_create(&p->thread, NULL, persister_main, p) != 0)
		return NV_ENOMEM;
	p->started = true;
	/* Release: a submit that sees it may wait for the thread's room. */
	__atomic_store_n(&p->running, 1, __ATOMIC_RELEASE);
	return 0;
}

int
nv__persister_submit_wait(nv_persister *p, const nv_rec *r, uint64_t *seq_out,
			  int timeout_ms)
{
	struct pnode *n;
	size_t extra;
	uint64_t nbytes, seq;
	uint8_t *b;
	bool cancelled;
	int rc;

	if (p == NULL || !nv__rec_ok(r))
		return NV_EINVAL;
	if (__atomic_load_n(&p->error, __ATOMIC_RELAXED))
		return NV_EIO;
	if (__atomic_load_n(&p->stopping, __ATOMIC_RELAXED))
		return NV_ESTOPPED;
	extra = (size_t)r->task_len + r->data_len + r->aux_len;
	nbytes = sizeof(*n) + extra;
	/* Room first: giving up here leaves nothing behind. */
	if (nv__p_over_fast(p, nbytes)) {
		if ((rc = nv__p_wait_room(p, nbytes, timeout_ms)) != 0)
			return rc;
		/* Room may come from a failure discarding the backlog. */
		if (__atomic_load_n(&p->error, __ATOMIC_SEQ_CST))
			return NV_EIO;
	}
	/* Allocate before taking a seq: a seq once taken must be pushed. */
	n = nv__malloc(nbytes);
	if (n == NULL)
		return NV_ENOMEM;
	n->rec = *r;
	n->nbytes = nbytes;
	n->cancelled = false;
	b = n->bytes;
	if (r->task_len) {
		memcpy(b, r->task, r->task_len);
		n->rec.task = (const char *)b;
		b += r->task_len;
	}
	if (r->data_len) {
		memcpy(b, r->data, r->data_len);
		n->rec.data = b;
		b += r->data_len;
	}
	if (r->aux_len) {
		memcpy(b, r->aux, r->aux_len);
		n->rec.aux = b;
	}
	/* Relaxed: only needs to be atomic; the thread subtracts after it
	 * popped the node, which the push (release) orders after this. */
	if (nbytes > NV__P_BIG_NODE)
		__atomic_add_fetch(&p->backlog_bytes, nbytes, __ATOMIC_RELAXED);
	/* seq_cst RMW then seq_cst load of stopping: pairs with stop's store
	 * of stopping and the thread's later load of next_seq. */
	seq = __atomic_fetch_add(&p->next_seq, 1, __ATOMIC_SEQ_CST);
	nv__p_note_seq(p, seq);
	cancelled = __atomic_load_n(&p->stopping, __ATOMIC_SEQ_CST) != 0;
	n->rec.seq = seq;
	n->cancelled = cancelled;
	q_push(p, &n->q); /* n belongs to the thread from here on */
	wake_thread(p);
	if (cancelled)
		return NV_ESTOPPED;
	if (seq_out)
		*seq_out = seq;
	return 0;
}

int
nv__persister_submit(nv_persister *p, const nv_rec *r, uint64_t *seq_out)
{
	return nv__persister_submit_wait(p, r, seq_out, -1);
}

int
nv__persister_flush(nv_persister *p, int timeout_ms)
{
	uint64_t target;
	struct timespec ts;
	int rc = 0;

	if (p == NULL)
		return NV_EINVAL;
	if (__atomic_load_n(&p->error, __ATOMIC_SEQ_CST))
		return NV_EIO;
	/* Every submit that returned before this call took a lower seq. */
	target = __atomic_load_n(&p->next_seq, __ATOMIC_SEQ_CST) - 1;
	if (__atomic_load_n(&p->durable, __ATOMIC_SEQ_CST) >= target)
		return 0;
	if (timeout_ms == 0)
		return NV_ETIMEDOUT;
	if (timeout_ms > 0)
		ts = nv__deadline_ts((uint64_t)timeout_ms);
	/* Dekker pair with publish(): increment, then read durable. */
	__atomic_add_fetch(&p->flush_waiters, 1, __ATOMIC_SEQ_CST);
	wake_thread(p);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		if (__atomic_load_n(&p->durable, __ATOMIC_SEQ_CST) >= target)
			break;
		if (__atomic_load_n(&p->error, __ATOMIC_SEQ_CST)) {
			rc = NV_EIO;
			break;
		}
		if (__atomic_load_n(&p->exited, __ATOMIC_SEQ_CST)) {
			rc = NV_ESTOPPED;
			break;
		}
		if (timeout_ms < 0) {
			pthread_cond_wait(&p->flush_cv, &p->lock);
		} else if (pthread_cond_timedwait(&p->flush_cv, &p->lock,
						  &ts) == ETIMEDOUT) {
			if (__atomic_load_n(&p->durable, __ATOMIC_SEQ_CST) <
			    target)
				rc = NV_ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	__atomic_sub_fetch(&p->flush_waiters, 1, __ATOMIC_SEQ_CST);
	return rc;
}

int
nv__persister_stop(nv_persister *p)
{
	if (p == NULL)
		return NV_EINVAL;
	if (p->started && !p->joined) {
		/* seq_cst: pairs with the load in submit (see the essay). */
		__atomic_store_n(&p->stopping, 1, __ATOMIC_SEQ_CST);
		pthread_mutex_lock(&p->lock);
		__atomic_store_n(&p->sleeping, 0, __ATOMIC_RELAXED);
		pthread_cond_signal(&p->wake_cv);
		pthread_mutex_unlock(&p->lock);
		nv__p_wake_room(p); /* parked submits return NV_ESTOPPED */
		pthread_join(p->thread, NULL);
		p->joined = true;
	}
	__atomic_store_n(&p->stopping, 1, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&p->error, __ATOMIC_SEQ_CST);
}

void
nv__persister_destroy(nv_persister *p)
{
	struct qnode *q;

	if (p == NULL)
		return;
	nv__persister_stop(p);
	/* Nodes pushed after the thread left (cancelled, or never started). */
	while ((q = q_pop(p)) != NULL)
		nv__free(q);
	nv__ro_free(&p->ro, drop_node);
	p->store->ops->close(p->store);
	pthread_cond_destroy(&p->wake_cv);
	pthread_cond_destroy(&p->flush_cv);
	pthread_cond_destroy(&p->room_cv);
	pthread_mutex_destroy(&p->lock);
	nv__coalesce_free(&p->co);
	nv__free(p->batch);
	nv__free(p->bnodes);
	nv__aligned_free(p);
}

int
nv__persister_error(const nv_persister *p)
{
	return p ? __atomic_load_n(&p->error, __ATOMIC_SEQ_CST) : NV_EINVAL;
}

nv_store *
nv__persister_store(nv_persister *p)
{
	return p ? p->store : NULL;
}
