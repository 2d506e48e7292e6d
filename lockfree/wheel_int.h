/*
 * lockfree/wheel_int.h - internals of the timer wheel (nuvom/wheel.h) that
 * tests and benchmarks may look at: geometry, an invariant checker, where a
 * timer sits, and work counters. Not part of the public API.
 *
 * Same threading rule as the wheel: call these from the owner thread only.
 */
#ifndef NV_LOCKFREE_WHEEL_INT_H
#define NV_LOCKFREE_WHEEL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nuvom/wheel.h"

/* Geometry: NV__WHEEL_LEVELS levels of 2^NV__WHEEL_BITS slots each; level L
 * has slots of 2^(NV__WHEEL_BITS * L) ms. 11 levels of 64 cover 2^66 ms. */
#define NV__WHEEL_BITS 6
#define NV__WHEEL_SLOTS (1u << NV__WHEEL_BITS)
#define NV__WHEEL_LEVELS 11
#define NV__WHEEL_MAX_DEADLINE ((uint64_t)1 << 63)

/* nv__wheel_where() answers, besides a level 0..NV__WHEEL_LEVELS-1: */
#define NV__WHEEL_IDLE (-1)    /* not pending in this wheel */
#define NV__WHEEL_EXPIRED (-2) /* added with a past deadline: next advance */
#define NV__WHEEL_FIRING (-3)  /* due in the advance now running */

/* Work done by the wheel since create (monotonic counters). */
struct nv__wheel_stats {
	uint64_t buckets;  /* occupied buckets reached by advance */
	uint64_t cascaded; /* timers moved down a level */
	uint64_t fired;	   /* callbacks run */
	uint64_t sorted;   /* expired lists that needed sorting */
};

/* Checks every invariant of the wheel (links, bitmaps, placement of each
 * timer for the wheel's clock, counts). Cost O(buckets + timers). Returns
 * true when sound, else false with a reason in why (if why != NULL). */
bool nv__wheel_check(const nv_wheel *w, char *why, size_t len);

/* Where t sits in w: a level, or one of NV__WHEEL_IDLE/EXPIRED/FIRING. */
int nv__wheel_where(const nv_wheel *w, const nv_timer *t);

/* The wheel's clock: the now_ms of the last advance (or of create); inside
 * a callback, the deadline being fired (or the clock at entry for timers
 * that were added already past due). */
uint64_t nv__wheel_now(const nv_wheel *w);

/* Copies the work counters. */
void nv__wheel_stats(const nv_wheel *w, struct nv__wheel_stats *out);

#endif /* NV_LOCKFREE_WHEEL_INT_H */
