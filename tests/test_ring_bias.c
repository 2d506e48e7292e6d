/* ctest: labels=unit;stress;concurrency timeout=600 */
/*
 * test_ring_bias.c - the ring's owner-biased sides (lockfree/bias.h): a
 * side claimed by one thread with plain stores hands over to CAS mode the
 * first time a second thread claims on it, without losing, duplicating or
 * reordering an item, in every order the hand-over can happen in.
 */
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <sys/time.h>
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

	/* Pinned (nv_test_pin): threads that share a CPU preempt each
	 * other, an owner mid-claim included, for a whole time slice. */
	nv_test_pin(w->id);
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
	nv_test_pin(w->id + 1);
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

/* ---- signal handlers on the owner's thread: a handler that interrupts
 * its own thread's claim must not take the same position twice (the ring
 * answers full / empty for that call instead). */

#define SIG_SECS 1

static nv_ring *sig_ring;
static unsigned char *sig_seen; /* one byte per item id */
static uint64_t sig_n;          /* ids are 1..sig_n */
static volatile sig_atomic_t sig_bad;
static uint64_t sig_next;       /* handler's next id to push (test B) */

static void
sig_note(void *p)
{
	uint64_t v = (uintptr_t)p;
	if (v == 0 || v > sig_n || sig_seen[v - 1]++)
		sig_bad = 1;
}

static void
on_alarm_pop(int sig)
{
	void *p;
	(void)sig;
	if (nv_ring_try_pop(sig_ring, &p))
		sig_note(p);
}

static void
on_alarm_push(int sig)
{
	(void)sig;
	if (sig_next <= sig_n &&
	    nv_ring_try_push(sig_ring, (void *)(uintptr_t)sig_next))
		sig_next++;
}

static void
alarm_every_50us(void (*fn)(int))
{
	struct sigaction sa;
	struct itimerval it = { { 0, 50 }, { 0, 50 } };
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = SA_RESTART;
	assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
}

static void
alarm_off(void)
{
	struct itimerval zero;
	memset(&zero, 0, sizeof(zero));
	setitimer(ITIMER_REAL, &zero, NULL);
	signal(SIGALRM, SIG_IGN);
}

/* Starts fn on a thread that never takes SIGALRM. */
static pthread_t
start_masked(void *(*fn)(void *), void *arg)
{
	sigset_t set, old;
	pthread_t th;
	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	assert_int_equal(pthread_create(&th, NULL, fn, arg), 0);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return th;
}

static void *
sig_producer(void *arg)
{
	uint64_t *stop = arg;
	for (uint64_t i = 1; i <= sig_n;) {
		if (nv_ring_try_push(sig_ring, (void *)(uintptr_t)i))
			i++;
		else if (__atomic_load_n(stop, __ATOMIC_ACQUIRE))
			break;
	}
	return NULL;
}

/* Test A: the main thread owns the consumers' side and pops; the
 * handler pops on the same thread. */
static void
test_bias_signal_handler_pops(void **state)
{
	uint64_t stop = 0;
	void *p;
	(void)state;
	sig_n = nv_test_scaled(4000000);
	sig_seen = calloc(sig_n, 1);
	sig_bad = 0;
	assert_int_equal(nv_ring_create(&sig_ring, 1024), 0);
	(void)nv_ring_try_pop(sig_ring, &p); /* take the consumers' side */
	pthread_t th = start_masked(sig_producer, &stop);
	alarm_every_50us(on_alarm_pop);
	uint64_t end = nv_test_clock_ns(CLOCK_MONOTONIC) +
		       (uint64_t)SIG_SECS * 1000000000u;
	while (nv_test_clock_ns(CLOCK_MONOTONIC) < end)
		if (nv_ring_try_pop(sig_ring, &p))
			sig_note(p);
	alarm_off();
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	/* Drain until the producer is done and the ring is empty. */
	for (;;) {
		if (nv_ring_try_pop(sig_ring, &p))
			sig_note(p);
		else if (pthread_tryjoin_np(th, NULL) == 0)
			break;
	}
	while (nv_ring_try_pop(sig_ring, &p))
		sig_note(p);
	assert_int_equal(sig_bad, 0);
	nv_ring_destroy(sig_ring);
	free(sig_seen);
}

static void *
sig_consumer(void *arg)
{
	uint64_t *stop = arg;
	void *p;
	for (;;) {
		if (nv_ring_try_pop(sig_ring, &p))
			sig_note(p);
		else if (__atomic_load_n(stop, __ATOMIC_ACQUIRE) &&
			 nv_ring_size(sig_ring) == 0)
			break;
	}
	return NULL;
}

/* Test B: the main thread owns the producers' side and pushes the low
 * half of the ids; the handler pushes the high half on the same thread. */
static void
test_bias_signal_handler_pushes(void **state)
{
	uint64_t stop = 0, mine = 0, half;
	(void)state;
	sig_n = nv_test_scaled(4000000);
	half = sig_n / 2;
	sig_seen = calloc(sig_n, 1);
	sig_bad = 0;
	sig_next = half + 1;
	assert_int_equal(nv_ring_create(&sig_ring, 1024), 0);
	assert_true(nv_ring_try_push(sig_ring, (void *)(uintptr_t)1));
	mine = 1; /* the main thread owns the producers' side */
	pthread_t th = start_masked(sig_consumer, &stop);
	alarm_every_50us(on_alarm_push);
	uint64_t end = nv_test_clock_ns(CLOCK_MONOTONIC) +
		       (uint64_t)SIG_SECS * 1000000000u;
	while (mine < half && nv_test_clock_ns(CLOCK_MONOTONIC) < end)
		if (nv_ring_try_push(sig_ring, (void *)(uintptr_t)(mine + 1)))
			mine++;
	alarm_off();
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(sig_bad, 0);
	/* Exactly what went in came out: ids 1..mine and half+1..sig_next-1. */
	for (uint64_t v = 1; v <= sig_n; v++) {
		bool in = v <= mine || (v > half && v < sig_next);
		assert_int_equal(sig_seen[v - 1], in ? 1 : 0);
	}
	nv_ring_destroy(sig_ring);
	free(sig_seen);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bias_handover_in_order),
		cmocka_unit_test(test_bias_handover_race_single),
		cmocka_unit_test(test_bias_handover_race_bulk),
		cmocka_unit_test(test_bias_signal_handler_pops),
		cmocka_unit_test(test_bias_signal_handler_pushes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
