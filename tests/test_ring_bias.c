/* ctest: labels=unit;stress;concurrency timeout=600 */
/*
 * test_ring_bias.c - the ring's owner-biased sides (lockfree/bias.h): a
 * side claimed by one thread with plain stores hands over to CAS mode the
 * first time a second thread claims on it, without losing, duplicating or
 * reordering an item, in every order the hand-over can happen in.
 */
#include "testutil.h"

#include <pthread.h>
#include <unistd.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

struct call {
	nv_ring *r;
	uintptr_t from, n;
	bool bulk;
	uintptr_t got[64];
	size_t ngot;
};

static void *
push_some(void *arg)
{
	struct call *c = arg;
	for (uintptr_t i = 0; i < c->n; i++) {
		void *p = (void *)(c->from + i);
		if (c->bulk)
			assert_int_equal(nv_ring_push_bulk(c->r, &p, 1), 1);
		else
			assert_true(nv_ring_try_push(c->r, p));
	}
	return NULL;
}

static void *
pop_some(void *arg)
{
	struct call *c = arg;
	void *p;
	for (uintptr_t i = 0; i < c->n; i++) {
		if (c->bulk)
			assert_int_equal(nv_ring_pop_bulk(c->r, &p, 1), 1);
		else
			assert_true(nv_ring_try_pop(c->r, &p));
		c->got[c->ngot++] = (uintptr_t)p;
	}
	return NULL;
}

static void
on_thread(void *(*fn)(void *), struct call *c)
{
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, fn, c), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
}

/*
 * One thread pushes (owning the producer side), a second thread pushes
 * (revoking), the first pushes again (now with CAS); the same on the
 * consumer side. FIFO order and room survive both hand-overs, in single
 * and bulk calls.
 */
static void
test_bias_handover_in_order(void **state)
{
	(void)state;
	for (int bulk = 0; bulk < 2; bulk++) {
		nv_ring *r;
		struct call c = { 0 };
		void *p;
		assert_int_equal(nv_ring_create(&r, 32), 0);
		c.r = r;
		c.bulk = bulk;
		c.from = 1, c.n = 10;
		push_some(&c); /* main thread owns the producers' side */
		c.from = 11, c.n = 10;
		on_thread(push_some, &c); /* revokes it */
		c.from = 21, c.n = 12;
		push_some(&c); /* CAS from now on; fills the ring */
		assert_false(nv_ring_try_push(r, (void *)99));
		assert_int_equal(nv_ring_size(r), 32);

		c.ngot = 0, c.n = 5;
		pop_some(&c); /* main thread owns the consumers' side */
		c.n = 7;
		on_thread(pop_some, &c); /* revokes it */
		c.n = 20;
		pop_some(&c);
		assert_int_equal(c.ngot, 32);
		for (size_t i = 0; i < 32; i++)
			assert_int_equal(c.got[i], i + 1);
		assert_false(nv_ring_try_pop(r, &p));
		/* Room is exact after the hand-over too. */
		for (uintptr_t i = 0; i < 32; i++)
			assert_true(nv_ring_try_push(r, (void *)(i + 100)));
		assert_false(nv_ring_try_push(r, (void *)1));
		nv_ring_destroy(r);
	}
}

/* ---- hand-over under contention: many fresh rings, all threads start
 * at once, so revocations race with owners in the middle of claims
 * (more threads than CPUs: owners get preempted inside them). */

#define NP 4
#define NC 4

struct race {
	nv_ring *r;
	uint64_t per;      /* items per producer */
	uint64_t popped;   /* atomic */
	int errors;        /* atomic */
	int go;            /* atomic */
	bool bulk;
	unsigned char *seen; /* NP * per, one byte per item */
};

struct racer {
	struct race *s;
	unsigned id;
	pthread_t th;
};

/* Pins the calling thread to CPU i % ncpu: threads that share a CPU
 * preempt each other, an owner mid-claim included, and stay off it for a
 * whole time slice. */
static void
pin(unsigned i)
{
	cpu_set_t set;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	CPU_ZERO(&set);
	CPU_SET(i % (unsigned)(n > 0 ? n : 1), &set);
	(void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void
wait_go(struct race *s)
{
	while (!__atomic_load_n(&s->go, __ATOMIC_ACQUIRE))
		sched_yield();
}

static void *
race_producer(void *arg)
{
	struct racer *w = arg;
	struct race *s = w->s;
	uint64_t i = 0;

	pin(w->id);
	wait_go(s);
	while (i < s->per) {
		/* Items are 1 + producer * per + seq (never NULL). */
		void *batch[8];
		size_t n = s->per - i < 8 ? s->per - i : 8, k;
		for (size_t j = 0; j < n; j++)
			batch[j] = (void *)(uintptr_t)(1 + w->id * s->per + i + j);
		if (s->bulk && (i & 1))
			k = nv_ring_push_bulk(s->r, batch, n);
		else
			k = nv_ring_try_push(s->r, batch[0]) ? 1 : 0;
		i += k;
		if (k == 0)
			sched_yield();
	}
	return NULL;
}

static void *
race_consumer(void *arg)
{
	struct racer *w = arg;
	struct race *s = w->s;
	uint64_t total = s->per * NP, last[NP];

	for (unsigned p = 0; p < NP; p++)
		last[p] = UINT64_MAX;
	pin(w->id + 1);
	wait_go(s);
	while (__atomic_load_n(&s->popped, __ATOMIC_RELAXED) < total) {
		void *batch[8];
		size_t k = s->bulk && (w->id & 1)
				   ? nv_ring_pop_bulk(s->r, batch, 8)
				   : (nv_ring_try_pop(s->r, &batch[0]) ? 1 : 0);
		for (size_t j = 0; j < k; j++) {
			uint64_t v = (uintptr_t)batch[j] - 1, p = v / s->per;
			if (v >= total || __atomic_fetch_add(&s->seen[v], 1,
							     __ATOMIC_RELAXED)) {
				__atomic_fetch_add(&s->errors, 1,
						   __ATOMIC_RELAXED);
				continue;
			}
			/* Per-producer order as this consumer sees it. */
			if (last[p] != UINT64_MAX && v <= last[p])
				__atomic_fetch_add(&s->errors, 1,
						   __ATOMIC_RELAXED);
			last[p] = v;
		}
		if (k)
			__atomic_fetch_add(&s->popped, k, __ATOMIC_RELAXED);
		else
			sched_yield();
	}
	return NULL;
}

static void
race_rounds(unsigned rounds, uint64_t per, bool bulk, size_t cap)
{
	struct race s;
	struct racer w[NP + NC];

	for (unsigned round = 0; round < rounds; round++) {
		memset(&s, 0, sizeof(s));
		s.per = per;
		s.bulk = bulk;
		s.seen = calloc(NP * per, 1);
		assert_non_null(s.seen);
		assert_int_equal(nv_ring_create(&s.r, cap), 0);
		for (unsigned i = 0; i < NP + NC; i++) {
			w[i].s = &s;
			w[i].id = i < NP ? i : i - NP;
			assert_int_equal(pthread_create(&w[i].th, NULL,
							i < NP ? race_producer
							       : race_consumer,
							&w[i]),
					 0);
		}
		__atomic_store_n(&s.go, 1, __ATOMIC_RELEASE);
		for (unsigned i = 0; i < NP + NC; i++)
			assert_int_equal(pthread_join(w[i].th, NULL), 0);
		assert_int_equal(s.errors, 0);
		assert_int_equal(s.popped, NP * per);
		for (uint64_t v = 0; v < NP * per; v++)
			assert_int_equal(s.seen[v], 1);
		assert_int_equal(nv_ring_size(s.r), 0);
		nv_ring_destroy(s.r);
		free(s.seen);
	}
}

static void
test_bias_handover_race_single(void **state)
{
	(void)state;
	race_rounds((unsigned)nv_test_scaled(400), 5000, false, 4096);
}

static void
test_bias_handover_race_bulk(void **state)
{
	(void)state;
	race_rounds((unsigned)nv_test_scaled(400), 5000, true, 64);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bias_handover_in_order),
		cmocka_unit_test(test_bias_handover_race_single),
		cmocka_unit_test(test_bias_handover_race_bulk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
