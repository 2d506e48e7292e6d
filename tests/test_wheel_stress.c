/* ctest: labels=unit;stress timeout=120 */
/*
 * test_wheel_stress.c - the timer wheel at scale and at its limits: 1M
 * timers (scaled) fired by random-sized advances, deadlines up to
 * NV__WHEEL_MAX_DEADLINE and a clock past 2^63, jumps of days and a
 * century with work bounded by the timers, and a randomized run against a
 * reference model. The contract one case at a time is in test_wheel.c;
 * the recording timer and helpers in wheeltest.h.
 *
 * The randomized test runs the reference model in lockstep: inside each
 * callback it asks the model which timer is due next, checks it is this
 * one, and applies the same scripted action (re-arm, cancel or add
 * another) to both. The invariant checker of lockfree/wheel_int.h runs
 * after every step.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockfree/wheel_int.h"
#include "wheeltest.h"

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
    cmocka_unit_test(test_wheel_million),
    cmocka_unit_test(test_wheel_far_future),
    cmocka_unit_test(test_wheel_jump_days),
    cmocka_unit_test(test_wheel_random_model),
};

int
main(void)
{
	return cmocka_run_group_tests(tests, NULL, NULL);
}
