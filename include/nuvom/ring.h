/*
 * nuvom/ring.h - bounded multi-producer multi-consumer ring of pointers.
 *
 * Synchronization table (which calls may run at the same time):
 *
 *   | call             | with itself | with the others            |
 *   |------------------|-------------|----------------------------|
 *   | try_push, push_bulk | yes      | yes (try_pop, pop_bulk)    |
 *   | try_pop, pop_bulk   | yes      | yes (try_push, push_bulk)  |
 *   | size, capacity      | yes      | yes (size is approximate)  |
 *   | create, destroy     | no       | no: caller owns the ring   |
 *
 * Memory ordering: a successful push happens-before the pop that returns
 * the same item (release on publish, acquire on consume), so whatever the
 * producer wrote to *item before pushing is visible to the consumer.
 *
 * Progress: the try operations never wait for another thread. A producer
 * preempted in the middle of a push delays only the single slot it
 * claimed: the other threads keep making progress on the other slots and a
 * pop that meets that slot returns empty instead of spinning. A pop holds
 * nothing while it runs (its claim is its last step), so a preempted
 * consumer delays nobody. One exception, once per side of a ring: each
 * side starts owned by the first thread that uses it (it claims without
 * atomic read-modify-writes); the first call by a second thread on that
 * side switches it to shared mode and waits, if the owner is inside its
 * claim at that moment (a few instructions, or the scan of a bulk pop's
 * batch), until that claim is done.
 *
 * Signal handlers may call the try and bulk operations. A handler that
 * interrupted its own thread in the middle of a push (pop) on the same
 * ring, while that thread is the ring's only producer (consumer), gets
 * full (empty) for that call rather than a position the interrupted call
 * is taking.
 *
 * Ownership: the ring stores pointers; it never frees or touches what they
 * point at. NULL is a valid item.
 */
#ifndef NUVOM_RING_H
#define NUVOM_RING_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nv_ring nv_ring;

/* Creates a ring of at least `capacity` slots (rounded up to 2^k, minimum
 * 2, maximum 2^30). Returns 0, NV_EINVAL or NV_ENOMEM. */
int nv_ring_create(nv_ring **out, size_t capacity);

/* Frees the ring; items still in it are not touched. */
void nv_ring_destroy(nv_ring *r);

/* Pushes one item. Returns false when the ring is full. Lock-free. */
bool nv_ring_try_push(nv_ring *r, void *item);

/* Pops one item into *item. Returns false when the ring is empty. */
bool nv_ring_try_pop(nv_ring *r, void **item);

/* Pushes up to n items, in order, reserving their slots with one atomic
 * step. Returns how many went in (0..n; fewer when the ring fills). The
 * items that went in are items[0..ret). */
size_t nv_ring_push_bulk(nv_ring *r, void *const *items, size_t n);

/* Pops up to n items, in ring order, with one atomic reservation. Returns
 * how many came out into items[0..ret). */
size_t nv_ring_pop_bulk(nv_ring *r, void **items, size_t n);

/* Number of items, exact when quiescent, approximate under concurrency. */
size_t nv_ring_size(const nv_ring *r);

/* Number of slots (a power of two). */
size_t nv_ring_capacity(const nv_ring *r);

#ifdef __cplusplus
}
#endif
#endif /* NUVOM_RING_H */
