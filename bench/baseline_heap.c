/*
 * baseline_heap.c - binary min-heap timer queue (bench baseline only).
 *
 * Entries are (deadline, seq, timer) kept inline in one array; seq is a
 * per-heap add counter so that equal deadlines pop in add order, as the
 * wheel promises. Sift-up/down move entries and write the moved timer's
 * idx, which is what makes cancel O(log n). Single owner thread.
 */
#include "baseline_heap.h"

#include <stdlib.h>

struct ent {
	uint64_t d;
	uint64_t seq;
	nvb_htimer *t;
};

struct nvb_heap {
	struct ent *a;
	size_t n, cap;
	uint64_t now, seq;
};

static inline bool
less(const struct ent *x, const struct ent *y)
{
	return x->d < y->d || (x->d == y->d && x->seq < y->seq);
}

static void
sift_up(struct ent *a, size_t i)
{
	struct ent e = a[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!less(&e, &a[p]))
			break;
		a[i] = a[p];
		a[i].t->idx = i;
		i = p;
	}
	a[i] = e;
	e.t->idx = i;
}

static void
sift_down(struct ent *a, size_t n, size_t i)
{
	struct ent e = a[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && less(&a[c + 1], &a[c]))
			c++;
		if (!less(&a[c], &e))
			break;
		a[i] = a[c];
		a[i].t->idx = i;
		i = c;
	}
	a[i] = e;
	e.t->idx = i;
}

int
nvb_heap_create(nvb_heap **out, uint64_t now_ms, size_t cap_hint)
{
	nvb_heap *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return -1;
	h->cap = cap_hint < 16 ? 16 : cap_hint;
	h->a = malloc(h->cap * sizeof(*h->a));
	if (h->a == NULL) {
		free(h);
		return -1;
	}
	h->now = now_ms;
	*out = h;
	return 0;
}

void
nvb_heap_destroy(nvb_heap *h)
{
	if (h != NULL) {
		free(h->a);
		free(h);
	}
}

void
nvb_htimer_init(nvb_htimer *t, nvb_htimer_fn fn, void *arg)
{
	t->deadline = 0;
	t->idx = NVB_HEAP_IDLE;
	t->fn = fn;
	t->arg = arg;
}

int
nvb_heap_add(nvb_heap *h, nvb_htimer *t, uint64_t deadline_ms)
{
	if (t->idx != NVB_HEAP_IDLE)
		return -1;
	if (h->n == h->cap) {
		struct ent *a = realloc(h->a, 2 * h->cap * sizeof(*a));
		if (a == NULL)
			return -1;
		h->a = a;
		h->cap *= 2;
	}
	t->deadline = deadline_ms;
	h->a[h->n] = (struct ent){deadline_ms, h->seq++, t};
	sift_up(h->a, h->n++);
	return 0;
}

bool
nvb_heap_cancel(nvb_heap *h, nvb_htimer *t)
{
	size_t i = t->idx;

	if (i == NVB_HEAP_IDLE)
		return false;
	t->idx = NVB_HEAP_IDLE;
	if (i != --h->n) {
		h->a[i] = h->a[h->n];
		if (i > 0 && less(&h->a[i], &h->a[(i - 1) / 2]))
			sift_up(h->a, i);
		else
			sift_down(h->a, h->n, i);
	}
	return true;
}

size_t
nvb_heap_advance(nvb_heap *h, uint64_t now_ms)
{
	size_t fired = 0;

	if (now_ms < h->now)
		return 0;
	h->now = now_ms;
	while (h->n > 0 && h->a[0].d <= now_ms) {
		nvb_htimer *t = h->a[0].t;
		t->idx = NVB_HEAP_IDLE;
		if (--h->n > 0) {
			h->a[0] = h->a[h->n];
			sift_down(h->a, h->n, 0);
		}
		fired++;
		t->fn(t, t->arg);
	}
	return fired;
}

uint64_t
nvb_heap_next_deadline(const nvb_heap *h)
{
	return h->n > 0 ? h->a[0].d : UINT64_MAX;
}

size_t
nvb_heap_count(const nvb_heap *h)
{
	return h->n;
}
