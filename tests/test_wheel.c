/* ctest: labels=unit timeout=120 */
/*
 * test_wheel.c - the timer wheel (nuvom/wheel.h) against its contract.
 *
 * Every callback records what fired and the wheel's clock at that moment;
 * the tests compute the expected order and times themselves (sorting by
 * deadline, then add sequence) and compare. The randomized test runs a
 * reference model in lockstep: inside each callback it asks the model which
 * timer is due next, checks it is this one, and applies the same scripted
 * action (re-arm, cancel or add another) to both. The invariant checker of
 * lockfree/wheel_int.h runs after every step.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockfree/wheel_int.h"

#define MAXD NV__WHEEL_MAX_DEADLINE

/* ---------------------------------------------------------------- helpers */

static uint64_t rng_state;

static uint64_t
rnd(void)
{
	/* xorshift64*: deterministic per seed, good enough for test data. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static uint64_t
rnd_below(uint64_t n)
{
	return n == 0 ? 0 : rnd() % n;
}

static void
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

static void
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

static void
log_reset(nv_wheel *w, size_t cap)
{
	free(g_log.ids);
	memset(&g_log, 0, sizeof(g_log));
	g_log.w = w;
	g_log.ids = calloc(cap ? cap : 1, sizeof(int));
	assert_non_null(g_log.ids);
	g_log.cap = cap;
}

static void
log_free(void)
{
	free(g_log.ids);
	memset(&g_log, 0, sizeof(g_log));
}

static void
rec_init(struct rec *r, int id)
{
	memset(r, 0, sizeof(*r));
	r->id = id;
	nv_timer_init(&r->t, rec_cb, r);
}

/* Adds r at d, remembering d and the add sequence; returns add's rc. */
static int
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

static int
cmp_by_deadline(const void *a, const void *b)
{
	const struct rec *x = &g_sort_base[*(const int *)a];
	const struct rec *y = &g_sort_base[*(const int *)b];
	if (x->d != y->d)
		return x->d < y->d ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The ids of r[0..n) sorted by (deadline, seq): the expected fire order. */
static int *
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

/* ---------------------------------------------------------------- tests */

static void
test_wheel_bad_args(void **state)
{
	nv_wheel *w, *w2;
	struct rec r = {.id = 1};
	nv_timer z;

	assert_int_equal(nv_wheel_create(NULL, 0), NV_EINVAL);
	assert_int_equal(nv_wheel_create(&w, 100), 0);
	assert_int_equal(nv_wheel_create(&w2, 100), 0);
	log_reset(w, 8);
	nv_timer_init(&r.t, rec_cb, &r);

	assert_int_equal(nv_wheel_add(NULL, &r.t, 200), NV_EINVAL);
	assert_int_equal(nv_wheel_add(w, NULL, 200), NV_EINVAL);
	assert_int_equal(nv_wheel_add(w, &r.t, MAXD + 1), NV_EINVAL);
	assert_int_equal(nv_wheel_add(w, &r.t, UINT64_MAX), NV_EINVAL);
	nv_timer_init(&z, NULL, NULL);
	assert_int_equal(nv_wheel_add(w, &z, 200), NV_EINVAL);
	memset(&z, 0, sizeof(z)); /* zero-filled: not pending, no callback */
	assert_false(nv_timer_pending(&z));
	assert_int_equal(nv_wheel_add(w, &z, 200), NV_EINVAL);
	assert_false(nv_wheel_cancel(w, &z));
	assert_int_equal(nv_wheel_count(w), 0);

	/* A failed add leaves the timer idle and never fires it. */
	assert_false(nv_timer_pending(&r.t));
	assert_int_equal(nv_wheel_advance(w, 1000), 0);
	assert_int_equal(r.fired, 0);

	/* Pending: a second add fails with EBUSY, on any wheel. */
	assert_int_equal(nv_wheel_add(w, &r.t, 2000), 0);
	assert_true(nv_timer_pending(&r.t));
	assert_int_equal(nv_wheel_add(w, &r.t, 3000), NV_EBUSY);
	assert_int_equal(nv_wheel_add(w2, &r.t, 3000), NV_EBUSY);
	assert_int_equal(nv_wheel_count(w), 1);
	assert_int_equal(nv_wheel_count(w2), 0);
	/* The EBUSY did not move the deadline. */
	assert_true(nv_wheel_next_deadline(w) <= 2000);
	assert_int_equal(nv_wheel_advance(w, 1999), 0);
	/* Cancel on the wrong wheel is refused. */
	assert_false(nv_wheel_cancel(w2, &r.t));
	assert_true(nv_timer_pending(&r.t));

	assert_false(nv_wheel_cancel(NULL, &r.t));
	assert_false(nv_wheel_cancel(w, NULL));
	assert_int_equal(nv_wheel_advance(NULL, 5000), 0);
	assert_int_equal(nv_wheel_next_deadline(NULL), UINT64_MAX);
	assert_int_equal(nv_wheel_count(NULL), 0);
	assert_false(nv_timer_pending(NULL));

	/* MAXD itself is accepted. */
	struct rec m = {.id = 2};
	nv_timer_init(&m.t, rec_cb, &m);
	assert_int_equal(nv_wheel_add(w, &m.t, MAXD), 0);
	check(w);
	assert_int_equal(nv_wheel_advance(w, 2000), 1);
	assert_int_equal(r.fired, 1);
	assert_int_equal(m.fired, 0);
	check(w);
	nv_wheel_destroy(w);
	nv_wheel_destroy(w2);
	nv_wheel_destroy(NULL);
	log_free();
}

/* Adds n timers with deadlines from gen, advances in one call and in unit
 * steps (two wheels), and checks both fire in (deadline, seq) order. */
static void
run_order(uint64_t start, size_t n, uint64_t (*gen)(uint64_t start))
{
	nv_wheel *w;
	struct rec *r = calloc(n, sizeof(*r));
	uint64_t maxd = start;
	int *want;

	assert_non_null(r);
	assert_int_equal(nv_wheel_create(&w, start), 0);
	log_reset(w, n);
	for (size_t i = 0; i < n; i++) {
		uint64_t d = gen(start);
		rec_init(&r[i], (int)i);
		assert_int_equal(rec_arm(w, &r[i], d), 0);
		maxd = d > maxd ? d : maxd;
	}
	check(w);
	assert_int_equal(nv_wheel_count(w), n);
	want = expected_order(r, n);
	assert_int_equal(nv_wheel_advance(w, maxd), n);
	assert_int_equal(g_log.n, n);
	for (size_t i = 0; i < n; i++) {
		struct rec *x = &r[want[i]];
		assert_int_equal(g_log.ids[i], want[i]);
		/* Clock at fire = deadline (or start, for past ones). */
		assert_int_equal(x->at, x->d > start ? x->d : start);
		assert_int_equal(x->fired, 1);
	}
	assert_int_equal(nv_wheel_count(w), 0);
	assert_int_equal(nv_wheel_next_deadline(w), UINT64_MAX);
	check(w);
	nv_wheel_destroy(w);
	free(r);
	free(want);
}

static uint64_t
gen_small(uint64_t start)
{
	return start + rnd_below(300); /* many ties */
}

static uint64_t
gen_mixed(uint64_t start)
{
	switch (rnd_below(4)) {
	case 0:
		return start - rnd_below(start < 50 ? start + 1 : 50);
	case 1:
		return start + rnd_below(100);
	case 2:
		return start + rnd_below(1000000);
	default:
		return start + rnd_below((uint64_t)1 << (20 + rnd_below(20)));
	}
}

static void
test_wheel_order(void **state)
{
	rng_state = 0x1234567;
	run_order(0, 2000, gen_small);
	run_order(1000, 3000, gen_mixed);
	run_order(((uint64_t)1 << 40) - 7, 3000, gen_mixed);
	log_free();
}

/* Drives the wheel like a scheduler: sleep until next_deadline, advance.
 * Each timer must fire exactly at its deadline (never early, not late),
 * with at most one advance call per fired or cascaded bucket. */
static void
test_wheel_never_early_never_late(void **state)
{
	nv_wheel *w;
	const size_t n = 2000;
	struct rec *r = calloc(n, sizeof(*r));
	size_t fired = 0, calls = 0;

	rng_state = 99;
	assert_int_equal(nv_wheel_create(&w, 5), 0);
	log_reset(w, n);
	for (size_t i = 0; i < n; i++) {
		rec_init(&r[i], (int)i);
		assert_int_equal(
		    rec_arm(w, &r[i],
			    6 + rnd_below(i < 1000 ? 5000 : 10000000)),
		    0);
	}
	while (nv_wheel_count(w) > 0) {
		uint64_t nd = nv_wheel_next_deadline(w);
		/* Never later than the earliest deadline. */
		for (size_t i = 0; i < n; i++)
			if (nv_timer_pending(&r[i].t))
				assert_true(nd <= r[i].d);
		assert_true(nd > nv__wheel_now(w));
		fired += nv_wheel_advance(w, nd);
		calls++;
		check(w);
	}
	assert_int_equal(fired, n);
	assert_true(calls <= n * NV__WHEEL_LEVELS);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(r[i].fired, 1);
		assert_int_equal(r[i].at, r[i].d);
	}
	assert_int_equal(g_log.misorder, 0);

	/* Tick by tick: a timer fires in the advance whose now equals its
	 * deadline: zero ticks late, never before. */
	log_reset(w, n);
	for (size_t i = 0; i < 300; i++) {
		r[i].fired = 0;
		assert_int_equal(
		    rec_arm(w, &r[i], nv__wheel_now(w) + 1 + rnd_below(5000)),
		    0);
	}
	for (uint64_t now = nv__wheel_now(w) + 1; nv_wheel_count(w) > 0;
	     now++) {
		size_t before = g_log.n;
		nv_wheel_advance(w, now);
		for (size_t k = before; k < g_log.n; k++)
			assert_int_equal(r[g_log.ids[k]].d, now);
		for (size_t i = 0; i < 300; i++)
			if (nv_timer_pending(&r[i].t))
				assert_true(r[i].d > now);
	}
	for (size_t i = 0; i < 300; i++)
		assert_int_equal(r[i].fired, 1);
	check(w);
	nv_wheel_destroy(w);
	free(r);
	log_free();
}

static void
test_wheel_cancel(void **state)
{
	nv_wheel *w;
	struct rec a = {.id = 0}, b = {.id = 1}, c = {.id = 2};

	assert_int_equal(nv_wheel_create(&w, 0), 0);
	log_reset(w, 8);
	nv_timer_init(&a.t, rec_cb, &a);
	nv_timer_init(&b.t, rec_cb, &b);
	nv_timer_init(&c.t, rec_cb, &c);
	/* Never added. */
	assert_false(nv_wheel_cancel(w, &a.t));
	assert_int_equal(nv_wheel_add(w, &a.t, 10), 0);
	assert_int_equal(nv_wheel_add(w, &b.t, 10), 0);
	assert_int_equal(nv_wheel_add(w, &c.t, 10), 0);
	/* Cancel the middle one of a list, then the head. */
	assert_true(nv_wheel_cancel(w, &b.t));
	assert_false(nv_timer_pending(&b.t));
	assert_false(nv_wheel_cancel(w, &b.t)); /* already cancelled */
	check(w);
	assert_true(nv_wheel_cancel(w, &a.t));
	check(w);
	assert_int_equal(nv_wheel_count(w), 1);
	assert_int_equal(nv_wheel_advance(w, 10), 1);
	assert_int_equal(c.fired, 1);
	assert_int_equal(a.fired + b.fired, 0);
	/* After firing: not pending any more. */
	assert_false(nv_wheel_cancel(w, &c.t));
	/* Cancel of the only timer empties the bucket and the bitmap. */
	assert_int_equal(nv_wheel_add(w, &a.t, 50), 0);
	assert_int_equal(nv_wheel_next_deadline(w), 50);
	assert_true(nv_wheel_cancel(w, &a.t));
	assert_int_equal(nv_wheel_next_deadline(w), UINT64_MAX);
	check(w);
	/* A cancelled timer can be added again. */
	assert_int_equal(nv_wheel_add(w, &a.t, 20), 0);
	assert_int_equal(nv_wheel_advance(w, 100), 1);
	assert_int_equal(a.fired, 1);
	/* Cancel from the expired list. */
	assert_int_equal(nv_wheel_add(w, &b.t, 50), 0);
	assert_int_equal(nv__wheel_where(w, &b.t), NV__WHEEL_EXPIRED);
	assert_true(nv_wheel_cancel(w, &b.t));
	assert_int_equal(nv_wheel_advance(w, 100), 0);
	assert_int_equal(b.fired, 0);
	check(w);
	nv_wheel_destroy(w);
	log_free();
}

static void
test_wheel_cancel_cascaded(void **state)
{
	nv_wheel *w;
	struct rec a = {.id = 0}, b = {.id = 1};
	int la;

	assert_int_equal(nv_wheel_create(&w, 0), 0);
	log_reset(w, 8);
	nv_timer_init(&a.t, rec_cb, &a);
	nv_timer_init(&b.t, rec_cb, &b);
	assert_int_equal(nv_wheel_add(w, &a.t, 300000), 0);
	assert_int_equal(nv_wheel_add(w, &b.t, 300001), 0);
	la = nv__wheel_where(w, &a.t);
	assert_true(la >= 2);
	assert_true(nv_wheel_next_deadline(w) <= 300000);
	/* Reach the start of their coarse bucket: they cascade down. */
	while (nv__wheel_where(w, &a.t) == la) {
		uint64_t nd = nv_wheel_next_deadline(w);
		assert_true(nd <= 300000);
		assert_int_equal(nv_wheel_advance(w, nd), 0);
		check(w);
	}
	struct nv__wheel_stats st;
	nv__wheel_stats(w, &st);
	assert_true(st.cascaded >= 2);
	assert_true(nv__wheel_where(w, &a.t) < la);
	assert_true(nv__wheel_where(w, &a.t) >= 0);
	assert_true(nv_wheel_cancel(w, &a.t));
	check(w);
	assert_int_equal(nv_wheel_advance(w, 400000), 1);
	assert_int_equal(a.fired, 0);
	assert_int_equal(b.fired, 1);
	assert_int_equal(b.at, 300001);
	check(w);
	nv_wheel_destroy(w);
	log_free();
}

/* 1M timers (scaled), added at once, fired by random-sized advances (small
 * steps and jumps): each exactly once, with the clock at its deadline, and
 * all in (deadline, add order). */
static void
test_wheel_million(void **state)
{
	const size_t n = (size_t)nv_test_scaled(1000000);
	nv_wheel *w;
	struct rec *r = calloc(n, sizeof(*r));
	uint64_t now = 0;
	size_t fired = 0;

	assert_non_null(r);
	rng_state = 7777;
	assert_int_equal(nv_wheel_create(&w, 0), 0);
	log_reset(w, 0); /* count and order only */
	for (size_t i = 0; i < n; i++) {
		uint64_t d = (i & 1) ? rnd_below(600000)
				     : rnd_below((uint64_t)1 << rnd_below(40));
		rec_init(&r[i], (int)i);
		assert_int_equal(rec_arm(w, &r[i], d), 0);
	}
	assert_int_equal(nv_wheel_count(w), n);
	check(w);
	while (nv_wheel_count(w) > 0) {
		size_t before = g_log.n, k;
		now += rnd_below(4) == 0 ? rnd_below((uint64_t)1 << 36)
					 : rnd_below(200);
		k = nv_wheel_advance(w, now);
		assert_int_equal(g_log.n - before, k);
		fired += k;
	}
	assert_int_equal(fired, n);
	assert_int_equal(g_log.misorder, 0);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(r[i].fired, 1);
		assert_int_equal(r[i].at, r[i].d);
	}
	check(w);
	nv_wheel_destroy(w);
	free(r);
	log_free();
}

static void
test_wheel_far_future(void **state)
{
	nv_wheel *w;
	struct rec r[6];
	const uint64_t d[6] = {MAXD,	  MAXD - 1,	     MAXD / 2 + 12345,
			       MAXD - 65, (uint64_t)1 << 62, MAXD};
	struct nv__wheel_stats st;

	assert_int_equal(nv_wheel_create(&w, 1000), 0);
	log_reset(w, 16);
	for (int i = 0; i < 6; i++) {
		rec_init(&r[i], i);
		assert_int_equal(rec_arm(w, &r[i], d[i]), 0);
	}
	check(w);
	assert_int_equal(nv__wheel_where(w, &r[0].t), NV__WHEEL_LEVELS - 1);
	/* Jump to just before the earliest: nothing fires. */
	assert_int_equal(nv_wheel_advance(w, ((uint64_t)1 << 62) - 1), 0);
	check(w);
	assert_int_equal(nv_wheel_advance(w, (uint64_t)1 << 62), 1);
	assert_int_equal(r[4].at, (uint64_t)1 << 62);
	assert_int_equal(nv_wheel_advance(w, MAXD - 66), 1);
	assert_int_equal(r[2].fired, 1);
	check(w);
	/* The last three: MAXD - 65, MAXD - 1, then the two MAXD in add
	 * order (0 before 5). */
	assert_int_equal(nv_wheel_advance(w, MAXD), 4);
	assert_int_equal(g_log.n, 6);
	assert_int_equal(g_log.ids[2], 3);
	assert_int_equal(g_log.ids[3], 1);
	assert_int_equal(g_log.ids[4], 0);
	assert_int_equal(g_log.ids[5], 5);
	for (int i = 0; i < 6; i++)
		assert_int_equal(r[i].at, d[i]);
	nv__wheel_stats(w, &st);
	assert_true(st.buckets <= 6 * NV__WHEEL_LEVELS);
	/* The clock may pass 2^63: any deadline is then already past. */
	assert_int_equal(nv_wheel_advance(w, UINT64_MAX), 0);
	assert_int_equal(nv_wheel_add(w, &r[0].t, MAXD), 0);
	assert_int_equal(nv__wheel_where(w, &r[0].t), NV__WHEEL_EXPIRED);
	assert_int_equal(nv_wheel_next_deadline(w), MAXD);
	check(w);
	assert_int_equal(nv_wheel_advance(w, UINT64_MAX), 1);
	check(w);
	nv_wheel_destroy(w);
	log_free();
}

static void
test_wheel_jump_days(void **state)
{
	const uint64_t day = 24ull * 3600 * 1000;
	const size_t n = 1000;
	nv_wheel *w;
	struct rec *r = calloc(n, sizeof(*r));
	int *want;
	struct nv__wheel_stats st0, st1;

	rng_state = 31337;
	assert_int_equal(nv_wheel_create(&w, 12345), 0);
	log_reset(w, n);
	/* An empty wheel crosses a century in one step. */
	nv__wheel_stats(w, &st0);
	assert_int_equal(nv_wheel_advance(w, 12345 + 36500 * day), 0);
	nv__wheel_stats(w, &st1);
	assert_int_equal(st1.buckets, st0.buckets);
	assert_int_equal(nv__wheel_now(w), 12345 + 36500 * day);

	uint64_t base = nv__wheel_now(w);
	for (size_t i = 0; i < n; i++) {
		rec_init(&r[i], (int)i);
		assert_int_equal(
		    rec_arm(w, &r[i], base + 1 + rnd_below(30 * day)), 0);
	}
	want = expected_order(r, n);
	nv__wheel_stats(w, &st0);
	assert_int_equal(nv_wheel_advance(w, base + 30 * day), n);
	nv__wheel_stats(w, &st1);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(g_log.ids[i], want[i]);
		assert_int_equal(r[want[i]].at, r[want[i]].d);
	}
	/* Work is bounded by the timers, not by the 2.6e9 ms crossed: each
	 * timer reaches at most one bucket per level. */
	assert_true(st1.buckets - st0.buckets <= n * NV__WHEEL_LEVELS);
	assert_true(st1.cascaded - st0.cascaded <= n * (NV__WHEEL_LEVELS - 1));
	assert_int_equal(st1.fired - st0.fired, n);
	check(w);
	nv_wheel_destroy(w);
	free(r);
	free(want);
	log_free();
}

/* Interval re-arm from inside the callback. */
struct rearm {
	nv_timer t;
	nv_wheel *w;
	uint64_t d;
	uint64_t interval;
	int left;
	int fired;
	uint64_t at[16];
	int rc;
};

static void
rearm_cb(nv_timer *t, void *arg)
{
	struct rearm *x = arg;
	uint64_t now = nv__wheel_now(x->w);
	if (x->fired < 16)
		x->at[x->fired] = now;
	x->fired++;
	/* advance is not re-entrant: refused from a callback. */
	assert_int_equal(nv_wheel_advance(x->w, UINT64_MAX), 0);
	if (x->left-- > 0) {
		x->d += x->interval;
		x->rc = nv_wheel_add(x->w, t, x->d);
	}
}

static void
test_wheel_readd_from_callback(void **state)
{
	nv_wheel *w;
	struct rearm x = {.interval = 100, .left = 4};
	struct rearm z = {.interval = 0, .left = 3};

	assert_int_equal(nv_wheel_create(&w, 0), 0);
	x.w = z.w = w;
	nv_timer_init(&x.t, rearm_cb, &x);
	x.d = 50;
	assert_int_equal(nv_wheel_add(w, &x.t, 50), 0);
	/* One advance covers every re-armed deadline: 50..450. */
	assert_int_equal(nv_wheel_advance(w, 1000), 5);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.fired, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(x.at[i], 50 + 100 * (uint64_t)i);
	assert_false(nv_timer_pending(&x.t));

	/* Zero interval: the re-armed timer is due now, so it waits for the
	 * next advance instead of looping inside this one. */
	nv_timer_init(&z.t, rearm_cb, &z);
	z.d = 1500;
	assert_int_equal(nv_wheel_add(w, &z.t, 1500), 0);
	assert_int_equal(nv_wheel_advance(w, 2000), 1);
	assert_true(nv_timer_pending(&z.t));
	assert_int_equal(nv__wheel_where(w, &z.t), NV__WHEEL_EXPIRED);
	assert_true(nv_wheel_next_deadline(w) <= 1500);
	assert_int_equal(nv_wheel_advance(w, 2000), 1);
	assert_int_equal(nv_wheel_advance(w, 2000), 1);
	assert_int_equal(nv_wheel_advance(w, 2000), 1);
	assert_int_equal(nv_wheel_advance(w, 2000), 0);
	assert_int_equal(z.fired, 4);
	check(w);
	nv_wheel_destroy(w);
}

/* Callbacks that cancel or add other timers. */
struct other {
	nv_timer t;
	nv_wheel *w;
	struct other *victim; /* cancel this one */
	struct other *spawn;  /* add this one ... */
	uint64_t spawn_at;    /* ... at this deadline */
	bool cancel_rc;
	int add_rc;
	int fired;
	int order;
	uint64_t at;
};
static int g_order;

static void
other_cb(nv_timer *t, void *arg)
{
	struct other *o = arg;
	o->fired++;
	o->order = ++g_order;
	o->at = nv__wheel_now(o->w);
	if (o->victim != NULL)
		o->cancel_rc = nv_wheel_cancel(o->w, &o->victim->t);
	if (o->spawn != NULL)
		o->add_rc = nv_wheel_add(o->w, &o->spawn->t, o->spawn_at);
	check(o->w);
}

static void
test_wheel_cancel_other_from_callback(void **state)
{
	nv_wheel *w;
	struct other a = {0}, b = {0}, c = {0}, d = {0}, e = {0}, f = {0},
		     g = {0}, h = {0};
	struct other *all[] = {&a, &b, &c, &d, &e, &f, &g, &h};

	assert_int_equal(nv_wheel_create(&w, 0), 0);
	for (int i = 0; i < 8; i++) {
		all[i]->w = w;
		nv_timer_init(&all[i]->t, other_cb, all[i]);
	}
	g_order = 0;
	/* g fires first; h, later, tries to cancel it: too late. */
	assert_int_equal(nv_wheel_add(w, &g.t, 5), 0);
	h.victim = &g;
	assert_int_equal(nv_wheel_add(w, &h.t, 30), 0);
	/* a and b share deadline 10 (one list, a first): a cancels b while
	 * b waits behind it on the list being fired. */
	a.victim = &b;
	assert_int_equal(nv_wheel_add(w, &a.t, 10), 0);
	assert_int_equal(nv_wheel_add(w, &b.t, 10), 0);
	/* d cancels c, which sits in a coarse bucket due in this advance,
	 * and spawns e at 3000, inside this advance. e spawns f at 2999,
	 * already past when the clock is at 3000: f waits for the next
	 * advance. */
	assert_int_equal(nv_wheel_add(w, &c.t, 5000), 0);
	d.victim = &c;
	d.spawn = &e;
	d.spawn_at = 3000;
	e.spawn = &f;
	e.spawn_at = 2999;
	assert_int_equal(nv_wheel_add(w, &d.t, 20), 0);
	assert_int_equal(nv_wheel_advance(w, 10000), 5);
	assert_int_equal(g.order, 1);
	assert_int_equal(a.order, 2);
	assert_int_equal(d.order, 3);
	assert_int_equal(h.order, 4);
	assert_int_equal(e.order, 5);
	assert_true(a.cancel_rc);
	assert_true(d.cancel_rc);
	assert_false(h.cancel_rc);
	assert_int_equal(d.add_rc, 0);
	assert_int_equal(e.add_rc, 0);
	assert_int_equal(e.at, 3000);
	assert_int_equal(b.fired + c.fired + f.fired, 0);
	assert_true(nv_timer_pending(&f.t));
	assert_int_equal(nv_wheel_next_deadline(w), 2999);
	assert_int_equal(nv_wheel_advance(w, 10000), 1);
	assert_int_equal(f.fired, 1);
	assert_int_equal(f.at, 10000);
	assert_int_equal(nv_wheel_count(w), 0);
	/* A callback adding a timer that is already pending gets EBUSY. */
	d.spawn = &a;
	d.victim = NULL;
	assert_int_equal(nv_wheel_add(w, &a.t, 20000), 0);
	assert_int_equal(nv_wheel_add(w, &d.t, 10001), 0);
	assert_int_equal(nv_wheel_advance(w, 10001), 1);
	assert_int_equal(d.add_rc, NV_EBUSY);
	assert_int_equal(nv_wheel_next_deadline(w) <= 20000, true);
	check(w);
	nv_wheel_destroy(w);
}

/* Past deadlines wait on the expired list, fire on the next advance in
 * deadline order; an advance behind the clock fires nothing. */
static void
test_wheel_past_deadlines(void **state)
{
	nv_wheel *w;
	struct rec r[5];
	const uint64_t d[5] = {900, 100, 1000, 100, 50};

	assert_int_equal(nv_wheel_create(&w, 1000), 0);
	log_reset(w, 16);
	for (int i = 0; i < 5; i++) {
		rec_init(&r[i], i);
		assert_int_equal(rec_arm(w, &r[i], d[i]), 0);
	}
	check(w);
	assert_int_equal(nv_wheel_next_deadline(w), 50);
	assert_int_equal(nv_wheel_advance(w, 999), 0); /* behind the clock */
	assert_int_equal(nv_wheel_count(w), 5);
	assert_int_equal(nv_wheel_advance(w, 1000), 5); /* same ms: fires */
	int want[5] = {4, 1, 3, 0, 2};
	for (int i = 0; i < 5; i++) {
		assert_int_equal(g_log.ids[i], want[i]);
		assert_int_equal(r[want[i]].at, 1000);
	}
	struct nv__wheel_stats st;
	nv__wheel_stats(w, &st);
	assert_int_equal(st.sorted, 1);
	/* Added in deadline order: no sort needed. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(rec_arm(w, &r[i], 10 * (uint64_t)i), 0);
	assert_int_equal(nv_wheel_advance(w, 1000), 5);
	nv__wheel_stats(w, &st);
	assert_int_equal(st.sorted, 1);
	for (int i = 0; i < 5; i++)
		assert_int_equal(g_log.ids[5 + i], i);
	check(w);
	nv_wheel_destroy(w);
	log_free();
}

static void
test_wheel_next_deadline(void **state)
{
	nv_wheel *w;
	struct rec a = {0};

	assert_int_equal(nv_wheel_create(&w, 0), 0);
	log_reset(w, 4);
	assert_int_equal(nv_wheel_next_deadline(w), UINT64_MAX);
	nv_timer_init(&a.t, rec_cb, &a);
	/* Level 0: exact. */
	assert_int_equal(nv_wheel_add(w, &a.t, 63), 0);
	assert_int_equal(nv__wheel_where(w, &a.t), 0);
	assert_int_equal(nv_wheel_next_deadline(w), 63);
	assert_true(nv_wheel_cancel(w, &a.t));
	/* Coarse: the bucket start, then exact after the cascade. */
	assert_int_equal(nv_wheel_add(w, &a.t, 100), 0);
	assert_int_equal(nv__wheel_where(w, &a.t), 1);
	assert_int_equal(nv_wheel_next_deadline(w), 64);
	assert_int_equal(nv_wheel_advance(w, 64), 0);
	assert_int_equal(nv__wheel_where(w, &a.t), 0);
	assert_int_equal(nv_wheel_next_deadline(w), 100);
	assert_int_equal(nv_wheel_advance(w, 99), 0);
	assert_int_equal(nv_wheel_advance(w, 100), 1);
	assert_int_equal(nv_wheel_next_deadline(w), UINT64_MAX);
	check(w);
	nv_wheel_destroy(w);
	log_free();
}

/* ------------------------------------------------ randomized vs a model */

enum { ACT_NONE, ACT_REARM, ACT_CANCEL, ACT_ADD, ACT_NACT };
#define MT 192

struct mt {
	nv_timer t;
	int id;
	bool pending;  /* model: should be pending */
	bool deferred; /* model: added during this advance, already due */
	uint64_t d, seq;
	int action, target, rearms;
	uint64_t delta;
};

static struct {
	nv_wheel *w;
	struct mt tm[MT];
	uint64_t seq, now, T, cur;
	bool in_adv;
	size_t fired, total; /* in this advance, in this run */
} M;

static struct mt *
model_next(uint64_t T)
{
	struct mt *best = NULL;
	for (int i = 0; i < MT; i++) {
		struct mt *x = &M.tm[i];
		if (!x->pending || x->deferred || x->d > T)
			continue;
		if (best == NULL || x->d < best->d ||
		    (x->d == best->d && x->seq < best->seq))
			best = x;
	}
	return best;
}

static void
model_add(struct mt *x, uint64_t d)
{
	int want = d > MAXD ? NV_EINVAL : x->pending ? NV_EBUSY : 0;
	int rc = nv_wheel_add(M.w, &x->t, d);
	assert_int_equal(rc, want);
	if (rc == 0) {
		x->pending = true;
		x->d = d;
		x->seq = ++M.seq;
		x->deferred = M.in_adv && d <= M.cur;
	}
}

static void
model_cancel(struct mt *x)
{
	assert_int_equal(nv_wheel_cancel(M.w, &x->t), x->pending);
	x->pending = false;
}

static void
mt_cb(nv_timer *t, void *arg)
{
	struct mt *x = arg;
	struct mt *want = model_next(M.T);

	assert_non_null(want);
	assert_int_equal(want->id, x->id);
	assert_true(x->d <= M.T);
	if (x->d > M.cur)
		M.cur = x->d;
	assert_int_equal(nv__wheel_now(M.w), M.cur);
	assert_false(nv_timer_pending(t));
	x->pending = false;
	M.fired++;
	/* Every action has a budget so that timers re-arming each other
	 * cannot keep one advance busy forever. */
	switch (x->rearms-- > 0 ? x->action : ACT_NONE) {
	case ACT_REARM:
		model_add(x, M.cur + x->delta);
		break;
	case ACT_CANCEL:
		model_cancel(&M.tm[x->target]);
		break;
	case ACT_ADD:
		model_add(&M.tm[x->target], M.cur + x->delta);
		break;
	}
	check(M.w);
}

static uint64_t
rand_deadline(void)
{
	uint64_t now = M.now, r = rnd_below(20);

	if (r < 2)
		return now - rnd_below(now < 100 ? now + 1 : 100);
	if (r < 3)
		return now;
	if (r < 7)
		return now + rnd_below(70);
	if (r < 11)
		return now + rnd_below(5000);
	if (r < 14)
		return now + rnd_below((uint64_t)1 << (10 + rnd_below(40)));
	if (r < 15)
		return MAXD - rnd_below(3);
	if (r < 16)
		return MAXD + rnd_below(2); /* MAXD + 1 is refused */
	return now + 64 * rnd_below(200);   /* bucket starts */
}

static void
model_step(void)
{
	unsigned op = (unsigned)rnd_below(10);
	struct mt *x = &M.tm[rnd_below(MT)];

	if (op < 5) {
		x->action = (int)rnd_below(ACT_NACT);
		x->target = (int)rnd_below(MT);
		x->delta = rnd_below(3) == 0 ? 0 : rnd_below(400);
		x->rearms = (int)rnd_below(4);
		model_add(x, rand_deadline());
	} else if (op < 7) {
		model_cancel(x);
	} else {
		uint64_t T;
		switch (rnd_below(8)) {
		case 0:
			T = M.now;
			break;
		case 1:
			T = M.now > 0 ? M.now - 1 : 0; /* behind: nothing */
			break;
		case 2:
			T = nv_wheel_next_deadline(M.w);
			if (T == UINT64_MAX || T < M.now)
				T = M.now;
			break;
		case 3:
			T = M.now + rnd_below((uint64_t)1 << rnd_below(40));
			break;
		default:
			T = M.now + rnd_below(300);
			break;
		}
		if (T > MAXD + 1000 && T > M.now)
			T = M.now; /* stay in range on the high seeds */
		M.fired = 0;
		if (T >= M.now) {
			M.T = T;
			M.cur = M.now;
			M.in_adv = true;
		}
		size_t n = nv_wheel_advance(M.w, T);
		M.in_adv = false;
		assert_int_equal(n, M.fired);
		M.total += n;
		if (T >= M.now) {
			assert_null(model_next(T));
			M.now = T;
		} else {
			assert_int_equal(n, 0);
		}
		for (int i = 0; i < MT; i++)
			M.tm[i].deferred = false;
		assert_int_equal(nv__wheel_now(M.w), M.now);
	}
	/* After every step: invariants, count, next_deadline bound. */
	check(M.w);
	size_t pending = 0;
	uint64_t min = UINT64_MAX;
	for (int i = 0; i < MT; i++) {
		assert_int_equal(nv_timer_pending(&M.tm[i].t), M.tm[i].pending);
		if (M.tm[i].pending) {
			pending++;
			if (M.tm[i].d < min)
				min = M.tm[i].d;
		}
	}
	assert_int_equal(nv_wheel_count(M.w), pending);
	uint64_t nd = nv_wheel_next_deadline(M.w);
	assert_true(nd <= min);
	if (min != UINT64_MAX && min > M.now)
		assert_true(nd > M.now); /* and it makes progress */
	if (min == UINT64_MAX)
		assert_int_equal(nd, UINT64_MAX);
}

static void
test_wheel_random_model(void **state)
{
	const uint64_t starts[] = {0, 12345, ((uint64_t)1 << 40) - 3,
				   MAXD - 100000};
	const int steps = (int)nv_test_scaled(6000);

	for (unsigned s = 0; s < 4; s++) {
		for (uint64_t seed = 1; seed <= 3; seed++) {
			memset(&M, 0, sizeof(M));
			rng_state = seed * 0x9E3779B97F4A7C15ull + s;
			M.now = starts[s];
			assert_int_equal(nv_wheel_create(&M.w, M.now), 0);
			for (int i = 0; i < MT; i++) {
				M.tm[i].id = i;
				nv_timer_init(&M.tm[i].t, mt_cb, &M.tm[i]);
			}
			for (int k = 0; k < steps; k++)
				model_step();
			/* The run did exercise firing (3 steps in 10 are
			 * advances, half the timers get added). */
			assert_true(M.total >= (size_t)steps / 40);
			printf("  model start %u seed %u: %zu fired, clock "
			       "+%llu\n",
			       s, (unsigned)seed, M.total,
			       (unsigned long long)(M.now - starts[s]));
			nv_wheel_destroy(M.w);
		}
	}
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_wheel_bad_args),
    cmocka_unit_test(test_wheel_order),
    cmocka_unit_test(test_wheel_never_early_never_late),
    cmocka_unit_test(test_wheel_cancel),
    cmocka_unit_test(test_wheel_cancel_cascaded),
    cmocka_unit_test(test_wheel_million),
    cmocka_unit_test(test_wheel_far_future),
    cmocka_unit_test(test_wheel_jump_days),
    cmocka_unit_test(test_wheel_readd_from_callback),
    cmocka_unit_test(test_wheel_cancel_other_from_callback),
    cmocka_unit_test(test_wheel_past_deadlines),
    cmocka_unit_test(test_wheel_next_deadline),
    cmocka_unit_test(test_wheel_random_model),
};

int
main(void)
{
	return cmocka_run_group_tests(tests, NULL, NULL);
}
