/*
 * lockfree/park.h - an eventcount: park a thread until a condition that
 * other threads make true, with no lost wake-up and no syscall on the
 * notify side while nobody sleeps.
 *
 * Waiter:                             Notifier:
 *   key = nv__ec_prepare(ec);           make the condition true (any store)
 *   if (condition) nv__ec_cancel(ec);   nv__ec_notify(ec, n);
 *   else nv__ec_wait(ec, key, ms);
 *
 * Why no wake-up is lost: prepare increments `waiters` with a seq_cst RMW
 * before the waiter checks the condition; notify issues a seq_cst fence
 * after making the condition true and before loading `waiters`. In the
 * single total order of seq_cst operations either the notifier's fence
 * comes first (then the waiter's check sees the condition) or the waiter's
 * increment does (then the notifier sees waiters > 0, bumps `seq` and
 * wakes; a waiter that read the old seq as its key either finds the futex
 * word changed and returns at once, or is woken).
 *
 * Cost: notify with no sleeper is a fence plus one load of a line that
 * stays shared; a wait is a futex syscall.
 *
 * Asymmetric variant, for an eventcount notified on a hot path (every
 * dispatch, every popped batch) and waited on rarely (a worker about to
 * park, a producer blocked on a full queue): nv__ec_notify_light pays
 * only a compiler barrier between the caller's store and its load of
 * `waiters`, and every waiter of that eventcount must prepare with
 * nv__ec_prepare_heavy, which puts a membarrier between its increment of
 * `waiters` and its check of the condition (lockfree/asym.h: either the
 * notifier's store came before the barrier the membarrier forced on it,
 * so the waiter's check sees it, or its load of `waiters` came after and
 * sees the increment). Plain nv__ec_notify stays correct on such an
 * eventcount (it is stronger).
 */
#ifndef NV_LOCKFREE_PARK_H
#define NV_LOCKFREE_PARK_H

#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lockfree/asym.h"
#include "lockfree/relax.h"

typedef struct nv_ec {
	uint32_t seq;     /* futex word, atomic */
	uint32_t waiters; /* atomic */
} nv_ec;

static inline uint32_t
nv__ec_prepare(nv_ec *ec)
{
	/* seq_cst RMW: pairs with the fence in nv__ec_notify. */
	__atomic_fetch_add(&ec->waiters, 1, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&ec->seq, __ATOMIC_SEQ_CST);
}

static inline void
nv__ec_cancel(nv_ec *ec)
{
	__atomic_fetch_sub(&ec->waiters, 1, __ATOMIC_RELAXED);
}

/* Sleeps until notified (or spuriously), or timeout_ms passes (< 0: no
 * timeout). Always undoes the prepare. */
static inline void
nv__ec_wait(nv_ec *ec, uint32_t key, int64_t timeout_ms)
{
	struct timespec ts, *tp = NULL;
	if (timeout_ms >= 0) {
		ts.tv_sec = (time_t)(timeout_ms / 1000);
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
		tp = &ts;
	}
	if (__atomic_load_n(&ec->seq, __ATOMIC_ACQUIRE) == key)
		syscall(SYS_futex, &ec->seq, FUTEX_WAIT_PRIVATE, key, tp,
			NULL, 0);
	__atomic_fetch_sub(&ec->waiters, 1, __ATOMIC_RELAXED);
}

/* Like nv__ec_wait with a timeout in microseconds. */
static inline void
nv__ec_wait_us(nv_ec *ec, uint32_t key, int64_t timeout_us)
{
	struct timespec ts;
	ts.tv_sec = (time_t)(timeout_us / 1000000);
	ts.tv_nsec = (long)(timeout_us % 1000000) * 1000L;
	if (__atomic_load_n(&ec->seq, __ATOMIC_ACQUIRE) == key)
		syscall(SYS_futex, &ec->seq, FUTEX_WAIT_PRIVATE, key, &ts,
			NULL, 0);
	__atomic_fetch_sub(&ec->waiters, 1, __ATOMIC_RELAXED);
}

/*
 * Loads `*p` so that every store the caller made before is ordered before
 * it against a seq_cst RMW of *p in another thread (the Dekker half of the
 * notifier). Normal builds: a seq_cst fence, then a plain load of a line
 * that stays shared. ThreadSanitizer builds (it does not model fences): a
 * seq_cst RMW of *p itself, equally correct in the C11 model (RMWs of one
 * variable are totally ordered and the RMW releases the caller's stores to
 * the waiter's acquiring RMW), but it writes the shared line.
 */
static inline uint32_t
nv__dekker_load(uint32_t *p)
{
#ifdef NUVOM_TSAN
	return __atomic_fetch_add(p, 0, __ATOMIC_SEQ_CST);
#elif defined(__x86_64__)
	/* A locked RMW of the stack top is a full barrier on x86 and costs
	 * about half an mfence (the idiom Linux uses for smp_mb()). */
	__asm__ __volatile__("lock; orq $0, (%%rsp)" ::: "memory", "cc");
	return __atomic_load_n(p, __ATOMIC_RELAXED);
#else
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(p, __ATOMIC_RELAXED);
#endif
}

/* Bumps the key and wakes up to n sleepers (a notifier that saw one). */
static inline void
nv__ec_wake(nv_ec *ec, int n)
{
	__atomic_fetch_add(&ec->seq, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &ec->seq, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* Wakes up to n sleepers (INT_MAX: all) if there are any. */
static inline void
nv__ec_notify(nv_ec *ec, int n)
{
	/* Pairs with the seq_cst increment in nv__ec_prepare (see top). */
	if (nv__dekker_load(&ec->waiters) != 0)
		nv__ec_wake(ec, n);
}

/*
 * The waiter's half of the asymmetric pair (see top). Returns the key;
 * *max_wait_ms is -1, or 1 when the membarrier could not be forced (never
 * expected): then a notifier may have missed this waiter, which must not
 * sleep longer than that before it re-checks.
 */
static inline uint32_t
nv__ec_prepare_heavy(nv_ec *ec, int64_t *max_wait_ms)
{
	uint32_t key = nv__ec_prepare(ec);
	*max_wait_ms = nv__asym_heavy() ? -1 : 1;
	return key;
}

/* The notifier's half of the asymmetric pair: wakes up to n sleepers of an
 * eventcount whose waiters all prepare with nv__ec_prepare_heavy. */
static inline void
nv__ec_notify_light(nv_ec *ec, int n)
{
	if (!nv__asym_ok) {
		nv__ec_notify(ec, n);
		return;
	}
	/* The caller's store (the condition) and the load below may be
	 * reordered by the CPU, not by the compiler: the waiter's
	 * membarrier orders them (see top). */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&ec->waiters, __ATOMIC_RELAXED) != 0)
		nv__ec_wake(ec, n);
}

#endif /* NV_LOCKFREE_PARK_H */
