/*
 * wheel.c - hierarchical timer wheel with millisecond ticks (nuvom/wheel.h).
 *
 * Geometry. NV__WHEEL_LEVELS (11) levels of 64 slots; a slot of level L
 * spans 64^L ms, so the levels together cover 2^66 ms, more than the 2^63
 * a deadline may reach. Every timer in the wheel has deadline d > now (the
 * wheel's clock) and sits at the level of the highest bit in which d and
 * now differ, divided by 6, in the slot given by d's 6 bits at that level:
 *
 *	level = msb(d ^ now) / 6,   slot = (d >> 6 * level) & 63.
 *
 * So d and now agree on every bit above the level, and d's slot is strictly
 * after now's slot at that level. Three things follow. (1) A level holds
 * no slot at or behind now's, so occupied slots never wrap around and the
 * first set bit of a level's occupancy bitmap is its earliest bucket. (2)
 * Every timer of level L is due before every timer of level L + 1 (they
 * differ from now in a lower bit), so the earliest bucket of the wheel is
 * the first occupied slot of the lowest occupied level: two find-first-set
 * instructions, one on a summary word of occupied levels and one on that
 * level's bitmap. (3) Placement is a function of (d, now) alone, so timers
 * with equal deadlines always share one list, in the order they were added.
 *
 * Advance to T. Fire the expired list (below); then, while the earliest
 * bucket starts at some t <= T: set now = t, take the bucket's list out,
 * and either fire it (level 0: every deadline is exactly t) or cascade it
 * (level > 0: timers with d == t become due, the others go to a lower
 * level, now that now has reached their bucket). Finally now = T, which
 * keeps the placement rule true because T is before every remaining
 * bucket. Each step of the loop fires or moves at least one timer, and a
 * timer moves down at most 10 times, so an advance costs O(fired +
 * cascaded + occupied buckets reached), however many milliseconds it
 * crosses: a jump of days over an empty wheel is one comparison.
 *
 * Deadline order. Buckets are reached in time order and every list is
 * FIFO, so timers fire by deadline and, for equal deadlines, in add order.
 * Slots of level 0 are exact; a coarse bucket is only a time range, and
 * cascading sorts it one level finer at a time, exactly when now reaches
 * its start, so a timer is never fired early nor found late.
 *
 * Lanes. Each bucket of a level above 0 is split into 8 lanes by the next
 * three bits of d (lane = which eighth of the bucket d falls in). A lane is
 * a plain FIFO list; the split exists because cascading walks lists whose
 * timers were last touched long ago: with one list that walk is a chain of
 * dependent cache misses, with 8 lanes walked round-robin the next timer of
 * every lane is prefetched while the others are moved. Equal deadlines
 * share a lane, so the tie order survives the interleaving.
 *
 * Past deadlines. add(d <= now) puts the timer on the expired list, which
 * the next advance sorts (stable merge sort, skipped when the adds came in
 * deadline order, the common case) and fires before the wheel: all its
 * deadlines are <= the clock, all wheel deadlines above it.
 *
 * Callbacks run from advance with the timer already off the wheel (not
 * pending), and the clock set to the deadline being fired. They may add
 * (re-arm) their own timer or any other, and cancel any timer, including
 * one due later in the same advance. A timer added with a deadline in
 * (now, T] fires later in the same advance, in order; one added with a
 * deadline <= now waits for the next advance (so a zero-interval re-arm
 * cannot loop forever). The list being fired lives in the wheel (the
 * "firing" list) so that cancel can take timers out of it.
 *
 * Threads: one owner, no locks, no atomics. Memory: one allocation at
 * create; timers are the caller's, linked through their own fields; the
 * wheel never touches a timer after its callback has started.
 *
 * Timer fields: nv__where is the index of the list holding the timer (0 =
 * not pending; 1 expired, 2 firing, 3.. wheel lists) and nv__flags the tag
 * of the wheel holding it (a best-effort check against cancel on the wrong
 * wheel). A zero-filled timer is therefore "not pending".
 */
#include "lockfree/wheel_int.h"

#include <stdio.h>

#include "base/alloc.h"
#include "nuvom/error.h"

#define W_BITS NV__WHEEL_BITS
#define W_SLOTS NV__WHEEL_SLOTS
#define W_MASK ((uint64_t)W_SLOTS - 1)
#define W_LEVELS NV__WHEEL_LEVELS
#define W_LANE_BITS 3
#define W_LANES (1u << W_LANE_BITS)

/* List indices (= nv__where values). */
#define W_IDLE 0u
#define W_EXPIRED 1u
#define W_FIRING 2u
#define W_L0 3u			      /* level 0: one list per slot */
#define W_L1 (W_L0 + W_SLOTS)	      /* levels 1..: W_LANES per slot */
#define W_LSTRIDE (W_SLOTS * W_LANES) /* lists per level above 0 */
#define W_NLISTS (W_L1 + (W_LEVELS - 1) * W_LSTRIDE)

struct w_list {
	nv_timer *head;
	nv_timer *tail;
};

struct nv_wheel {
	uint64_t now;
	size_t count;
	uint32_t tag;
	uint32_t levels;	   /* bit L: bitmap[L] != 0 */
	uint64_t bitmap[W_LEVELS]; /* bit s: bucket (L, s) occupied */
	bool in_advance;
	bool exp_sorted;  /* expired list in deadline order */
	uint64_t exp_min; /* <= every expired deadline */
	struct nv__wheel_stats st;
	struct w_list list[W_NLISTS];
};

/* ---------------------------------------------------------------- lists */

static inline void
list_append(struct w_list *l, nv_timer *t)
{
	t->nv__next = NULL;
	t->nv__prev = l->tail;
	if (l->tail != NULL)
		l->tail->nv__next = t;
	else
		l->head = t;
	l->tail = t;
}

static inline void
list_unlink(struct w_list *l, nv_timer *t)
{
	if (t->nv__prev != NULL)
		t->nv__prev->nv__next = t->nv__next;
	else
		l->head = t->nv__next;
	if (t->nv__next != NULL)
		t->nv__next->nv__prev = t->nv__prev;
	else
		l->tail = t->nv__prev;
}

/* Moves all of src to the end of dst, relabelling the timers as `where`. */
static void
list_splice(struct w_list *dst, struct w_list *src, uint32_t where)
{
	for (nv_timer *t = src->head; t != NULL; t = t->nv__next)
		t->nv__where = where;
	if (src->head == NULL)
		return;
	if (dst->tail != NULL) {
		dst->tail->nv__next = src->head;
		src->head->nv__prev = dst->tail;
	} else {
		dst->head = src->head;
	}
	dst->tail = src->tail;
	src->head = src->tail = NULL;
}

/* ---------------------------------------------------------------- geometry */

static inline unsigned
lanes_of(unsigned level)
{
	return level == 0 ? 1 : W_LANES;
}

/* Index of the first list of bucket (level, slot). */
static inline uint32_t
bucket_list(unsigned level, unsigned slot)
{
	if (level == 0)
		return W_L0 + slot;
	return W_L1 + (level - 1) * W_LSTRIDE + slot * W_LANES;
}

/* Level and slot of a wheel list index (>= W_L0). */
static inline void
list_bucket(uint32_t idx, unsigned *level, unsigned *slot)
{
	if (idx < W_L1) {
		*level = 0;
		*slot = idx - W_L0;
	} else {
		*level = (idx - W_L1) / W_LSTRIDE + 1;
		*slot = ((idx - W_L1) / W_LANES) % W_SLOTS;
	}
}

/* The list a deadline d > now belongs to (see the placement rule above). */
static inline uint32_t
place_of(uint64_t now, uint64_t d)
{
	unsigned msb = 63u - (unsigned)__builtin_clzll(d ^ now);
	unsigned level = msb / W_BITS;
	unsigned shift = level * W_BITS;
	unsigned slot = (unsigned)((d >> shift) & W_MASK);

	if (level == 0)
		return W_L0 + slot;
	return bucket_list(level, slot) +
	       (unsigned)((d >> (shift - W_LANE_BITS)) & (W_LANES - 1));
}

/* Start time of bucket (level, slot) for the clock now. */
static inline uint64_t
bucket_start(uint64_t now, unsigned level, unsigned slot)
{
	unsigned above = (level + 1) * W_BITS;
	uint64_t prefix = above >= 64 ? 0 : now & ~(((uint64_t)1 << above) - 1);

	return prefix | ((uint64_t)slot << (level * W_BITS));
}

static bool
bucket_empty(const nv_wheel *w, unsigned level, unsigned slot)
{
	const struct w_list *l = &w->list[bucket_list(level, slot)];

	for (unsigned k = 0; k < lanes_of(level); k++)
		if (l[k].head != NULL)
			return false;
	return true;
}

static inline void
mark_occupied(nv_wheel *w, unsigned level, unsigned slot)
{
	w->bitmap[level] |= (uint64_t)1 << slot;
	w->levels |= 1u << level;
}

static inline void
mark_empty(nv_wheel *w, unsigned level, unsigned slot)
{
	w->bitmap[level] &= ~((uint64_t)1 << slot);
	if (w->bitmap[level] == 0)
		w->levels &= ~(1u << level);
}

/* Puts t (deadline > now) on its wheel list. */
static inline void
place(nv_wheel *w, nv_timer *t)
{
	uint32_t idx = place_of(w->now, t->nv__deadline);
	unsigned level, slot;

	list_append(&w->list[idx], t);
	t->nv__where = idx;
	list_bucket(idx, &level, &slot);
	mark_occupied(w, level, slot);
}

/* ---------------------------------------------------------------- API */

int
nv_wheel_create(nv_wheel **out, uint64_t now_ms)
{
	nv_wheel *w;
	uintptr_t p;

	if (out == NULL)
		return NV_EINVAL;
	w = nv__calloc(1, sizeof(*w));
	if (w == NULL)
		return NV_ENOMEM;
	w->now = now_ms;
	w->exp_sorted = true;
	w->exp_min = UINT64_MAX;
	p = (uintptr_t)w;
	w->tag = (uint32_t)((p >> 4) ^ ((uint64_t)p >> 36)) | 1u;
	*out = w;
	return 0;
}

void
nv_wheel_destroy(nv_wheel *w)
{
	nv__free(w);
}

void
nv_timer_init(nv_timer *t, nv_timer_fn fn, void *arg)
{
	if (t == NULL)
		return;
	t->nv__next = t->nv__prev = NULL;
	t->nv__deadline = 0;
	t->nv__fn = fn;
	t->nv__arg = arg;
	t->nv__where = W_IDLE;
	t->nv__flags = 0;
}

int
nv_wheel_add(nv_wheel *w, nv_timer *t, uint64_t deadline_ms)
{
	if (w == NULL || t == NULL || t->nv__fn == NULL ||
	    deadline_ms > NV__WHEEL_MAX_DEADLINE)
		return NV_EINVAL;
	if (t->nv__where != W_IDLE)
		return NV_EBUSY;
	t->nv__deadline = deadline_ms;
	t->nv__flags = w->tag;
	if (deadline_ms > w->now) {
		place(w, t);
	} else {
		struct w_list *l = &w->list[W_EXPIRED];
		if (l->tail != NULL && l->tail->nv__deadline > deadline_ms)
			w->exp_sorted = false;
		if (deadline_ms < w->exp_min)
			w->exp_min = deadline_ms;
		list_append(l, t);
		t->nv__where = W_EXPIRED;
	}
	w->count++;
	return 0;
}

bool
nv_wheel_cancel(nv_wheel *w, nv_timer *t)
{
	uint32_t idx;

	if (w == NULL || t == NULL || t->nv__where == W_IDLE ||
	    t->nv__where >= W_NLISTS || t->nv__flags != w->tag)
		return false;
	idx = t->nv__where;
	/* Best effort against a timer of another wheel with the same tag:
	 * the head of a list must be the head of our list. */
	if (t->nv__prev == NULL && w->list[idx].head != t)
		return false;
	list_unlink(&w->list[idx], t);
	if (idx >= W_L0 && w->list[idx].head == NULL) {
		unsigned level, slot;
		list_bucket(idx, &level, &slot);
		if (bucket_empty(w, level, slot))
			mark_empty(w, level, slot);
	} else if (idx == W_EXPIRED && w->list[idx].head == NULL) {
		w->exp_sorted = true;
		w->exp_min = UINT64_MAX;
	}
	t->nv__next = t->nv__prev = NULL;
	t->nv__where = W_IDLE;
	t->nv__flags = 0;
	w->count--;
	return true;
}

bool
nv_timer_pending(const nv_timer *t)
{
	return t != NULL && t->nv__where != W_IDLE;
}

size_t
nv_wheel_count(const nv_wheel *w)
{
	return w == NULL ? 0 : w->count;
}

uint64_t
nv_wheel_next_deadline(const nv_wheel *w)
{
	unsigned level, slot;

	if (w == NULL)
		return UINT64_MAX;
	if (w->list[W_EXPIRED].head != NULL)
		return w->exp_min;
	if (w->levels == 0)
		return UINT64_MAX;
	level = (unsigned)__builtin_ctz(w->levels);
	slot = (unsigned)__builtin_ctzll(w->bitmap[level]);
	return bucket_start(w->now, level, slot);
}

/* ---------------------------------------------------------------- advance */

/* Stable merge sort of the expired list by deadline (bottom-up, on the
 * next links; prev links rebuilt at the end). O(k log k) for k timers. */
static void
sort_expired(nv_wheel *w)
{
	struct w_list *l = &w->list[W_EXPIRED];
	nv_timer *list = l->head, *prev;
	size_t run = 1, merges;

	do {
		nv_timer *p = list, *head = NULL, **tailp = &head;
		merges = 0;
		while (p != NULL) {
			nv_timer *q = p;
			size_t ps = 0, qs = run;
			merges++;
			while (q != NULL && ps < run) {
				ps++;
				q = q->nv__next;
			}
			while (ps > 0 || (qs > 0 && q != NULL)) {
				nv_timer *e;
				/* <= keeps equal deadlines in add order. */
				if (ps > 0 &&
				    (qs == 0 || q == NULL ||
				     p->nv__deadline <= q->nv__deadline)) {
					e = p;
					p = p->nv__next;
					ps--;
				} else {
					e = q;
					q = q->nv__next;
					qs--;
				}
				*tailp = e;
				tailp = &e->nv__next;
			}
			p = q;
		}
		*tailp = NULL;
		list = head;
		run *= 2;
	} while (merges > 1);
	prev = NULL;
	for (nv_timer *t = list; t != NULL; t = t->nv__next) {
		t->nv__prev = prev;
		prev = t;
	}
	l->head = list;
	l->tail = prev;
	w->st.sorted++;
}

/* Runs the callbacks of the firing list, front to back. A callback may
 * cancel timers further down the list (they leave it) or add timers (they
 * go to the wheel or the expired list, never to this list). */
static size_t
fire(nv_wheel *w)
{
	struct w_list *l = &w->list[W_FIRING];
	size_t n = 0;
	nv_timer *t;

	while ((t = l->head) != NULL) {
		l->head = t->nv__next;
		if (l->head != NULL) {
			l->head->nv__prev = NULL;
			__builtin_prefetch(l->head);
		} else {
			l->tail = NULL;
		}
		t->nv__next = t->nv__prev = NULL;
		t->nv__where = W_IDLE;
		t->nv__flags = 0;
		w->count--;
		n++;
		/* Last touch of t: the callback may free or re-add it. */
		t->nv__fn(t, t->nv__arg);
	}
	w->st.fired += n;
	return n;
}

/* now has just reached the start of bucket (level > 0, slot): move its
 * timers one level down or more, those due exactly now to the firing
 * list. The lanes are walked round-robin with the next timer of each lane
 * prefetched, so the cache misses of the walk overlap. */
static void
cascade(nv_wheel *w, unsigned level, unsigned slot)
{
	struct w_list *lanes = &w->list[bucket_list(level, slot)];
	struct w_list *due = &w->list[W_FIRING];
	nv_timer *cur[W_LANES];
	unsigned live = 0;

	for (unsigned k = 0; k < W_LANES; k++) {
		cur[k] = lanes[k].head;
		if (cur[k] != NULL)
			live |= 1u << k;
		lanes[k].head = lanes[k].tail = NULL;
	}
	mark_empty(w, level, slot);
	while (live != 0) {
		for (unsigned m = live; m != 0; m &= m - 1) {
			unsigned k = (unsigned)__builtin_ctz(m);
			nv_timer *t = cur[k];
			cur[k] = t->nv__next;
			if (cur[k] != NULL)
				__builtin_prefetch(cur[k], 1);
			else
				live &= ~(1u << k);
			if (t->nv__deadline == w->now) {
				/* Only lane 0 holds d == bucket start, so
				 * due timers keep their add order. */
				list_append(due, t);
				t->nv__where = W_FIRING;
			} else {
				place(w, t);
			}
			w->st.cascaded++;
		}
	}
}

size_t
nv_wheel_advance(nv_wheel *w, uint64_t now_ms)
{
	size_t n = 0;

	if (w == NULL || w->in_advance || now_ms < w->now)
		return 0;
	w->in_advance = true;
	if (w->list[W_EXPIRED].head != NULL) {
		if (!w->exp_sorted)
			sort_expired(w);
		list_splice(&w->list[W_FIRING], &w->list[W_EXPIRED], W_FIRING);
		w->exp_sorted = true;
		w->exp_min = UINT64_MAX;
		n += fire(w);
	}
	while (w->levels != 0) {
		unsigned level = (unsigned)__builtin_ctz(w->levels);
		unsigned slot = (unsigned)__builtin_ctzll(w->bitmap[level]);
		uint64_t start = bucket_start(w->now, level, slot);

		if (start > now_ms)
			break;
		w->now = start;
		w->st.buckets++;
		if (level == 0) {
			mark_empty(w, 0, slot);
			list_splice(&w->list[W_FIRING], &w->list[W_L0 + slot],
				    W_FIRING);
		} else {
			cascade(w, level, slot);
		}
		n += fire(w);
	}
	/* Every bucket left starts after now_ms, so the placement rule still
	 * holds with the clock at now_ms. */
	w->now = now_ms;
	w->in_advance = false;
	return n;
}

/* ---------------------------------------------------------------- internal */

uint64_t
nv__wheel_now(const nv_wheel *w)
{
	return w->now;
}

void
nv__wheel_stats(const nv_wheel *w, struct nv__wheel_stats *out)
{
	*out = w->st;
}

int
nv__wheel_where(const nv_wheel *w, const nv_timer *t)
{
	unsigned level, slot;

	if (t->nv__where == W_IDLE || t->nv__flags != w->tag)
		return NV__WHEEL_IDLE;
	if (t->nv__where == W_EXPIRED)
		return NV__WHEEL_EXPIRED;
	if (t->nv__where == W_FIRING)
		return NV__WHEEL_FIRING;
	list_bucket(t->nv__where, &level, &slot);
	return (int)level;
}

#define FAIL(...)                                                              \
	do {                                                                   \
		if (why != NULL && len > 0)                                    \
			snprintf(why, len, __VA_ARGS__);                       \
		return false;                                                  \
	} while (0)

/* Checks the links of list idx and counts its timers into *n. */
static bool
check_list(const nv_wheel *w, uint32_t idx, size_t *n, char *why, size_t len)
{
	const struct w_list *l = &w->list[idx];
	const nv_timer *prev = NULL;

	for (const nv_timer *t = l->head; t != NULL; t = t->nv__next) {
		if (t->nv__prev != prev)
			FAIL("list %u: broken prev link", idx);
		if (t->nv__where != idx)
			FAIL("list %u: timer says where=%u", idx, t->nv__where);
		if (t->nv__flags != w->tag)
			FAIL("list %u: timer has another wheel's tag", idx);
		if (t->nv__deadline > NV__WHEEL_MAX_DEADLINE)
			FAIL("list %u: deadline above 2^63", idx);
		if (t->nv__fn == NULL)
			FAIL("list %u: timer without callback", idx);
		if (++*n > w->count)
			FAIL("more timers in lists than count %zu", w->count);
		prev = t;
	}
	if (l->tail != prev)
		FAIL("list %u: tail is not the last timer", idx);
	return true;
}

bool
nv__wheel_check(const nv_wheel *w, char *why, size_t len)
{
	size_t n = 0;
	uint32_t levels = 0;

	if (w == NULL)
		FAIL("NULL wheel");
	if (!w->in_advance && w->list[W_FIRING].head != NULL)
		FAIL("firing list not empty outside advance");
	for (uint32_t idx = W_EXPIRED; idx < W_L0; idx++) {
		const nv_timer *prev = NULL;
		if (!check_list(w, idx, &n, why, len))
			return false;
		for (const nv_timer *t = w->list[idx].head; t != NULL;
		     t = t->nv__next) {
			if (t->nv__deadline > w->now)
				FAIL("list %u: deadline %llu after clock %llu",
				     idx, (unsigned long long)t->nv__deadline,
				     (unsigned long long)w->now);
			if (idx == W_EXPIRED && t->nv__deadline < w->exp_min)
				FAIL("expired deadline below exp_min");
			if (idx == W_EXPIRED && w->exp_sorted && prev != NULL &&
			    prev->nv__deadline > t->nv__deadline)
				FAIL("expired list marked sorted but is not");
			prev = t;
		}
	}
	for (unsigned level = 0; level < W_LEVELS; level++) {
		for (unsigned slot = 0; slot < W_SLOTS; slot++) {
			uint32_t first = bucket_list(level, slot);
			bool occupied = !bucket_empty(w, level, slot);
			bool bit = (w->bitmap[level] >> slot) & 1;
			if (occupied != bit)
				FAIL("bitmap of level %u slot %u is %d", level,
				     slot, (int)bit);
			if (occupied)
				levels |= 1u << level;
			for (unsigned k = 0; k < lanes_of(level); k++) {
				uint32_t idx = first + k;
				if (!check_list(w, idx, &n, why, len))
					return false;
				for (const nv_timer *t = w->list[idx].head;
				     t != NULL; t = t->nv__next) {
					uint64_t d = t->nv__deadline;
					if (d <= w->now)
						FAIL(
						    "level %u: deadline %llu "
						    "not after clock %llu",
						    level,
						    (unsigned long long)d,
						    (unsigned long long)w->now);
					if (place_of(w->now, d) != idx)
						FAIL("deadline %llu in list %u"
						     ", belongs in %u",
						     (unsigned long long)d, idx,
						     place_of(w->now, d));
				}
			}
		}
	}
	if (levels != w->levels)
		FAIL("level summary %#x, expected %#x", w->levels, levels);
	if (n != w->count)
		FAIL("%zu timers in lists, count says %zu", n, w->count);
	return true;
}
