/*
 * persistence/reorder.h - puts the persister's early nodes back in seq
 * order (persister.c, "Order").
 *
 * A node that arrives before the seqs below it is held here until its
 * turn: in a window of NV__RO_WIN slots indexed by seq when it is at most
 * that far ahead (the usual case; O(1), and the node itself is never read
 * to find its place), else in a min-heap of (seq, node) pairs. Nodes are
 * opaque pointers.
 *
 * Threads: one owner (the persister thread; its owner before start and
 * after join).
 */
#ifndef NV_PERSIST_REORDER_H
#define NV_PERSIST_REORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NV__RO_WIN 8192u /* power of two */

struct nv_ro_ent {
	uint64_t seq;
	void *node;
};

struct nv_reorder {
	void **win; /* NV__RO_WIN slots: seqs in (next - 1, next - 1 + WIN] */
	size_t win_len;		/* nodes in the window */
	struct nv_ro_ent *heap; /* seqs further ahead */
	size_t heap_len, heap_cap;
};

/* 0 or NV_ENOMEM. */
int nv__ro_init(struct nv_reorder *ro);
/* Frees the structure; hands each node still held to drop (may be NULL). */
void nv__ro_free(struct nv_reorder *ro, void (*drop)(void *node));
/* Holds node of seq (> next, the seq the owner waits for now); false when
 * it cannot (no memory). */
bool nv__ro_put(struct nv_reorder *ro, uint64_t seq, uint64_t next, void *node);
/* The held node of seq `next`, or NULL. `next` never decreases between
 * calls. */
void *nv__ro_take(struct nv_reorder *ro, uint64_t next);
/* Nodes held. */
static inline size_t
nv__ro_len(const struct nv_reorder *ro)
{
	return ro->win_len + ro->heap_len;
}

#endif
