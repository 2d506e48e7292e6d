/*
 * bias.c - the rare side of owner-biased claiming (lockfree/bias.h).
 */
#include "lockfree/bias.h"
#include "lockfree/relax.h"

#include <sched.h>
#include <time.h>

__thread char nv__bias_self __attribute__((tls_model("initial-exec")));

void
nv__bias_init(struct nv_bias *b)
{
	nv__asym_init();
	b->owner = NULL;
	b->busy = 0;
#ifdef NUVOM_TSAN
	b->state = NV_BIAS_ON; /* seq_cst on both sides (bias.h) */
#else
	b->state = nv__asym_ok ? NV_BIAS_ON : NV_BIAS_OFF;
#endif
}

void
nv__bias_revoke(struct nv_bias *b)
{
	uint32_t on = NV_BIAS_ON;

	if (__atomic_load_n(&b->state, __ATOMIC_ACQUIRE) == NV_BIAS_OFF)
		return;
	/* The rare side: REVOKING (whoever gets here first stores it; the
	 * others see it), then a barrier on every running thread of the
	 * process, then look at busy (bias.h). Every thread that finds the
	 * side not OFF runs this itself before it may CAS. */
	__atomic_compare_exchange_n(&b->state, &on, NV_BIAS_REVOKING, false,
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	/* nv__asym_heavy fails only if membarrier fails after it was
	 * registered (never seen; a seccomp filter installed later could do
	 * it). Then wait 10 ms instead: an owner's busy = 1 leaves its store
	 * buffer within microseconds while it runs, and a context switch
	 * drains it, so after that our load below sees it. */
	if (!nv__asym_heavy()) {
		struct timespec ms10 = { 0, 10 * 1000 * 1000 };
		nanosleep(&ms10, NULL);
	}
	/* Acquire pairs with the owner's release of busy = 0: its last
	 * plain index store is visible before we CAS that index. */
	for (unsigned spins = 0;
	     __atomic_load_n(&b->busy, __ATOMIC_SEQ_CST) != 0; spins++) {
		if (spins < 64) {
			nv__cpu_relax();
		} else if (spins < 128) {
			sched_yield(); /* the owner was preempted mid-claim */
		} else {
			/* Sleep, so a preempted owner gets the CPU even
			 * when this thread outranks it (SCHED_FIFO). */
			struct timespec us50 = { 0, 50 * 1000 };
			nanosleep(&us50, NULL);
		}
	}
	/* Release: what the acquire of busy == 0 made visible (the owner's
	 * last index store) is visible to whoever acquires OFF. */
	__atomic_store_n(&b->state, NV_BIAS_OFF, __ATOMIC_RELEASE);
}
