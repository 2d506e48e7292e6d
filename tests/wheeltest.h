/*
 * tests/wheeltest.h - helpers shared by the timer wheel tests
 * (test_wheel.c, test_wheel_stress.c).
 *
 * Header-only (static functions), included once by each test executable
 * after testutil.h. It provides a seeded xorshift generator (rnd,
 * rnd_below: deterministic test data), check() (the invariant checker of
 * lockfree/wheel_int.h as a cmocka failure), and the recording timer:
 * each fire appends its id to a shared log (g_log), notes the wheel's
 * clock, and counts fires out of (deadline, add sequence) order;
 * expected_order() computes that order independently by sorting.
 */
#ifndef NV_WHEELTEST_H
#define NV_WHEELTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockfree/wheel_int.h"
#include "testutil.h"

#define MAXD NV__WHEEL_MAX_DEADLINE

static uint64_t rng_state;

static inline uint64_t
rnd(void)
{
	return nv_test_rand(&rng_state);
}

static inline uint64_t
rnd_below(uint64_t n)
{
	return n == 0 ? 0 : rnd() % n;
}

static inline void
check(const nv_wheel *w)
{
	char why[256];
	bool ok = nv__wheel_check(w, why, sizeof(why));
	if (!ok)
		fail_msg("wheel invariant: %s", why);
}

/* A recording timer: each fire appends its id to a shared log, notes the
 * wheel's clock, and checks (deadline, add sequence) order against the
 * previous fire (meaningful where all adds precede the advances). */
struct rec {
	nv_timer t;
	int id;
	uint64_t d;   /* deadline it was added with */
	uint64_t seq; /* add order */
	int fired;
	uint64_t at; /* wheel clock when it last fired */
};

static struct {
	nv_wheel *w;
	int *ids;
	size_t n, cap;
	uint64_t seq, last_d, last_seq;
	size_t misorder;
} g_log;

static inline void
rec_cb(nv_timer *t, void *arg)
{
	struct rec *r = arg;
	assert_ptr_equal(t, &r->t);
	assert_false(nv_timer_pending(t));
	r->fired++;
	r->at = nv__wheel_now(g_log.w);
	if (g_log.n > 0 && (r->d < g_log.last_d ||
			    (r->d == g_log.last_d && r->seq < g_log.last_seq)))
		g_log.misorder++;
	g_log.last_d = r->d;
	g_log.last_seq = r->seq;
	if (g_log.n < g_log.cap)
		g_log.ids[g_log.n] = r->id;
	g_log.n++;
}

static inline void
log_reset(nv_wheel *w, size_t cap)
{
	free(g_log.ids);
	memset(&g_log, 0, sizeof(g_log));
	g_log.w = w;
	g_log.ids = calloc(cap ? cap : 1, sizeof(int));
	assert_non_null(g_log.ids);
	g_log.cap = cap;
}

static inline void
log_free(void)
{
	free(g_log.ids);
	memset(&g_log, 0, sizeof(g_log));
}

static inline void
rec_init(struct rec *r, int id)
{
	memset(r, 0, sizeof(*r));
	r->id = id;
	nv_timer_init(&r->t, rec_cb, r);
}

/* Adds r at d, remembering d and the add sequence; returns add's rc. */
static inline int
rec_arm(nv_wheel *w, struct rec *r, uint64_t d)
{
	int rc = nv_wheel_add(w, &r->t, d);
	if (rc == 0) {
		r->d = d;
		r->seq = ++g_log.seq;
	}
	return rc;
}

static struct rec *g_sort_base;

static inline int
cmp_by_deadline(const void *a, const void *b)
{
	const struct rec *x = &g_sort_base[*(const int *)a];
	const struct rec *y = &g_sort_base[*(const int *)b];
	if (x->d != y->d)
		return x->d < y->d ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The ids of r[0..n) sorted by (deadline, seq): the expected fire order. */
static inline int *
expected_order(struct rec *r, size_t n)
{
	int *want = calloc(n ? n : 1, sizeof(int));
	assert_non_null(want);
	for (size_t i = 0; i < n; i++)
		want[i] = (int)i;
	g_sort_base = r;
	qsort(want, n, sizeof(int), cmp_by_deadline);
	return want;
}

#endif /* NV_WHEELTEST_H */
