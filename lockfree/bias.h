/*
 * lockfree/bias.h - owner-biased claiming for one side of a ring.
 *
 * A ring index (tail for the producers, head for the consumers) needs a
 * locked CAS per claim only because several threads may claim at once.
 * Most rings have one thread on a side for long stretches (one dispatcher
 * thread, one consumer), so the side starts biased to the first thread
 * that claims on it: that owner claims with a plain load and store, no
 * locked instruction. The first claim by any other thread revokes the
 * bias for good and from then on every thread CASes.
 *
 * Revocation is an asymmetric Dekker handshake (lockfree/asym.h), with
 * state ON -> REVOKING -> OFF:
 *   owner:   busy = 1; compiler barrier; if (state != ON) back off;
 *            claim; busy = 0
 *   revoker: state = REVOKING; membarrier; wait until busy == 0;
 *            state = OFF; then CAS
 * The membarrier makes sure that either the owner's load sees REVOKING
 * (it takes the CAS path) or the revoker's load sees busy == 1 (it waits
 * for the owner's claim to finish; the release store of busy = 0 carries
 * the owner's index store to it). Nobody CASes before the state is OFF: a
 * thread that finds REVOKING runs the handshake itself (a thread that
 * only saw the state change, without its own membarrier, could read a
 * stale busy == 0 while the owner is mid-claim). The owner pays two plain
 * stores and a load on its own line per claim. The wait of a revocation
 * lasts the owner's claim (a few instructions; for a bulk pop, the scan
 * of its batch), longer only if the owner is preempted inside it; it
 * happens once per ring side.
 *
 * Signal handlers: a handler that claims on a side its own thread owns
 * while that thread is inside a claim gets NV_BIAS_NESTED (the ring
 * reports full or empty) instead of taking the same position twice.
 *
 * Without membarrier the bias is off from the start (the light side would
 * need a full fence, which costs what the CAS costs). ThreadSanitizer
 * builds keep the bias with seq_cst accesses on both sides (a correct
 * symmetric Dekker that TSan can check): the state machine and the busy
 * hand-off are checked there, the membarrier pairing of release builds
 * by the stress tests (tests/test_ring_bias.c).
 */
#ifndef NV_LOCKFREE_BIAS_H
#define NV_LOCKFREE_BIAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockfree/asym.h"

enum { NV_BIAS_ON = 0, NV_BIAS_REVOKING = 1, NV_BIAS_OFF = 2 };

struct nv_bias {
	const void *owner; /* atomic: the owning thread's token, or NULL */
	uint32_t state;    /* atomic: NV_BIAS_ON / _REVOKING / _OFF */
	uint32_t busy;     /* atomic: the owner is inside a claim */
};

/* A per-thread address, distinct for every live thread. */
extern __thread char nv__bias_self
    __attribute__((tls_model("initial-exec")));

#ifdef NUVOM_TSAN
#define NV_BIAS_LIGHT __ATOMIC_SEQ_CST
#else
#define NV_BIAS_LIGHT __ATOMIC_RELAXED
#endif

/* Sets up one side; the bias is on when the handshake is available. */
void nv__bias_init(struct nv_bias *b);

/* Revokes the bias and returns once it is OFF (slow path of
 * nv__bias_enter; runs while a side changes mode, then never again). */
void nv__bias_revoke(struct nv_bias *b);

/* What nv__bias_enter allows the caller. */
enum {
	NV_BIAS_CAS = 0,    /* claim with CAS (bias off, or revoked now) */
	NV_BIAS_SOLE = 1,   /* owner: plain claim, then nv__bias_exit */
	NV_BIAS_NESTED = 2, /* a signal handler interrupted this thread's
			     * own claim on this side: claim nothing */
};

/*
 * Decides how the calling thread claims on this side: NV_BIAS_SOLE when
 * it owns the side (plain accesses until nv__bias_exit), NV_BIAS_CAS
 * otherwise (the bias is off, or revoked by this call if another thread
 * owned it). NV_BIAS_NESTED: the caller is a signal handler that
 * interrupted its own thread in the middle of a plain claim on this side;
 * neither a plain claim nor a CAS is safe until that claim ends (and a
 * revocation would wait for it forever), so the caller reports full or
 * empty.
 */
static inline int
nv__bias_enter(struct nv_bias *b)
{
	const void *me = &nv__bias_self, *owner;
	/* Acquire pairs with the revoker's release of OFF: the owner's last
	 * plain index store is visible to our CAS. A stale ON only leads to
	 * the handshake below. */
	uint32_t st = __atomic_load_n(&b->state, __ATOMIC_ACQUIRE);

	/* OFF: no owner is inside a plain claim (a revoker saw busy == 0
	 * after REVOKING, and an owner that enters later backs off). */
	if (st == NV_BIAS_OFF)
		return NV_BIAS_CAS;
	owner = __atomic_load_n(&b->owner, __ATOMIC_RELAXED);
	/* Our own busy flag, set by the code this handler interrupted:
	 * a thread sees its own stores in program order. */
	if (owner == me && __atomic_load_n(&b->busy, __ATOMIC_RELAXED))
		return NV_BIAS_NESTED;
	if (st == NV_BIAS_REVOKING) {
		nv__bias_revoke(b);
		return NV_BIAS_CAS;
	}
	if (owner != me) {
		const void *none = NULL;
		/* First claimant takes the bias; acquire pairs with nothing
		 * (the index starts at 0) but keeps TSan's view simple. */
		if (owner != NULL ||
		    !__atomic_compare_exchange_n(&b->owner, &none, me, false,
						 __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE)) {
			nv__bias_revoke(b);
			return NV_BIAS_CAS;
		}
	}
	/* The light side of the handshake: busy = 1 must be visible to a
	 * revoker that stored REVOKING and then ran membarrier, or we see
	 * its REVOKING below (lockfree/asym.h). */
	__atomic_store_n(&b->busy, 1, NV_BIAS_LIGHT);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&b->state, NV_BIAS_LIGHT) != NV_BIAS_ON) {
		__atomic_store_n(&b->busy, 0, __ATOMIC_RELEASE);
		nv__bias_revoke(b);
		return NV_BIAS_CAS;
	}
	return NV_BIAS_SOLE;
}

/* Ends an owner's claim. Release: the index store of the claim is visible
 * to a revoker that acquires busy == 0. */
static inline void
nv__bias_exit(struct nv_bias *b)
{
	__atomic_store_n(&b->busy, 0, __ATOMIC_RELEASE);
}

#endif
