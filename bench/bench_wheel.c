/*
 * bench_wheel.c - the timer wheel against a binary-heap timer queue.
 *
 * Both queues run behind one ops table, on the same timer layout (a union,
 * so both walk timers of the same size), in the same process, interleaved
 * (wheel then heap, heap then wheel on the next repetition), with the
 * median of ctx->reps repetitions reported.
 *
 * For each size N (1k, 100k, 1M live timers; 10M with --full) each queue
 * is filled once with N timers due at random times in the next 60 s, then
 * every repetition measures two cases on it:
 *
 *  - add+expire: a scheduler loop (advance to next_deadline, again and
 *    again) in which every fired timer re-arms itself at now + rand(60 s),
 *    so N stays live: ns per fired timer = one add + one expire, with the
 *    cascades and empty wakeups amortized in.
 *  - add+cancel: on top of the N live timers, a ring of 1024 timers is
 *    added (random deadline within 60 s) and cancelled 512 adds later, the
 *    way job timeouts come and go: ns per add+cancel pair.
 *
 * All sizes stay live together and each repetition measures every size and
 * queue in turn, so a noisy neighbour slows them alike. Gates: the wheel's
 * ns/timer at 1M live over its ns/timer at 1k (median over repetitions of
 * the per-repetition ratio), for each case, at most 2.0 (O(1) operations:
 * the cost must not grow with the number of timers beyond cache effects).
 * Counts are checked: every cancel of a pending timer succeeds and N timers
 * stay live.
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

#include "baseline_heap.h"
#include "nuvom/wheel.h"

#define SPREAD_MS 60000u
#define RING 1024u

struct bt {
	union {
		nv_timer w;
		nvb_htimer h;
	} u;
};

struct tq_ops {
	const char *name;
	void *(*create)(uint64_t now, size_t hint);
	void (*destroy)(void *q);
	void (*init)(struct bt *t);
	int (*add)(void *q, struct bt *t, uint64_t d);
	bool (*cancel)(void *q, struct bt *t);
	size_t (*advance)(void *q, uint64_t now);
	uint64_t (*next)(void *q);
	size_t (*count)(void *q);
};

/* One queue under test with its timers and clock. */
struct tq {
	const struct tq_ops *ops;
	void *q;
	struct bt *bg;	/* the N live timers */
	struct bt *hot; /* the add+cancel ring */
	size_t n;
	uint64_t now;
	uint64_t rng;
	unsigned long errors;
};

static struct tq *cur; /* the queue whose callbacks are running */

static inline uint64_t
rnd(struct tq *s)
{
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 2685821657736338717ull;
}

static inline uint64_t
due(struct tq *s)
{
	return s->now + 1 + rnd(s) % SPREAD_MS;
}

static void
rearm(struct bt *t)
{
	if (cur->ops->add(cur->q, t, due(cur)) != 0)
		cur->errors++;
}

/* ---------------------------------------------------------------- wheel */

static void
w_fire(nv_timer *t, void *arg)
{
	rearm(arg);
}

static void *
w_create(uint64_t now, size_t hint)
{
	nv_wheel *w;
	return nv_wheel_create(&w, now) == 0 ? w : NULL;
}

static void
w_destroy(void *q)
{
	nv_wheel_destroy(q);
}

static void
w_init(struct bt *t)
{
	nv_timer_init(&t->u.w, w_fire, t);
}

static int
w_add(void *q, struct bt *t, uint64_t d)
{
	return nv_wheel_add(q, &t->u.w, d);
}

static bool
w_cancel(void *q, struct bt *t)
{
	return nv_wheel_cancel(q, &t->u.w);
}

static size_t
w_advance(void *q, uint64_t now)
{
	return nv_wheel_advance(q, now);
}

static uint64_t
w_next(void *q)
{
	return nv_wheel_next_deadline(q);
}

static size_t
w_count(void *q)
{
	return nv_wheel_count(q);
}

static const struct tq_ops wheel_ops = {
    "wheel",  w_create,	 w_destroy, w_init,  w_add,
    w_cancel, w_advance, w_next,    w_count,
};

/* ---------------------------------------------------------------- heap */

static void
h_fire(nvb_htimer *t, void *arg)
{
	rearm(arg);
}

static void *
h_create(uint64_t now, size_t hint)
{
	nvb_heap *h;
	return nvb_heap_create(&h, now, hint) == 0 ? h : NULL;
}

static void
h_destroy(void *q)
{
	nvb_heap_destroy(q);
}

static void
h_init(struct bt *t)
{
	nvb_htimer_init(&t->u.h, h_fire, t);
}

static int
h_add(void *q, struct bt *t, uint64_t d)
{
	return nvb_heap_add(q, &t->u.h, d);
}

static bool
h_cancel(void *q, struct bt *t)
{
	return nvb_heap_cancel(q, &t->u.h);
}

static size_t
h_advance(void *q, uint64_t now)
{
	return nvb_heap_advance(q, now);
}

static uint64_t
h_next(void *q)
{
	return nvb_heap_next_deadline(q);
}

static size_t
h_count(void *q)
{
	return nvb_heap_count(q);
}

static const struct tq_ops heap_ops = {
    "heap",   h_create,	 h_destroy, h_init,  h_add,
    h_cancel, h_advance, h_next,    h_count,
};

/* ---------------------------------------------------------------- cases */

static bool
tq_setup(struct tq *s, const struct tq_ops *ops, size_t n)
{
	memset(s, 0, sizeof(*s));
	s->ops = ops;
	s->n = n;
	s->now = 1000;
	s->rng = 0x9E3779B97F4A7C15ull ^ n;
	s->q = ops->create(s->now, n + RING);
	s->bg = calloc(n, sizeof(*s->bg));
	s->hot = calloc(RING, sizeof(*s->hot));
	if (s->q == NULL || s->bg == NULL || s->hot == NULL)
		return false;
	for (size_t i = 0; i < RING; i++)
		ops->init(&s->hot[i]);
	for (size_t i = 0; i < n; i++) {
		ops->init(&s->bg[i]);
		if (ops->add(s->q, &s->bg[i], due(s)) != 0)
			s->errors++;
	}
	return true;
}

static void
tq_teardown(struct tq *s)
{
	if (s->q != NULL)
		s->ops->destroy(s->q);
	free(s->bg);
	free(s->hot);
}

/* Scheduler loop until k timers fired (each re-arms): ns per timer. */
static double
run_expire(struct tq *s, size_t k)
{
	size_t fired = 0;
	uint64_t t0;

	cur = s;
	t0 = nvb_now_ns();
	while (fired < k) {
		uint64_t nd = s->ops->next(s->q);
		if (nd > s->now)
			s->now = nd;
		fired += s->ops->advance(s->q, s->now);
	}
	t0 = nvb_now_ns() - t0;
	if (s->ops->count(s->q) != s->n)
		s->errors++;
	return (double)t0 / (double)fired;
}

/* k add+cancel pairs through the ring: ns per pair. */
static double
run_cancel(struct tq *s, size_t k)
{
	uint64_t t0;
	unsigned long bad = 0;

	cur = s;
	t0 = nvb_now_ns();
	for (size_t i = 0; i < k; i++) {
		struct bt *a = &s->hot[i % RING];
		struct bt *c = &s->hot[(i + RING / 2) % RING];
		bad += s->ops->add(s->q, a, due(s)) != 0;
		if (i >= RING / 2)
			bad += !s->ops->cancel(s->q, c);
	}
	t0 = nvb_now_ns() - t0;
	/* Untimed: take the last half ring out again. */
	for (size_t i = 0; i < RING; i++)
		s->ops->cancel(s->q, &s->hot[i]);
	if (s->ops->count(s->q) != s->n)
		bad++;
	s->errors += bad;
	return (double)t0 / (double)k;
}

static const char *
size_name(size_t n)
{
	static char buf[32];
	if (n >= 1000000)
		snprintf(buf, sizeof(buf), "%zuM", n / 1000000);
	else if (n >= 1000)
		snprintf(buf, sizeof(buf), "%zuk", n / 1000);
	else
		snprintf(buf, sizeof(buf), "%zu", n);
	return buf;
}

#define NSIZES 4

static void
bench_wheel(nvb_ctx *ctx)
{
	const size_t sizes[NSIZES] = {1000, 100000, 1000000, 10000000};
	const int nsizes = ctx->quick ? 3 : 4;
	const size_t k = ctx->quick ? 200000 : 1000000;
	const struct tq_ops *ops[2] = {&wheel_ops, &heap_ops};
	const char *cases[2] = {"add+expire", "add+cancel"};
	const int reps = ctx->reps;
	struct tq q[NSIZES][2];
	double *v = calloc((size_t)reps * NSIZES * 4, sizeof(double));
	double *growth = calloc((size_t)reps * 2, sizeof(double));
	unsigned long errors = 0;
	bool ok = v != NULL && growth != NULL;

#define V(si, c, i, r) v[(((size_t)(si)*2 + (c)) * 2 + (i)) * reps + (r)]
	nvb_section("wheel: timer wheel vs binary heap (ns per timer)");
	memset(q, 0, sizeof(q));
	/* Every queue of every size lives through all repetitions, so that
	 * a repetition measures all of them within a short time and noise
	 * from a busy machine hits sizes and implementations alike. */
	for (int si = 0; ok && si < nsizes; si++)
		for (int i = 0; ok && i < 2; i++) {
			ok = tq_setup(&q[si][i], ops[i], sizes[si]);
			if (ok) /* warm-up: caches, heap array, cascades */
				run_expire(&q[si][i], k / 4);
		}
	for (int r = 0; ok && r < reps; r++) {
		for (int si = 0; si < nsizes; si++) {
			for (int j = 0; j < 2; j++) {
				int i =
				    (r + j) % 2; /* alternate who goes first */
				V(si, 0, i, r) = run_expire(&q[si][i], k);
				V(si, 1, i, r) = run_cancel(&q[si][i], k);
			}
		}
		/* Growth per repetition, the median of those is the gate. */
		for (int c = 0; c < 2; c++)
			growth[c * reps + r] = V(2, c, 0, r) / V(0, c, 0, r);
	}
	for (int si = 0; si < nsizes; si++)
		for (int i = 0; i < 2; i++) {
			errors += q[si][i].errors;
			tq_teardown(&q[si][i]);
		}
	if (!ok) {
		fprintf(stderr, "wheel bench: out of memory\n");
		errors++;
	}
	for (int si = 0; ok && si < nsizes; si++) {
		for (int c = 0; c < 2; c++) {
			char bcase[64];
			double mw = nvb_median(&V(si, c, 0, 0), reps);
			double mh = nvb_median(&V(si, c, 1, 0), reps);
			snprintf(bcase, sizeof(bcase), "%s %s live", cases[c],
				 size_name(sizes[si]));
			nvb_report(ctx, "wheel", bcase, "wheel", mw,
				   "ns/timer");
			nvb_report(ctx, "wheel", bcase, "heap", mh, "ns/timer");
			nvb_report(ctx, "wheel", bcase, "heap/wheel", mh / mw,
				   "x");
		}
	}
	if (ok) {
		nvb_gate_max(ctx, "wheel ns/timer growth 1k->1M (add+expire)",
			     nvb_median(&growth[0], reps), 2.0);
		nvb_gate_max(ctx, "wheel ns/timer growth 1k->1M (add+cancel)",
			     nvb_median(&growth[reps], reps), 2.0);
	}
	/* Counts: every cancel found its timer, N stayed live throughout. */
	nvb_gate_max(ctx, "wheel bench count errors", (double)errors, 0);
#undef V
	free(v);
	free(growth);
}

NVB_SUITE(wheel, bench_wheel, 20)
