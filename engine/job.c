/*
 * job.c - job records, ids, the job table and the memory result store.
 *
 * A job record is one jemalloc allocation: struct nv_job (what every job
 * needs to be queued, run and retried) followed, for tracked jobs, by the
 * nv_jobx fields (table node, result, error, timestamps, waiters), and by
 * the arguments when they fit inline. Jobs of tasks with discard_result are
 * untracked: never in the table, freed by the worker that finishes them,
 * so fire-and-forget dispatch touches no shared structure but the ring.
 *
 * The job table (id -> tracked job) is a cds_lfht read under RCU (memb
 * flavour; any thread that touches it registers itself once, lazily).
 * Finished tracked jobs are appended to a FIFO (wfcqueue); once more than
 * cfg.result_retention are kept, the oldest are removed from the table and
 * freed after a grace period (call_rcu). A waiter pins a record with a
 * reference so eviction cannot free it under nv_job_wait.
 *
 * Lifetime of a record whose execution was abandoned by a timeout: the
 * stuck task function may still read its args, so `hold` counts abandoned
 * executions (x2) and the final free is deferred (bit 0) until the last one
 * returns (nv__job_release / worker.c).
 */
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "engine/engine_int.h"
#include "engine/store_int.h"

/* ---------------------------------------------------------------- RCU */

static pthread_key_t rcu_key;
static pthread_once_t rcu_once = PTHREAD_ONCE_INIT;
static __thread bool rcu_online;

void nv__jobs_thread_exit(void);

static void
rcu_thread_exit(void *arg)
{
	(void)arg;
	nv__jobs_thread_exit();
	if (rcu_online) {
		urcu_memb_unregister_thread();
		rcu_online = false;
	}
}

static void
rcu_key_init(void)
{
	pthread_key_create(&rcu_key, rcu_thread_exit);
}

/* Makes sure rcu_thread_exit runs when the calling thread exits. */
static void
thread_hook(void)
{
	pthread_once(&rcu_once, rcu_key_init);
	/* The destructor runs only for a non-NULL value. */
	if (pthread_getspecific(rcu_key) == NULL)
		pthread_setspecific(rcu_key, (void *)1);
}

void
nv__rcu_thread_online(void)
{
	if (rcu_online)
		return;
	thread_hook();
	urcu_memb_register_thread();
	rcu_online = true;
}

/* ThreadSanitizer builds only. TSan cannot see liburcu's inline-asm
 * atomics nor its call_rcu/barrier hand-offs, and would take each of them
 * for a race. So in TSan builds the finished-jobs FIFO runs under a mutex
 * and the call_rcu orderings are restated with release increments and
 * acquire loads of counters (see free_rcu). Release builds: no cost. */
#ifdef NUVOM_TSAN
static pthread_mutex_t fifo_tsan_mu = PTHREAD_MUTEX_INITIALIZER;
#define FIFO_LOCK() pthread_mutex_lock(&fifo_tsan_mu)
#define FIFO_UNLOCK() pthread_mutex_unlock(&fifo_tsan_mu)
#define TSAN_RELEASE(c) __atomic_fetch_add(&(c), 1, __ATOMIC_RELEASE)
#define TSAN_ACQUIRE(c) ((void)__atomic_load_n(&(c), __ATOMIC_ACQUIRE))
#else
#define FIFO_LOCK() ((void)0)
#define FIFO_UNLOCK() ((void)0)
#define TSAN_RELEASE(c) ((void)0)
#define TSAN_ACQUIRE(c) ((void)0)
#endif

/* ---------------------------------------------------------------- ids */

static uint64_t engine_gen; /* atomic: distinguishes engines in the cache */

struct id_cache {
	uint64_t gen;
	nv_engine *e;
	uint64_t next, end;
};
static __thread struct id_cache idc;

#define NV_ID_BLOCK 64

nv_job_id
nv__id_alloc(nv_engine *e, size_t n)
{
	uint64_t gen = e->gen;
	if (n == 1) {
		if (idc.e == e && idc.gen == gen && idc.next < idc.end)
			return idc.next++;
		/* Relaxed: ids only need to be unique. */
		uint64_t first = __atomic_fetch_add(&e->next_id, NV_ID_BLOCK,
						    __ATOMIC_RELAXED);
		idc.e = e;
		idc.gen = gen;
		idc.next = first + 1;
		idc.end = first + NV_ID_BLOCK;
		return first;
	}
	return __atomic_fetch_add(&e->next_id, n, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------- records */

/*
 * Record recycling. Records come in two fixed sizes (untracked, tracked),
 * each with room for NV_INLINE_ARGS bytes of inline args. Freed records go
 * back to a per-engine recycle ring (an nv_ring, MPMC) in bulk from a small
 * per-thread stash, and dispatchers refill their stash from it in bulk, so
 * the producer/consumer pattern (allocated by callers, freed by workers)
 * costs neither a lock nor a jemalloc remote free per job. The stash is
 * tagged with the engine's generation; a stale stash is simply freed.
 */
#define NV_STASH 32

struct stash {
	uint64_t gen;
	uint32_t na[2], nr[2];
	nv_job *a[2][NV_STASH]; /* ready to allocate */
	nv_job *r[2][NV_STASH]; /* freed, not yet returned */
};
static __thread struct stash stash;

static size_t
class_size(int cls)
{
	/* 128 and 256 bytes: jemalloc classes that are line-aligned. */
	return cls ? sizeof(nv_jobx) : sizeof(nv_job);
}

static void
stash_reset(uint64_t gen)
{
	if (stash.gen == 0 && gen != 0)
		thread_hook(); /* first use: free the stash at thread exit */
	for (int c = 0; c < 2; c++) {
		for (uint32_t i = 0; i < stash.na[c]; i++)
			nv__free(stash.a[c][i]);
		for (uint32_t i = 0; i < stash.nr[c]; i++)
			nv__free(stash.r[c][i]);
		stash.na[c] = stash.nr[c] = 0;
	}
	stash.gen = gen;
}

static nv_job *
rec_alloc(nv_engine *e, int cls)
{
	if (stash.gen != e->gen)
		stash_reset(e->gen);
	if (stash.na[cls] == 0)
		stash.na[cls] = (uint32_t)nv_ring_pop_bulk(
			e->recycle[cls], (void **)stash.a[cls], NV_STASH);
	if (stash.na[cls] > 0)
		return stash.a[cls][--stash.na[cls]];
	/* Zeroed: a record enters the recycling with hold == 0, and keeps
	 * it (a record is freed only once its hold is settled, and
	 * rec_free clears it). */
	return nv__aligned_alloc(NV_CL, class_size(cls));
}

static void
rec_free(nv_engine *e, nv_job *j, int cls)
{
	if (stash.gen != e->gen)
		stash_reset(e->gen);
	/* Only a record whose execution was abandoned has a hold left (bit
	 * 0): reset it for the next job without writing the common one. */
	if (__atomic_load_n(&j->hold, __ATOMIC_RELAXED) != 0)
		__atomic_store_n(&j->hold, 0, __ATOMIC_RELAXED);
	if (stash.nr[cls] == NV_STASH) {
		size_t k = nv_ring_push_bulk(e->recycle[cls],
					     (void *const *)stash.r[cls],
					     NV_STASH);
		for (size_t i = k; i < NV_STASH; i++)
			nv__free(stash.r[cls][i]);
		stash.nr[cls] = 0;
	}
	stash.r[cls][stash.nr[cls]++] = j;
}

void
nv__jobs_thread_exit(void)
{
	stash_reset(0);
}

nv_job *
nv__job_new(nv_engine *e, struct nv_task *t, const void *args, size_t len,
	    bool tracked, nv_job_id id)
{
	int cls = tracked ? 1 : 0;
	nv_job *j = rec_alloc(e, cls);

	if (j == NULL)
		return NULL;
	/* Field by field, no memset: a small job's stores stay in line 0
	 * (hold is already 0 in a recycled record, enq_ns is written below
	 * when it is read at all). */
	j->id = id;
	j->task = t;
	j->status = NV_PENDING;
	j->attempt = 0;
	j->args_len = (uint32_t)len;
	j->flags = tracked ? NV_JOB_TRACKED : 0;
	/* The one stamp of a new job's wait (a requeue re-stamps it):
	 * observers are added before start (nobs is then fixed), so every
	 * job made with observers present carries it, also one dispatched
	 * before start, recovered or taken from a plugin queue. */
	if (e->nobs > 0)
		j->enq_ns = nv__mono_ns();
	if (len > NV_INLINE_ARGS) {
		j->args.heap = nv__malloc(len);
		if (j->args.heap == NULL) {
			rec_free(e, j, cls);
			return NULL;
		}
		j->flags |= NV_JOB_ARGS_HEAP;
	}
	if (len)
		memcpy(nv__job_args(j), args, len);
	if (tracked) {
		nv_jobx *x = nv__jobx(j);
		memset((char *)x + sizeof(nv_job), 0,
		       sizeof(nv_jobx) - sizeof(nv_job));
		cds_lfht_node_init(&x->node);
		cds_wfcq_node_init(&x->fifo);
		x->refs = 1; /* the table's */
		x->created_ms = nv__epoch_ms();
	}
	return j;
}

void
nv__job_free(nv_job *j)
{
	if (j == NULL)
		return;
	if (j->flags & NV_JOB_ARGS_HEAP)
		nv__free(j->args.heap);
	if (j->flags & NV_JOB_TRACKED) {
		nv_jobx *x = nv__jobx(j);
		nv__free(x->result);
		nv__free(x->error);
	}
	rec_free(j->task->engine, j, (j->flags & NV_JOB_TRACKED) ? 1 : 0);
}

void
nv__job_release(nv_job *j)
{
	/* Acquire pairs with the stuck worker's release decrement. */
	uint32_t h = __atomic_load_n(&j->hold, __ATOMIC_ACQUIRE);
	if (h != 0) {
		uint32_t old = __atomic_fetch_or(&j->hold, 1, __ATOMIC_ACQ_REL);
		if ((old >> 1) != 0)
			return; /* the last abandoned execution frees it */
	}
	nv__job_free(j);
}

/* TSan builds: the orderings call_rcu gives, restated with two counters
 * (RMWs form a release sequence, so an acquire load synchronizes with
 * every earlier increment):
 *  - rcu_posts: incremented before call_rcu, loaded by the callback: the
 *    record's last writes happen before its free;
 *  - rcu_frees: incremented after the free, loaded after
 *    urcu_memb_barrier() in nv__jobs_fini: the callbacks' reads of
 *    j->task happen before the tasks are freed at close. */
static uint64_t rcu_posts __attribute__((unused));
static uint64_t rcu_frees __attribute__((unused));

static void
free_rcu(struct rcu_head *head)
{
	nv_jobx *x = caa_container_of(head, nv_jobx, rcu);
	TSAN_ACQUIRE(rcu_posts);
	nv__job_release(&x->core);
	TSAN_RELEASE(rcu_frees);
}

static void
jobx_put(nv_jobx *x)
{
	/* Last reference (table and waiters gone): free after a grace
	 * period, since readers may still hold the pointer. */
	if (__atomic_sub_fetch(&x->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		TSAN_RELEASE(rcu_posts);
		urcu_memb_call_rcu(&x->rcu, free_rcu);
	}
}

/* ---------------------------------------------------------------- table */

static inline uint64_t
id_hash(uint64_t id)
{
	/* splitmix64 finalizer: spreads sequential ids over the buckets. */
	id ^= id >> 30;
	id *= 0xbf58476d1ce4e5b9ULL;
	id ^= id >> 27;
	id *= 0x94d049bb133111ebULL;
	id ^= id >> 31;
	return id;
}

static int
match_id(struct cds_lfht_node *node, const void *key)
{
	const nv_jobx *x = caa_container_of(node, nv_jobx, node);
	NV_TSAN_CONSUME(x);
	return x->core.id == *(const uint64_t *)key;
}

void
nv__job_table_reserve(nv_engine *e, size_t n)
{
	/* A recovery adding many jobs at once: grow the table first, in
	 * this thread, rather than through the lazy resizes that run in
	 * the background while chains grow long (liburcu's resize wants a
	 * registered thread outside a read-side section: here). */
	unsigned long b = 1ul << 16;
	if (n <= b)
		return;
	while (b < n && b < (1ul << 24))
		b <<= 1;
	nv__rcu_thread_online();
	cds_lfht_resize(e->jobs, b);
}

int
nv__jobs_init(nv_engine *e)
{
	/* Start with buckets for the retention, up to 2^16 (512 KiB), and let
	 * the table grow beyond: pre-sizing a million buckets made every
	 * engine pay 8 MiB and a long walk at close for a small gain. */
	unsigned long buckets = 1024;
	while (buckets < e->cfg.result_retention && buckets < (1ul << 16))
		buckets <<= 1;
	e->jobs = cds_lfht_new_flavor(buckets, buckets, 0,
				      CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
				      &urcu_memb_flavor, NULL);
	if (e->jobs == NULL)
		return NV_ENOMEM;
	cds_wfcq_init(&e->fin_head, &e->fin_tail);
	e->gen = __atomic_add_fetch(&engine_gen, 1, __ATOMIC_RELAXED);
	/* As many free records as the ring holds jobs: under saturation
	 * every record is in flight, and a smaller recycle ring would send
	 * the overflow back to jemalloc as remote frees (locks). */
	size_t rcap = e->cfg.queue_capacity < ((size_t)1 << 20)
			      ? e->cfg.queue_capacity
			      : ((size_t)1 << 20);
	for (int c = 0; c < 2; c++)
		if (nv_ring_create(&e->recycle[c], rcap < 4096 ? 4096 : rcap) !=
		    0)
			return NV_ENOMEM;
	return 0;
}

void
nv__jobs_pool_fini(nv_engine *e)
{
	void *p;
	if (stash.gen == e->gen)
		stash_reset(0);
	for (int c = 0; c < 2; c++) {
		while (e->recycle[c] && nv_ring_try_pop(e->recycle[c], &p))
			nv__free(p);
		nv_ring_destroy(e->recycle[c]);
		e->recycle[c] = NULL;
	}
}

void
nv__jobs_fini(nv_engine *e)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *n;

	if (e->jobs == NULL) {
		nv__jobs_pool_fini(e);
		return;
	}
	/* Empty the FIFO first: its nodes live in the job records, which the
	 * loop below hands to call_rcu (they may be freed as soon as it
	 * leaves its read-side section). */
	FIFO_LOCK();
	while (__cds_wfcq_dequeue_blocking(&e->fin_head, &e->fin_tail) != NULL)
		;
	FIFO_UNLOCK();
	/* Closing: no reader is left. Drop the table's reference of every
	 * job; records are freed after a grace period. */
	nv__rcu_thread_online();
	/* Empty the FIFO first: its nodes live in jobs that the call_rcu
	 * thread may free as soon as the table walk below leaves its
	 * read-side section (walking it afterwards read freed records). */
	while (__cds_wfcq_dequeue_blocking(&e->fin_head, &e->fin_tail) != NULL)
		;
	urcu_memb_read_lock();
	cds_lfht_for_each(e->jobs, &it, n) {
		nv_jobx *x = caa_container_of(n, nv_jobx, node);
		if (cds_lfht_del(e->jobs, n) == 0)
			jobx_put(x);
	}
	urcu_memb_read_unlock();
	urcu_memb_barrier(); /* run the pending frees */
	TSAN_ACQUIRE(rcu_frees); /* see free_rcu */
	cds_lfht_destroy(e->jobs, NULL);
	e->jobs = NULL;
	cds_wfcq_destroy(&e->fin_head, &e->fin_tail);
	nv__jobs_pool_fini(e);
}

int
nv__job_table_add(nv_engine *e, nv_job *j)
{
	nv_jobx *x = nv__jobx(j);
	urcu_memb_read_lock();
	NV_TSAN_PUBLISH(x);
	cds_lfht_add(e->jobs, id_hash(j->id), &x->node);
	urcu_memb_read_unlock();
	return 0;
}

void
nv__jobs_evict(nv_engine *e)
{
	uint64_t keep = e->cfg.result_retention;
	uint64_t cnt = __atomic_load_n(&e->nfinished, __ATOMIC_RELAXED);
	while (cnt > keep) {
		/* Claim one eviction before taking a job: with a load, then
		 * a dequeue, then a decrement, concurrent finishers could all
		 * see the same excess and evict below the retention. */
		if (!__atomic_compare_exchange_n(&e->nfinished, &cnt, cnt - 1,
						 false, __ATOMIC_ACQUIRE,
						 __ATOMIC_RELAXED))
			continue; /* cnt reloaded */
		/* Not empty: every counted job was enqueued before it was
		 * counted (acquire pairs with the release increment in
		 * nv__job_finished). */
		FIFO_LOCK();
		struct cds_wfcq_node *n =
			cds_wfcq_dequeue_blocking(&e->fin_head, &e->fin_tail);
		FIFO_UNLOCK();
		cnt = __atomic_load_n(&e->nfinished, __ATOMIC_RELAXED);
		if (n == NULL)
			break;
		nv_jobx *x = caa_container_of(n, nv_jobx, fifo);
		urcu_memb_read_lock();
		int rc = cds_lfht_del(e->jobs, &x->node);
		urcu_memb_read_unlock();
		if (rc == 0)
			jobx_put(x);
	}
}

void
nv__job_finished(nv_engine *e, nv_job *j)
{
	if (!(j->flags & NV_JOB_TRACKED)) {
		nv__job_release(j);
		return;
	}
	nv_jobx *x = nv__jobx(j);
	x->finished_ms = nv__epoch_ms();
	if (e->rbe != NULL) /* plugin result backend: before any reader or
			       eviction can miss it */
		nv__pump_result(e, j);
	/* The caller stored the final status (seq_cst); this fence and load
	 * pair with the waiter's seq_cst increment of `waiters` (Dekker). */
	if (nv__dekker_load(&x->waiters) != 0)
		syscall(SYS_futex, &j->status, FUTEX_WAKE_PRIVATE, INT_MAX,
			NULL, NULL, 0);
	FIFO_LOCK();
	cds_wfcq_enqueue(&e->fin_head, &e->fin_tail, &x->fifo);
	FIFO_UNLOCK();
	/* Release: the enqueue above is visible to an evictor that counts
	 * this job (pairs with the acquire CAS in nv__jobs_evict). */
	if (__atomic_add_fetch(&e->nfinished, 1, __ATOMIC_RELEASE) >
	    e->cfg.result_retention)
		nv__jobs_evict(e);
}

/* Looks id up and pins the record (caller drops with jobx_put). */
static nv_jobx *
job_get(nv_engine *e, nv_job_id id)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *n;
	nv_jobx *x = NULL;

	nv__rcu_thread_online();
	urcu_memb_read_lock();
	cds_lfht_lookup(e->jobs, id_hash(id), match_id, &id, &it);
	n = cds_lfht_iter_get_node(&it);
	if (n != NULL) {
		nv_jobx *c = caa_container_of(n, nv_jobx, node);
		uint32_t r = __atomic_load_n(&c->refs, __ATOMIC_RELAXED);
		/* Take a reference only while someone else still holds one
		 * (0 means eviction already dropped the last). */
		while (r != 0) {
			if (__atomic_compare_exchange_n(&c->refs, &r, r + 1,
							true, __ATOMIC_ACQ_REL,
							__ATOMIC_RELAXED)) {
				x = c;
				break;
			}
		}
	}
	urcu_memb_read_unlock();
	return x;
}

static bool
final(uint32_t s)
{
	return s == NV_SUCCESS || s == NV_FAILED;
}

int
nv_job_status(nv_engine *e, nv_job_id id, nv_status *out)
{
	nv_jobx *x;
	if (e == NULL || out == NULL || id == 0)
		return NV_EINVAL;
	if ((x = job_get(e, id)) == NULL)
		return e->rbe ? nv__pump_status(e, id, out) : NV_ENOENT;
	*out = (nv_status)__atomic_load_n(&x->core.status, __ATOMIC_ACQUIRE);
	jobx_put(x);
	return 0;
}

int
nv_job_wait(nv_engine *e, nv_job_id id, int timeout_ms, nv_status *out)
{
	nv_jobx *x;
	uint64_t end = 0;
	uint32_t s;
	int rc = 0;

	if (e == NULL || id == 0)
		return NV_EINVAL;
	if ((x = job_get(e, id)) == NULL) {
		/* A plugin result backend holds finished jobs only. */
		nv_status st = NV_PENDING;
		rc = e->rbe ? nv__pump_status(e, id, &st) : NV_ENOENT;
		if (rc == 0 && out != NULL)
			*out = st;
		return rc;
	}
	if (timeout_ms >= 0)
		end = nv__mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		/* seq_cst increment, then re-check: pairs with the fence in
		 * nv__job_finished so a final status is never missed. */
		__atomic_fetch_add(&x->waiters, 1, __ATOMIC_SEQ_CST);
		s = __atomic_load_n(&x->core.status, __ATOMIC_SEQ_CST);
		if (final(s)) {
			__atomic_fetch_sub(&x->waiters, 1, __ATOMIC_RELAXED);
			break;
		}
		struct timespec ts, *tp = NULL;
		if (timeout_ms >= 0) {
			uint64_t now = nv__mono_ms();
			if (now >= end) {
				__atomic_fetch_sub(&x->waiters, 1,
						   __ATOMIC_RELAXED);
				rc = NV_ETIMEDOUT;
				break;
			}
			ts.tv_sec = (time_t)((end - now) / 1000);
			ts.tv_nsec = (long)((end - now) % 1000) * 1000000L;
			tp = &ts;
		}
		syscall(SYS_futex, &x->core.status, FUTEX_WAIT_PRIVATE, s, tp,
			NULL, 0);
		__atomic_fetch_sub(&x->waiters, 1, __ATOMIC_RELAXED);
	}
	if (out != NULL)
		*out = (nv_status)s;
	jobx_put(x);
	return rc;
}

int
nv_job_result(nv_engine *e, nv_job_id id, void **buf, size_t *len)
{
	nv_jobx *x;
	int rc = 0;
	if (e == NULL || buf == NULL || len == NULL || id == 0)
		return NV_EINVAL;
	*buf = NULL;
	*len = 0;
	if ((x = job_get(e, id)) == NULL)
		return e->rbe ? nv_results_get_result(e->rbe, id, buf, len)
			      : NV_ENOENT;
	/* Acquire pairs with the worker's final status store: result is
	 * written before and never changes after. */
	if (__atomic_load_n(&x->core.status, __ATOMIC_ACQUIRE) != NV_SUCCESS ||
	    x->result == NULL) {
		rc = NV_ENORESULT;
	} else if ((*buf = nv__memdup(x->result, x->result_len)) == NULL) {
		rc = NV_ENOMEM;
	} else {
		*len = x->result_len;
	}
	jobx_put(x);
	return rc;
}

int
nv_job_error(nv_engine *e, nv_job_id id, char **msg)
{
	nv_jobx *x;
	int rc = 0;
	if (e == NULL || msg == NULL || id == 0)
		return NV_EINVAL;
	*msg = NULL;
	if ((x = job_get(e, id)) == NULL)
		return e->rbe ? nv_results_get_error(e->rbe, id, msg)
			      : NV_ENOENT;
	if (__atomic_load_n(&x->core.status, __ATOMIC_ACQUIRE) != NV_FAILED ||
	    x->error == NULL)
		rc = NV_ENORESULT;
	else if ((*msg = nv__strdup(x->error)) == NULL)
		rc = NV_ENOMEM;
	jobx_put(x);
	return rc;
}
