/* ctest: labels=unit timeout=120 */
/*
 * test_wheel.c - the timer wheel (nuvom/wheel.h) against its contract:
 * bad arguments, fire order (deadline, then add sequence), never early and
 * never late when driven like a scheduler, cancel (also of cascaded
 * timers and of other timers from a callback), re-adding from a callback,
 * past deadlines and next_deadline. Large and randomized runs (1M timers,
 * far-future deadlines, day-long jumps, the reference model) are in
 * test_wheel_stress.c; the recording timer and helpers in wheeltest.h.
 *
 * Every callback records what fired and the wheel's clock at that moment;
 * the tests compute the expected order and times themselves (sorting by
 * deadline, then add sequence) and compare. The invariant checker of
 * lockfree/wheel_int.h runs after the steps that change the wheel.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockfree/wheel_int.h"
#include "wheeltest.h"

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

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_wheel_bad_args),
    cmocka_unit_test(test_wheel_order),
    cmocka_unit_test(test_wheel_never_early_never_late),
    cmocka_unit_test(test_wheel_cancel),
    cmocka_unit_test(test_wheel_cancel_cascaded),
    cmocka_unit_test(test_wheel_readd_from_callback),
    cmocka_unit_test(test_wheel_cancel_other_from_callback),
    cmocka_unit_test(test_wheel_past_deadlines),
    cmocka_unit_test(test_wheel_next_deadline),
};

int
main(void)
{
	return cmocka_run_group_tests(tests, NULL, NULL);
}
