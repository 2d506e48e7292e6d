/*
 * baseline_queues.c - the queues nv_ring is measured against, behind one
 * ops table (bench/baseline_queues.h):
 *
 *  - "vyukov": a textbook per-slot-sequence bounded MPMC queue, written
 *    here from the published algorithm (one CAS per operation, padded
 *    indices, cells of {seq, data}). The reference our ring must match.
 *  - "ck_ring": Concurrency Kit's ck_ring in its MPMC mode.
 *  - "wfcqueue": liburcu's wait-free concurrent queue (unbounded, intrusive
 *    nodes, blocking dequeue with an internal mutex for many consumers).
 *  - "mutex": a bounded array queue behind a mutex and two condition
 *    variables (blocking push/pop), the classic thread-pool queue.
 *  - "nv_ring": ours, through the same table.
 */
#include "baseline_queues.h"

#include <ck_ring.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <urcu/wfcqueue.h>

#include "nuvom/ring.h"

/* ------------------------------------------------------------ vyukov */

struct vcell {
	uint64_t seq;
	void *data;
};

struct vyukov {
	char pad0[64];
	struct vcell *buf;
	uint64_t mask;
	char pad1[64 - sizeof(void *) - sizeof(uint64_t)];
	uint64_t enq;
	char pad2[64 - sizeof(uint64_t)];
	uint64_t deq;
	char pad3[64 - sizeof(uint64_t)];
};

static void *
vy_create(size_t cap)
{
	struct vyukov *q;
	size_t n = 2;
	while (n < cap)
		n <<= 1;
	if (posix_memalign((void **)&q, 64, sizeof(*q)))
		return NULL;
	memset(q, 0, sizeof(*q));
	q->buf = calloc(n, sizeof(struct vcell));
	for (size_t i = 0; i < n; i++)
		q->buf[i].seq = i;
	q->mask = n - 1;
	return q;
}

static void
vy_destroy(void *p)
{
	struct vyukov *q = p;
	free(q->buf);
	free(q);
}

static bool
vy_push(void *p, void *item)
{
	struct vyukov *q = p;
	uint64_t pos = __atomic_load_n(&q->enq, __ATOMIC_RELAXED);
	struct vcell *c;
	for (;;) {
		c = &q->buf[pos & q->mask];
		uint64_t seq = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
		intptr_t dif = (intptr_t)seq - (intptr_t)pos;
		if (dif == 0) {
			if (__atomic_compare_exchange_n(&q->enq, &pos, pos + 1,
							true, __ATOMIC_RELAXED,
							__ATOMIC_RELAXED))
				break;
		} else if (dif < 0) {
			return false;
		} else {
			pos = __atomic_load_n(&q->enq, __ATOMIC_RELAXED);
		}
	}
	c->data = item;
	__atomic_store_n(&c->seq, pos + 1, __ATOMIC_RELEASE);
	return true;
}

static bool
vy_pop(void *p, void **item)
{
	struct vyukov *q = p;
	uint64_t pos = __atomic_load_n(&q->deq, __ATOMIC_RELAXED);
	struct vcell *c;
	for (;;) {
		c = &q->buf[pos & q->mask];
		uint64_t seq = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
		intptr_t dif = (intptr_t)seq - (intptr_t)(pos + 1);
		if (dif == 0) {
			if (__atomic_compare_exchange_n(&q->deq, &pos, pos + 1,
							true, __ATOMIC_RELAXED,
							__ATOMIC_RELAXED))
				break;
		} else if (dif < 0) {
			return false;
		} else {
			pos = __atomic_load_n(&q->deq, __ATOMIC_RELAXED);
		}
	}
	*item = c->data;
	__atomic_store_n(&c->seq, pos + q->mask + 1, __ATOMIC_RELEASE);
	return true;
}

/* ------------------------------------------------------------ ck_ring */

struct ckq {
	struct ck_ring ring;
	struct ck_ring_buffer *buf;
};

static void *
ck_create(size_t cap)
{
	struct ckq *q;
	unsigned n = 2;
	while (n < cap)
		n <<= 1;
	if (posix_memalign((void **)&q, 64, sizeof(*q)))
		return NULL;
	q->buf = calloc(n, sizeof(struct ck_ring_buffer));
	ck_ring_init(&q->ring, n);
	return q;
}

static void
ck_destroy(void *p)
{
	struct ckq *q = p;
	free(q->buf);
	free(q);
}

static bool
ck_push(void *p, void *item)
{
	struct ckq *q = p;
	return ck_ring_enqueue_mpmc(&q->ring, q->buf, item);
}

static bool
ck_pop(void *p, void **item)
{
	struct ckq *q = p;
	return ck_ring_dequeue_mpmc(&q->ring, q->buf, item);
}

/* ------------------------------------------------------------ wfcqueue */

struct wfq {
	struct cds_wfcq_head head;
	char pad[64];
	struct cds_wfcq_tail tail;
};

static void *
wf_create(size_t cap)
{
	struct wfq *q;
	(void)cap;
	if (posix_memalign((void **)&q, 64, sizeof(*q)))
		return NULL;
	cds_wfcq_init(&q->head, &q->tail);
	return q;
}

static void
wf_destroy(void *p)
{
	struct wfq *q = p;
	cds_wfcq_destroy(&q->head, &q->tail);
	free(q);
}

/* Items pushed through wfcqueue must start with a struct cds_wfcq_node
 * (the bench's items do: see struct nvb_qitem). */
static bool
wf_push(void *p, void *item)
{
	struct wfq *q = p;
	struct cds_wfcq_node *n = item;
	cds_wfcq_node_init(n);
	cds_wfcq_enqueue(&q->head, &q->tail, n);
	return true;
}

static bool
wf_pop(void *p, void **item)
{
	struct wfq *q = p;
	struct cds_wfcq_node *n = cds_wfcq_dequeue_blocking(&q->head, &q->tail);
	if (n == NULL)
		return false;
	*item = n;
	return true;
}

/* ------------------------------------------------------------ mutex */

struct mq {
	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full;
	void **buf;
	size_t cap, head, count;
	int wait_push, wait_pop;
};

static void *
mq_create(size_t cap)
{
	struct mq *q = calloc(1, sizeof(*q));
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->not_empty, NULL);
	pthread_cond_init(&q->not_full, NULL);
	q->buf = calloc(cap, sizeof(void *));
	q->cap = cap;
	return q;
}

static void
mq_destroy(void *p)
{
	struct mq *q = p;
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
	free(q->buf);
	free(q);
}

static struct timespec
in_1ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

/* Blocking push with a bounded wait (so a stopped benchmark never hangs):
 * returns false only when nothing came free within 1 ms. */
static bool
mq_push(void *p, void *item)
{
	struct mq *q = p;
	pthread_mutex_lock(&q->mu);
	if (q->count == q->cap) {
		struct timespec ts = in_1ms();
		q->wait_push++;
		pthread_cond_timedwait(&q->not_full, &q->mu, &ts);
		q->wait_push--;
		if (q->count == q->cap) {
			pthread_mutex_unlock(&q->mu);
			return false;
		}
	}
	q->buf[(q->head + q->count) % q->cap] = item;
	q->count++;
	if (q->wait_pop)
		pthread_cond_signal(&q->not_empty);
	pthread_mutex_unlock(&q->mu);
	return true;
}

static bool
mq_pop(void *p, void **item)
{
	struct mq *q = p;
	pthread_mutex_lock(&q->mu);
	if (q->count == 0) {
		struct timespec ts = in_1ms();
		q->wait_pop++;
		pthread_cond_timedwait(&q->not_empty, &q->mu, &ts);
		q->wait_pop--;
		if (q->count == 0) {
			pthread_mutex_unlock(&q->mu);
			return false;
		}
	}
	*item = q->buf[q->head];
	q->head = (q->head + 1) % q->cap;
	q->count--;
	if (q->wait_push)
		pthread_cond_signal(&q->not_full);
	pthread_mutex_unlock(&q->mu);
	return true;
}

/* ------------------------------------------------------------ nv_ring */

static void *
nv_create(size_t cap)
{
	nv_ring *r;
	return nv_ring_create(&r, cap) == 0 ? r : NULL;
}

static void
nv_destroy(void *p)
{
	nv_ring_destroy(p);
}

static bool
nv_push(void *p, void *item)
{
	return nv_ring_try_push(p, item);
}

static bool
nv_pop(void *p, void **item)
{
	return nv_ring_try_pop(p, item);
}

static size_t
nv_push_bulk(void *p, void *const *items, size_t n)
{
	return nv_ring_push_bulk(p, items, n);
}

static size_t
nv_pop_bulk(void *p, void **items, size_t n)
{
	return nv_ring_pop_bulk(p, items, n);
}

const struct nvb_queue_ops nvb_q_nv_ring = { "nv_ring", nv_create,
					     nv_destroy, nv_push, nv_pop,
					     nv_push_bulk, nv_pop_bulk, false };
const struct nvb_queue_ops nvb_q_vyukov = { "vyukov", vy_create, vy_destroy,
					    vy_push, vy_pop, NULL, NULL, false };
const struct nvb_queue_ops nvb_q_ck = { "ck_ring", ck_create, ck_destroy,
					ck_push, ck_pop, NULL, NULL, false };
const struct nvb_queue_ops nvb_q_wfcq = { "wfcqueue", wf_create, wf_destroy,
					  wf_push, wf_pop, NULL, NULL, false };
const struct nvb_queue_ops nvb_q_mutex = { "mutex", mq_create, mq_destroy,
					   mq_push, mq_pop, NULL, NULL, true };
