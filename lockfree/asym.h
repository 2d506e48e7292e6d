/*
 * lockfree/asym.h - an asymmetric Dekker fence: the frequent side pays a
 * compiler barrier, the rare side a membarrier(2) system call.
 *
 * The pattern it serves: thread F (frequent) stores X then loads Y; thread
 * R (rare) stores Y then loads X; at least one of them must see the other's
 * store. Symmetric Dekker needs a full fence (or a locked instruction) on
 * both sides. With membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), R forces
 * every running thread of the process through a full memory barrier before
 * the call returns (threads not running pass one when they are scheduled
 * out): so either F's store came before that barrier and R's later load
 * sees it, or F's load comes after it and sees R's store. liburcu's memb
 * flavour rests on the same guarantee.
 *
 * nv__asym_init() registers the process once (Linux >= 4.14). Where that
 * fails, and in ThreadSanitizer builds (TSan does not model membarrier),
 * nv__asym_ok stays false and the callers do without the light side:
 * the eventcounts (park.h) use seq_cst on both sides, the ring's owner
 * bias (bias.h) is off (seq_cst on both sides in TSan builds). The flag
 * is written once, under pthread_once, by engine open or the first
 * nv_ring_create; its readers reach it through those calls or through
 * the ring or engine pointer they were handed.
 */
#ifndef NV_LOCKFREE_ASYM_H
#define NV_LOCKFREE_ASYM_H

#include <stdbool.h>

extern bool nv__asym_ok;

/* Registers membarrier once per process; sets nv__asym_ok. Thread-safe. */
void nv__asym_init(void);

/* The rare side's fence, between its store and its loads. Returns false
 * when the other side may be on the light path and the barrier could not
 * be forced (membarrier failed after registration): the caller must then
 * not rely on the pairing (never expected; handled anyway). */
bool nv__asym_heavy(void);

#endif
