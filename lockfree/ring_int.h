/* lockfree/ring_int.h - internal additions to nuvom/ring.h. */
#ifndef NV_LOCKFREE_RING_INT_H
#define NV_LOCKFREE_RING_INT_H

#include <stddef.h>

#include "nuvom/ring.h"

/* nv_ring_pop_bulk that takes only ready / share + 1 of the (up to n)
 * ready items it sees, so that a consumer leaves work for share - 1
 * others, without reading the producers' index (nv_ring_size does, and
 * that steals the line the producers CAS). Same guarantees otherwise. */
size_t nv__ring_pop_share(nv_ring *r, void **items, size_t n, size_t share);

#endif
