/* ctest: labels=unit;stress;concurrency timeout=600 */
/*
 * test_ring.c - the bounded MPMC ring: single-thread semantics and the
 * validate-style stress (every item popped exactly once, each producer's
 * items seen in order by every consumer, magic values checked).
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

static void
test_ring_create_rounds_up(void **state)
{
	nv_ring *r;
	(void)state;
	assert_int_equal(nv_ring_create(&r, 1000), 0);
	assert_int_equal(nv_ring_capacity(r), 1024);
	assert_int_equal(nv_ring_size(r), 0);
	nv_ring_destroy(r);
	assert_int_equal(nv_ring_create(&r, 1), 0);
	assert_int_equal(nv_ring_capacity(r), 2);
	nv_ring_destroy(r);
	assert_int_equal(nv_ring_create(&r, 0), NV_EINVAL);
	assert_int_equal(nv_ring_create(NULL, 8), NV_EINVAL);
	assert_int_equal(nv_ring_create(&r, ((size_t)1 << 30) + 1), NV_EINVAL);
	nv_ring_destroy(NULL);
}

static void
test_ring_fifo_full_empty(void **state)
{
	nv_ring *r;
	void *p;
	(void)state;
	assert_int_equal(nv_ring_create(&r, 8), 0);
	assert_false(nv_ring_try_pop(r, &p));
	for (uintptr_t i = 0; i < 8; i++)
		assert_true(nv_ring_try_push(r, (void *)(i + 1)));
	assert_int_equal(nv_ring_size(r), 8);
	assert_false(nv_ring_try_push(r, (void *)99));
	for (uintptr_t i = 0; i < 8; i++) {
		assert_true(nv_ring_try_pop(r, &p));
		assert_ptr_equal(p, (void *)(i + 1));
	}
	assert_false(nv_ring_try_pop(r, &p));
	assert_int_equal(nv_ring_size(r), 0);
	/* NULL is a valid item. */
	assert_true(nv_ring_try_push(r, NULL));
	p = (void *)1;
	assert_true(nv_ring_try_pop(r, &p));
	assert_null(p);
	nv_ring_destroy(r);
}

static void
test_ring_wraps_many_times(void **state)
{
	nv_ring *r;
	void *p;
	uintptr_t next_in = 1, next_out = 1;
	(void)state;
	assert_int_equal(nv_ring_create(&r, 4), 0);
	/* Varying fill levels across 100k laps of a 4-slot ring. */
	for (int i = 0; i < 400000; i++) {
		int k = 1 + i % 4;
		for (int j = 0; j < k; j++)
			if (nv_ring_try_push(r, (void *)next_in))
				next_in++;
		for (int j = 0; j < (i % 3) + 1; j++) {
			if (!nv_ring_try_pop(r, &p))
				break;
			assert_ptr_equal(p, (void *)next_out);
			next_out++;
		}
		assert_true(nv_ring_size(r) <= 4);
		assert_int_equal(nv_ring_size(r), next_in - next_out);
	}
	while (nv_ring_try_pop(r, &p)) {
		assert_ptr_equal(p, (void *)next_out);
		next_out++;
	}
	assert_int_equal(next_in, next_out);
	nv_ring_destroy(r);
}

static void
test_ring_bulk_partial(void **state)
{
	nv_ring *r;
	void *in[40], *out[40];
	(void)state;
	for (uintptr_t i = 0; i < 40; i++)
		in[i] = (void *)(i + 100);
	assert_int_equal(nv_ring_create(&r, 32), 0);
	assert_int_equal(nv_ring_pop_bulk(r, out, 8), 0);
	assert_int_equal(nv_ring_push_bulk(r, in, 10), 10);
	/* Only 22 slots left: a push of 40 puts 22 in, in order. */
	assert_int_equal(nv_ring_push_bulk(r, in + 10, 30), 22);
	assert_int_equal(nv_ring_push_bulk(r, in, 1), 0);
	assert_false(nv_ring_try_push(r, in[0]));
	assert_int_equal(nv_ring_size(r), 32);
	assert_int_equal(nv_ring_pop_bulk(r, out, 5), 5);
	for (int i = 0; i < 5; i++)
		assert_ptr_equal(out[i], in[i]);
	/* Asking for more than there is gives what there is. */
	assert_int_equal(nv_ring_pop_bulk(r, out, 40), 27);
	for (int i = 0; i < 27; i++)
		assert_ptr_equal(out[i], in[i + 5]);
	assert_int_equal(nv_ring_size(r), 0);
	/* Bulk and single interleave across the wrap point. */
	for (int lap = 0; lap < 1000; lap++) {
		assert_int_equal(nv_ring_push_bulk(r, in, 20), 20);
		for (int i = 0; i < 3; i++) {
			void *p;
			assert_true(nv_ring_try_pop(r, &p));
			assert_ptr_equal(p, in[i]);
		}
		assert_int_equal(nv_ring_pop_bulk(r, out, 40), 17);
		for (int i = 0; i < 17; i++)
			assert_ptr_equal(out[i], in[i + 3]);
	}
	assert_int_equal(nv_ring_push_bulk(r, in, 0), 0);
	nv_ring_destroy(r);
}

/*
 * Room for producers comes from head (through the producers' copy of it,
 * refreshed when the copy says full): after k pops of a full ring exactly
 * k more items go in, whichever mix of single and bulk calls takes them,
 * and the items that were in are never overwritten.
 */
static void
test_ring_room_follows_pops(void **state)
{
	nv_ring *r;
	void *in[64], *out[64];
	uintptr_t next_in = 1, next_out = 1;
	(void)state;
	assert_int_equal(nv_ring_create(&r, 16), 0);
	for (unsigned lap = 0; lap < 500; lap++) {
		size_t k = 1 + lap % 16, got;
		while (nv_ring_try_push(r, (void *)next_in))
			next_in++;
		assert_int_equal(nv_ring_size(r), 16);
		/* Pop k: alternately one bulk call and k single calls. */
		if (lap % 2) {
			assert_int_equal(nv_ring_pop_bulk(r, out, k), k);
		} else {
			for (size_t i = 0; i < k; i++)
				assert_true(nv_ring_try_pop(r, &out[i]));
		}
		for (size_t i = 0; i < k; i++)
			assert_ptr_equal(out[i], (void *)next_out++);
		/* Exactly k fit again; a bulk push of more takes k. */
		for (size_t i = 0; i < 64; i++)
			in[i] = (void *)(next_in + i);
		got = nv_ring_push_bulk(r, in, 64);
		assert_int_equal(got, k);
		next_in += got;
		assert_false(nv_ring_try_push(r, (void *)next_in));
	}
	/* Everything comes out in order. */
	while (nv_ring_try_pop(r, &out[0]))
		assert_ptr_equal(out[0], (void *)next_out++);
	assert_int_equal(next_out, next_in);
	nv_ring_destroy(r);
}

/* ---- validate-style stress (after ck's regressions/ck_ring validate) */

#define MAGIC 0x5eedf00dcafeULL

struct item {
	uint64_t magic;
	uint32_t producer;
	uint64_t seq;
	int refs; /* atomic: popped exactly once */
};

struct stress {
	nv_ring *ring;
	unsigned np, nc;
	uint64_t per_producer;
	bool bulk;
	struct item *items;       /* np * per_producer */
	uint64_t popped;          /* atomic */
	uint64_t total;
	int errors;               /* atomic */
};

struct worker {
	struct stress *s;
	unsigned id;
	pthread_t th;
};

static void *
producer(void *arg)
{
	struct worker *w = arg;
	struct stress *s = w->s;
	struct item *base = s->items + (size_t)w->id * s->per_producer;
	uint64_t i = 0;

	while (i < s->per_producer) {
		if (s->bulk) {
			void *batch[32];
			size_t n = s->per_producer - i < 32 ? s->per_producer - i : 32;
			for (size_t j = 0; j < n; j++)
				batch[j] = &base[i + j];
			size_t k = nv_ring_push_bulk(s->ring, batch, n);
			i += k;
			if (k == 0)
				sched_yield();
		} else if (nv_ring_try_push(s->ring, &base[i])) {
			i++;
		} else {
			sched_yield();
		}
	}
	return NULL;
}

static void
check_item(struct stress *s, struct item *it, uint64_t *last_seq)
{
	if (it == NULL || it->magic != MAGIC || it->producer >= s->np) {
		__atomic_fetch_add(&s->errors, 1, __ATOMIC_RELAXED);
		return;
	}
	if (__atomic_fetch_add(&it->refs, 1, __ATOMIC_RELAXED) != 0)
		__atomic_fetch_add(&s->errors, 1, __ATOMIC_RELAXED);
	/* Per-producer order as seen by this consumer. */
	if (last_seq[it->producer] != UINT64_MAX &&
	    it->seq <= last_seq[it->producer])
		__atomic_fetch_add(&s->errors, 1, __ATOMIC_RELAXED);
	last_seq[it->producer] = it->seq;
}

static void *
consumer(void *arg)
{
	struct worker *w = arg;
	struct stress *s = w->s;
	uint64_t *last = malloc(sizeof(uint64_t) * s->np);

	for (unsigned i = 0; i < s->np; i++)
		last[i] = UINT64_MAX;
	while (__atomic_load_n(&s->popped, __ATOMIC_RELAXED) < s->total) {
		void *batch[32];
		size_t k;
		if (s->bulk) {
			k = nv_ring_pop_bulk(s->ring, batch, 32);
		} else {
			k = nv_ring_try_pop(s->ring, &batch[0]) ? 1 : 0;
		}
		for (size_t j = 0; j < k; j++)
			check_item(s, batch[j], last);
		if (k)
			__atomic_fetch_add(&s->popped, k, __ATOMIC_RELAXED);
		else
			sched_yield();
	}
	free(last);
	return NULL;
}

static void
run_stress(unsigned np, unsigned nc, uint64_t total, bool bulk, size_t cap)
{
	struct stress s = { 0 };
	struct worker *ws = calloc(np + nc, sizeof(*ws));

	s.np = np;
	s.nc = nc;
	s.bulk = bulk;
	s.per_producer = nv_test_scaled(total) / np;
	s.total = s.per_producer * np;
	s.items = calloc(s.total, sizeof(struct item));
	assert_non_null(s.items);
	for (unsigned p = 0; p < np; p++)
		for (uint64_t i = 0; i < s.per_producer; i++) {
			struct item *it = &s.items[p * s.per_producer + i];
			it->magic = MAGIC;
			it->producer = p;
			it->seq = i;
		}
	assert_int_equal(nv_ring_create(&s.ring, cap), 0);
	for (unsigned i = 0; i < nc; i++) {
		ws[np + i].s = &s;
		ws[np + i].id = i;
		pthread_create(&ws[np + i].th, NULL, consumer, &ws[np + i]);
	}
	for (unsigned i = 0; i < np; i++) {
		ws[i].s = &s;
		ws[i].id = i;
		pthread_create(&ws[i].th, NULL, producer, &ws[i]);
	}
	for (unsigned i = 0; i < np + nc; i++)
		pthread_join(ws[i].th, NULL);
	assert_int_equal(s.errors, 0);
	assert_int_equal(s.popped, s.total);
	for (uint64_t i = 0; i < s.total; i++)
		assert_int_equal(s.items[i].refs, 1);
	assert_int_equal(nv_ring_size(s.ring), 0);
	nv_ring_destroy(s.ring);
	free(s.items);
	free(ws);
}

static void
test_ring_stress_1x1(void **state)
{
	(void)state;
	run_stress(1, 1, 2000000, false, 1024);
}

static void
test_ring_stress_2x2(void **state)
{
	(void)state;
	run_stress(2, 2, 2000000, false, 1024);
}

static void
test_ring_stress_4x4(void **state)
{
	(void)state;
	run_stress(4, 4, 2000000, false, 256);
}

static void
test_ring_stress_8x8(void **state)
{
	(void)state;
	run_stress(8, 8, 2000000, false, 64);
}

static void
test_ring_stress_bulk_4x4(void **state)
{
	(void)state;
	run_stress(4, 4, 2000000, true, 128);
}

static void
test_ring_stress_bulk_large_ring(void **state)
{
	(void)state;
	/* A ring large enough for the producers' write run-ahead and the
	 * consumers' read-ahead of full batches (ring.c), with both sides
	 * contended. */
	run_stress(2, 2, 2000000, true, 4096);
	run_stress(1, 1, 2000000, true, 4096);
}

static void
test_ring_stress_mixed_small_ring(void **state)
{
	(void)state;
	/* A tiny ring maximizes full/empty edges and lap reuse. */
	run_stress(3, 2, 1000000, true, 2);
	run_stress(2, 3, 1000000, false, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_create_rounds_up),
		cmocka_unit_test(test_ring_fifo_full_empty),
		cmocka_unit_test(test_ring_wraps_many_times),
		cmocka_unit_test(test_ring_bulk_partial),
		cmocka_unit_test(test_ring_room_follows_pops),
		cmocka_unit_test(test_ring_stress_1x1),
		cmocka_unit_test(test_ring_stress_2x2),
		cmocka_unit_test(test_ring_stress_4x4),
		cmocka_unit_test(test_ring_stress_8x8),
		cmocka_unit_test(test_ring_stress_bulk_4x4),
		cmocka_unit_test(test_ring_stress_bulk_large_ring),
		cmocka_unit_test(test_ring_stress_mixed_small_ring),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
