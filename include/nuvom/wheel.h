/*
 * nuvom/wheel.h - hierarchical timer wheel with millisecond ticks.
 *
 * Single-owner structure: all calls on one wheel come from one thread (the
 * owner) or are otherwise serialized by the caller. Other threads hand
 * timers to the owner through a queue of their own (the engine's scheduler
 * inbox); the wheel itself has no locks and no atomics.
 *
 * Timers are intrusive: embed a struct nv_timer in your own struct, call
 * nv_timer_init once, then nv_wheel_add. The wheel never allocates per
 * timer and never frees a timer. A timer fires once (its callback runs from
 * inside nv_wheel_advance), never before its deadline, and at most one tick
 * late when advance is called on time. Timers due in the same advance call
 * fire in deadline order (ties in the order they were added). A callback
 * may add (re-arm) its own timer or any other, and may cancel others.
 *
 * Deadlines are absolute milliseconds on the caller's clock, anything up to
 * 2^63. A deadline already in the past fires on the next advance.
 *
 * The wheel's clock is the now_ms of the last advance (of create before
 * that); while a callback runs it is the deadline being fired. A timer
 * added from a callback with a deadline after that clock and <= the
 * advance's now_ms fires in the same advance, in order; one added at or
 * before the clock waits for the next advance (so a zero-interval re-arm
 * cannot spin inside one advance).
 *
 * Cost: add and cancel O(1); advance O(timers fired + timers cascaded +
 * occupied buckets reached), independent of the milliseconds crossed.
 */
#ifndef NUVOM_WHEEL_H
#define NUVOM_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nv_wheel nv_wheel;
typedef struct nv_timer nv_timer;
typedef void (*nv_timer_fn)(nv_timer *t, void *arg);

/* Declared here only so that it can be embedded; the fields are private. */
struct nv_timer {
	struct nv_timer *nv__next;
	struct nv_timer *nv__prev;
	uint64_t nv__deadline;
	nv_timer_fn nv__fn;
	void *nv__arg;
	uint32_t nv__where; /* private: bucket index, or a state code */
	uint32_t nv__flags; /* private */
};

/* Creates an empty wheel whose clock starts at now_ms. 0 or NV_ENOMEM. */
int nv_wheel_create(nv_wheel **out, uint64_t now_ms);

/* Frees the wheel. Pending timers are forgotten: not fired and not touched
 * (so they may already be freed); they still read as pending, so run
 * nv_timer_init on one before adding it again. Not from a callback. */
void nv_wheel_destroy(nv_wheel *w);

/* Prepares a timer; call once before the first add (and never on a
 * pending timer). fn must not be NULL for the timer to be added. A
 * zero-filled nv_timer reads as not pending. */
void nv_timer_init(nv_timer *t, nv_timer_fn fn, void *arg);

/* Arms t to fire at deadline_ms. O(1). Returns 0, NV_EINVAL (NULL wheel or
 * timer, a timer without callback, or a deadline above 2^63), or NV_EBUSY
 * when t is already pending (in this or another wheel). On error the timer
 * is left as it was and its callback does not fire for this call. */
int nv_wheel_add(nv_wheel *w, nv_timer *t, uint64_t deadline_ms);

/* Disarms t. O(1). Returns false if t was not pending (never added,
 * already fired, or already cancelled) or is pending in another wheel.
 * Callable from a callback, on any timer, including one due later in the
 * same advance (it then does not fire). */
bool nv_wheel_cancel(nv_wheel *w, nv_timer *t);

/* Moves the clock to now_ms and fires every timer with deadline <= now_ms,
 * in deadline order (ties in add order). Returns how many fired. A now_ms
 * behind the wheel's clock fires nothing and leaves the clock alone (timers
 * already past due wait for an advance that is not behind). Cost:
 * proportional to the timers fired and cascaded plus the occupied buckets
 * crossed, not to the milliseconds crossed. Not re-entrant: called from a
 * callback it does nothing and returns 0. */
size_t nv_wheel_advance(nv_wheel *w, uint64_t now_ms);

/* When to call advance next: never later than the earliest pending
 * deadline (exact when that timer sits in the finest level, else the start
 * of its coarse bucket, where it cascades). UINT64_MAX when empty. A value
 * at or before the wheel's clock (a timer added with a past deadline)
 * means: advance now. */
uint64_t nv_wheel_next_deadline(const nv_wheel *w);

/* Number of pending timers. */
size_t nv_wheel_count(const nv_wheel *w);

/* True when t is pending in some wheel (added, not yet fired or cancelled;
 * false inside its own callback until it is re-added). */
bool nv_timer_pending(const nv_timer *t);

#ifdef __cplusplus
}
#endif
#endif /* NUVOM_WHEEL_H */
