/*
 * asym.c - membarrier registration and the rare side of the asymmetric
 * Dekker fence (lockfree/asym.h).
 */
#include "lockfree/asym.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

bool nv__asym_ok;

static pthread_once_t asym_once = PTHREAD_ONCE_INIT;

static void
asym_register(void)
{
#ifndef NUVOM_TSAN
	long mask = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	if (mask < 0 || !(mask & MEMBARRIER_CMD_PRIVATE_EXPEDITED))
		return;
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
		    0, 0) != 0)
		return;
	nv__asym_ok = true;
#endif
}

void
nv__asym_init(void)
{
	pthread_once(&asym_once, asym_register);
}

bool
nv__asym_heavy(void)
{
	/* Without membarrier the callers use seq_cst on both sides (or,
	 * for the ring's bias, no light side at all): nothing to add. */
	if (!nv__asym_ok)
		return true;
#ifdef NUVOM_TSAN
	return true; /* not reached: TSan builds never set nv__asym_ok */
#else
	/* Our own accesses: a full fence on each side of the call. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	long rc =
	    syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return rc == 0;
#endif
}
