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

/* ---------------------------------------------------------------- RCU */

static pthread_key_t rcu_key;
static pthread_once_t rcu_once = PTHREAD_ONCE_INIT;
static __thread bool rcu_online;

static void
rcu_thread_exit(void *arg)
{
	(void)arg;
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

void
nv__rcu_thread_online(void)
{
	if (rcu_online)
		return;
	pthread_once(&rcu_once, rcu_key_init);
	urcu_memb_register_thread();
	rcu_online = true;
	/* The destructor runs only for a non-NULL value. */
	pthread_setspecific(rcu_key, (void *)1);
}

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

nv_job *
nv__job_new(nv_engine *e, struct nv_task *t, const void *args, size_t len,
	    bool tracked, nv_job_id id)
{
	size_t base = tracked ? sizeof(nv_jobx) : sizeof(nv_job);
	bool inl = len <= NV_INLINE_ARGS;
	nv_job *j = nv__malloc(base + (inl ? len : 0));

	(void)e;
	if (j == NULL)
		return NULL;
	memset(j, 0, base);
	j->id = id;
	j->task = t;
	j->status = NV_PENDING;
	j->args_len = (uint32_t)len;
	j->flags = tracked ? NV_JOB_TRACKED : 0;
	if (inl) {
		j->args = (char *)j + base;
	} else {
		j->args = nv__malloc(len);
		if (j->args == NULL) {
			nv__free(j);
			return NULL;
		}
		j->flags |= NV_JOB_ARGS_HEAP;
	}
	if (len)
		memcpy(j->args, args, len);
	if (tracked) {
		nv_jobx *x = nv__jobx(j);
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
		nv__free(j->args);
	if (j->flags & NV_JOB_TRACKED) {
		nv_jobx *x = nv__jobx(j);
		nv__free(x->result);
		nv__free(x->error);
	}
	nv__free(j);
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

static void
free_rcu(struct rcu_head *head)
{
	nv_jobx *x = caa_container_of(head, nv_jobx, rcu);
	nv__job_release(&x->core);
}

static void
jobx_put(nv_jobx *x)
{
	/* Last reference (table and waiters gone): free after a grace
	 * period, since readers may still hold the pointer. */
	if (__atomic_sub_fetch(&x->refs, 1, __ATOMIC_ACQ_REL) == 0)
		urcu_memb_call_rcu(&x->rcu, free_rcu);
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
	return x->core.id == *(const uint64_t *)key;
}

int
nv__jobs_init(nv_engine *e)
{
	e->jobs = cds_lfht_new_flavor(1024, 1024, 0,
				      CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
				      &urcu_memb_flavor, NULL);
	if (e->jobs == NULL)
		return NV_ENOMEM;
	cds_wfcq_init(&e->fin_head, &e->fin_tail);
	e->gen = __atomic_add_fetch(&engine_gen, 1, __ATOMIC_RELAXED);
	return 0;
}

void
nv__jobs_fini(nv_engine *e)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *n;

	if (e->jobs == NULL)
		return;
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
	cds_lfht_destroy(e->jobs, NULL);
	e->jobs = NULL;
	cds_wfcq_destroy(&e->fin_head, &e->fin_tail);
}

int
nv__job_table_add(nv_engine *e, nv_job *j)
{
	nv_jobx *x = nv__jobx(j);
	urcu_memb_read_lock();
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
		struct cds_wfcq_node *n =
			cds_wfcq_dequeue_blocking(&e->fin_head, &e->fin_tail);
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
	/* The caller stored the final status (seq_cst); this fence and load
	 * pair with the waiter's seq_cst increment of `waiters` (Dekker). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&x->waiters, __ATOMIC_RELAXED) != 0)
		syscall(SYS_futex, &j->status, FUTEX_WAKE_PRIVATE, INT_MAX,
			NULL, NULL, 0);
	cds_wfcq_enqueue(&e->fin_head, &e->fin_tail, &x->fifo);
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
		return NV_ENOENT;
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
	if ((x = job_get(e, id)) == NULL)
		return NV_ENOENT;
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
		return NV_ENOENT;
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
		return NV_ENOENT;
	if (__atomic_load_n(&x->core.status, __ATOMIC_ACQUIRE) != NV_FAILED ||
	    x->error == NULL)
		rc = NV_ENORESULT;
	else if ((*msg = nv__strdup(x->error)) == NULL)
		rc = NV_ENOMEM;
	jobx_put(x);
	return rc;
}
