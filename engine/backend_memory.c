/*
 * backend_memory.c - the "memory" queue and result backends.
 *
 * Queue: a bounded lock-free nv_ring of nv_job_msg pointers (capacity
 * cfg->queue_capacity, rounded up to a power of two; enqueue on a full
 * ring is NV_EFULL, never a wait). dequeue with a timeout parks on an
 * eventcount (lockfree/park.h) that every enqueue notifies, so a waiting
 * consumer wakes as soon as a message is pushed and nobody polls. Any
 * number of producers and consumers may run at once; FIFO per the ring
 * (messages pushed by one thread leave in the order it pushed them).
 *
 * Results: a job index (backend_index.c) under a mutex, retention
 * cfg->result_retention finished jobs (oldest evicted first). Not a hot
 * path: the engine's own result store is its job table; this backend
 * exists for standalone use and as the model of a result backend.
 *
 * Nothing survives close.
 */
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "engine/backend_int.h"
#include "lockfree/park.h"

/* ---------------------------------------------------------------- queue */

struct memq {
	nv_queue base; /* first: the ops pointer */
	nv_ring *ring;
	nv_ec not_empty;
	uint64_t next_id; /* atomic: ids for messages enqueued with id 0 */
};

static int
mq_open(nv_queue **out, const nv_backend_conf *conf)
{
	nv_config tmp;
	const nv_config *cfg = nv__backend_cfg(conf, &tmp);
	struct memq *q = nv__calloc(1, sizeof(*q));
	if (q == NULL)
		return NV_ENOMEM;
	q->base.ops = &nv__memory_queue_ops;
	q->next_id = 1;
	int rc = nv_ring_create(
	    &q->ring, cfg->queue_capacity ? cfg->queue_capacity : 65536);
	if (rc != 0) {
		nv__free(q);
		return rc;
	}
	*out = &q->base;
	return 0;
}

static int
mq_clear(nv_queue *base, uint64_t *removed)
{
	struct memq *q = (struct memq *)base;
	void *p;
	uint64_t n = 0;
	while (nv_ring_try_pop(q->ring, &p)) {
		nv__free(p);
		n++;
	}
	*removed = n;
	return 0;
}

static void
mq_close(nv_queue *base)
{
	struct memq *q = (struct memq *)base;
	uint64_t n;
	mq_clear(base, &n);
	nv_ring_destroy(q->ring);
	nv__free(q);
}

static int
mq_enqueue(nv_queue *base, const nv_job_msg *m)
{
	struct memq *q = (struct memq *)base;
	/* Relaxed: ids only need to be unique. */
	nv_job_id id =
	    m->id ? m->id
		  : __atomic_fetch_add(&q->next_id, 1, __ATOMIC_RELAXED);
	nv_job_msg *c =
	    nv_job_msg_new(id, m->task, m->args, m->args_len, m->attempt,
			   m->created_ms ? m->created_ms : nv__epoch_ms());
	if (c == NULL)
		return NV_ENOMEM;
	if (!nv_ring_try_push(q->ring, c)) {
		nv__free(c);
		return NV_EFULL;
	}
	/* After the push: pairs with the prepare in mq_dequeue (park.h). */
	nv__ec_notify(&q->not_empty, 1);
	return 0;
}

static int
mq_dequeue(nv_queue *base, nv_job_msg **out, int timeout_ms)
{
	struct memq *q = (struct memq *)base;
	void *p;
	uint64_t end = 0;

	if (nv_ring_try_pop(q->ring, &p))
		goto got;
	if (timeout_ms == 0)
		return NV_ETIMEDOUT;
	if (timeout_ms > 0)
		end = nv__mono_ns() + (uint64_t)timeout_ms * 1000000u;
	for (;;) {
		uint32_t key = nv__ec_prepare(&q->not_empty);
		if (nv_ring_try_pop(q->ring, &p)) {
			nv__ec_cancel(&q->not_empty);
			goto got;
		}
		if (timeout_ms < 0) {
			nv__ec_wait(&q->not_empty, key, -1);
		} else {
			uint64_t now = nv__mono_ns();
			if (now >= end) {
				nv__ec_cancel(&q->not_empty);
				return NV_ETIMEDOUT;
			}
			/* Rounded up: never return before the timeout. */
			nv__ec_wait_us(&q->not_empty, key,
				       (int64_t)((end - now + 999) / 1000));
		}
		if (nv_ring_try_pop(q->ring, &p))
			goto got;
	}
got:
	*out = p;
	return 0;
}

static int
mq_pop_batch(nv_queue *base, nv_job_msg **out, size_t n, size_t *got)
{
	struct memq *q = (struct memq *)base;
	*got = nv_ring_pop_bulk(q->ring, (void **)out, n);
	return 0;
}

static int
mq_qsize(nv_queue *base, uint64_t *n)
{
	struct memq *q = (struct memq *)base;
	*n = nv_ring_size(q->ring);
	return 0;
}

const nv_queue_ops nv__memory_queue_ops = {
    .version = NV_QUEUE_OPS_VERSION,
    .name = "memory",
    .open = mq_open,
    .close = mq_close,
    .enqueue = mq_enqueue,
    .dequeue = mq_dequeue,
    .pop_batch = mq_pop_batch,
    .qsize = mq_qsize,
    .clear = mq_clear,
};

/* ---------------------------------------------------------------- results */

struct memr {
	nv_results base; /* first: the ops pointer */
	pthread_mutex_t mu;
	nv__jidx idx;
};

static int
mr_open(nv_results **out, const nv_backend_conf *conf)
{
	nv_config tmp;
	const nv_config *cfg = nv__backend_cfg(conf, &tmp);
	struct memr *r = nv__calloc(1, sizeof(*r));
	if (r == NULL)
		return NV_ENOMEM;
	r->base.ops = &nv__memory_results_ops;
	if (nv__jidx_init(&r->idx, cfg->result_retention) != 0) {
		nv__free(r);
		return NV_ENOMEM;
	}
	pthread_mutex_init(&r->mu, NULL);
	*out = &r->base;
	return 0;
}

static void
mr_close(nv_results *base)
{
	struct memr *r = (struct memr *)base;
	nv__jidx_fini(&r->idx);
	pthread_mutex_destroy(&r->mu);
	nv__free(r);
}

static int
mr_set(nv_results *base, const nv_job_info *in, nv_status st)
{
	struct memr *r = (struct memr *)base;
	nv_job_info i = *in;
	i.status = st;
	if (st == NV_SUCCESS)
		i.error = NULL;
	else
		i.result = NULL, i.result_len = 0;
	if (i.finished_ms == 0)
		i.finished_ms = nv__epoch_ms();
	pthread_mutex_lock(&r->mu);
	int rc = nv__jidx_put(&r->idx, &i);
	pthread_mutex_unlock(&r->mu);
	return rc;
}

static int
mr_set_result(nv_results *base, const nv_job_info *in)
{
	return mr_set(base, in, NV_SUCCESS);
}

static int
mr_set_error(nv_results *base, const nv_job_info *in)
{
	return mr_set(base, in, NV_FAILED);
}

#define LOCKED(r, call)                                                        \
	do {                                                                   \
		struct memr *m_ = (struct memr *)(r);                          \
		pthread_mutex_lock(&m_->mu);                                   \
		int rc_ = (call);                                              \
		pthread_mutex_unlock(&m_->mu);                                 \
		return rc_;                                                    \
	} while (0)

static int
mr_get_result(nv_results *r, nv_job_id id, void **buf, size_t *len)
{
	LOCKED(r, nv__jidx_result(&m_->idx, id, buf, len));
}

static int
mr_get_error(nv_results *r, nv_job_id id, char **msg)
{
	LOCKED(r, nv__jidx_error(&m_->idx, id, msg));
}

static int
mr_get_full(nv_results *r, nv_job_id id, nv_job_info **out)
{
	LOCKED(r, nv__jidx_full(&m_->idx, id, out));
}

static int
mr_list_jobs(nv_results *r, const nv_job_filter *f, nv_job_info ***out,
	     size_t *n)
{
	LOCKED(r, nv__jidx_list(&m_->idx, f, out, n));
}

const nv_results_ops nv__memory_results_ops = {
    .version = NV_RESULTS_OPS_VERSION,
    .name = "memory",
    .open = mr_open,
    .close = mr_close,
    .set_result = mr_set_result,
    .set_error = mr_set_error,
    .get_result = mr_get_result,
    .get_error = mr_get_error,
    .get_full = mr_get_full,
    .list_jobs = mr_list_jobs,
};
