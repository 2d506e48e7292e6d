/*
 * ring.c - bounded MPMC ring of pointers (nuvom/ring.h).
 *
 * Design. Each slot carries a sequence number next to its item, in the
 * manner of the per-slot-sequence queues (Vyukov's bounded MPMC queue): the
 * slot for position p is free for the producer of p when seq == p, and full
 * for the consumer of p when seq == p + 1; the consumer hands it to the
 * producer of the next lap by storing seq = p + capacity. Positions are
 * 64-bit and never wrap in practice, so there is no ABA on them.
 *
 * Two indices, tail (next position to push) and head (next to pop), each on
 * its own cache line. A single push or pop claims its position with one CAS
 * on the index; a bulk call claims k positions with one CAS after checking
 * that the k slots are ready, so a batch costs one contended atomic instead
 * of k. Nobody ever waits for another thread: a push that meets a slot
 * still held by a slow consumer reports full, a pop that meets a slot whose
 * producer was preempted mid-push reports empty. Other threads keep working
 * on other slots, unlike rings that publish a shared tail in order (where
 * one preempted producer stalls every producer behind it).
 *
 * Differences from the textbook queue:
 *  - bulk operations scan ready slots with plain acquire loads and claim
 *    them with one CAS;
 *  - a thread that loses a claim CAS backs off briefly (1..16 pauses)
 *    before retrying at the position it observed, so the winner keeps the
 *    index line;
 *  - each index is alone on its cache line and the slot pointer and mask
 *    sit on a read-only line (a copy next to a contended index was
 *    measured slower). Mapping neighbouring positions to different lines
 *    was tried and cost throughput at 1P/1C, so slots are in order.
 *
 * Memory ordering (see each atomic below):
 *  - producer: store item (plain), then store-release seq = p + 1;
 *  - consumer: load-acquire seq == p + 1 (pairs with that release), claim,
 *    read item, then store-release seq = p + cap;
 *  - producer of the next lap: load-acquire seq == p + cap (pairs with the
 *    consumer's release, so the consumer's read of the item happened before
 *    the producer overwrites it).
 *  The CAS on head/tail is relaxed: it only arbitrates ownership of a
 *  position; the data hand-off is ordered by the slot's seq.
 */
#include "nuvom/ring.h"
#include "lockfree/ring_int.h"

#include <stdint.h>

#include "base/alloc.h"
#include "nuvom/error.h"

#define NV_CACHELINE 64
#define NV_RING_MAX ((size_t)1 << 30)

/* Exponential pause after a lost CAS (1, 2, 4 .. 16 pauses). */
static inline void
backoff(unsigned *spins)
{
	for (unsigned i = 0; i < *spins; i++) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	}
	if (*spins < 16)
		*spins <<= 1;
}

struct nv_slot {
	uint64_t seq; /* atomic */
	void *item;
};

struct nv_ring {
	/* Read-only after create: shared clean by every thread. */
	struct nv_slot *slots __attribute__((aligned(NV_CACHELINE)));
	uint64_t mask;
	size_t cap;
	/* Producers' index, alone on its line (only CASed). */
	uint64_t tail __attribute__((aligned(NV_CACHELINE))); /* atomic */
	/* Consumers' index, alone on its line. */
	uint64_t head __attribute__((aligned(NV_CACHELINE))); /* atomic */
	char pad_[NV_CACHELINE - sizeof(uint64_t)];
};

/*
 * A slot stores its sequence number minus its own index (the "lap
 * base"), so a fresh ring is all zeroes: its pages come from the
 * allocator untouched and cost no memory until a lap first reaches them
 * (a ring sized for a burst, or a recycle ring, that is never filled
 * stays virtual). The logical sequence of slot i is stored + i; helpers
 * below convert, nothing else changes.
 */
static inline uint64_t
seq_load(struct nv_slot *s, uint64_t idx)
{
	return __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) + idx;
}

static inline void
seq_store(struct nv_slot *s, uint64_t idx, uint64_t seq)
{
	__atomic_store_n(&s->seq, seq - idx, __ATOMIC_RELEASE);
}

int
nv_ring_create(nv_ring **out, size_t capacity)
{
	nv_ring *r;
	size_t cap = 2;

	if (out == NULL || capacity == 0 || capacity > NV_RING_MAX)
		return NV_EINVAL;
	while (cap < capacity)
		cap <<= 1;
	r = nv__aligned_alloc(NV_CACHELINE, sizeof(*r));
	if (r == NULL)
		return NV_ENOMEM;
	r->slots =
	    nv__aligned_alloc(NV_CACHELINE, cap * sizeof(struct nv_slot));
	if (r->slots == NULL) {
		nv__aligned_free(r);
		return NV_ENOMEM;
	}
	r->cap = cap;
	r->mask = cap - 1;
	/* Zeroed by the allocator: every slot at lap base 0 (free for the
	 * producer of position i). */
	r->head = r->tail = 0;
	/* Publication of the ring to other threads is the caller's job (it
	 * passes the pointer through something that orders it). */
	*out = r;
	return 0;
}

void
nv_ring_destroy(nv_ring *r)
{
	if (r == NULL)
		return;
	nv__aligned_free(r->slots);
	nv__aligned_free(r);
}

bool
nv_ring_try_push(nv_ring *r, void *item)
{
	struct nv_slot *slots = r->slots;
	uint64_t mask = r->mask;
	uint64_t pos = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
	unsigned spins = 1;

	for (;;) {
		struct nv_slot *s = &slots[pos & mask];
		/* Acquire pairs with the consumer's release of seq = pos
		 * (previous lap): its read of the old item is done. */
		uint64_t seq = seq_load(s, pos & mask);
		int64_t dif = (int64_t)(seq - pos);
		if (dif == 0) {
			/* Relaxed: the CAS only decides who owns pos. */
			if (__atomic_compare_exchange_n(&r->tail, &pos, pos + 1,
							true, __ATOMIC_RELAXED,
							__ATOMIC_RELAXED)) {
				s->item = item;
				/* Release: the item store above is visible
				 * to whoever acquires seq == pos + 1. */
				seq_store(s, pos & mask, pos + 1);
				return true;
			}
			/* pos now holds the tail another producer left;
			 * back off a little so the winner's line is not
			 * stolen back at once (contention backoff). */
			backoff(&spins);
		} else if (dif < 0) {
			return false; /* a lap behind: full */
		} else {
			pos = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
		}
	}
}

bool
nv_ring_try_pop(nv_ring *r, void **item)
{
	struct nv_slot *slots = r->slots;
	uint64_t mask = r->mask;
	uint64_t pos = __atomic_load_n(&r->head, __ATOMIC_RELAXED);
	unsigned spins = 1;

	for (;;) {
		struct nv_slot *s = &slots[pos & mask];
		/* Acquire pairs with the producer's release of seq = pos+1. */
		uint64_t seq = seq_load(s, pos & mask);
		int64_t dif = (int64_t)(seq - (pos + 1));
		if (dif == 0) {
			if (__atomic_compare_exchange_n(&r->head, &pos, pos + 1,
							true, __ATOMIC_RELAXED,
							__ATOMIC_RELAXED)) {
				*item = s->item;
				/* Release: our read of the item happens
				 * before the next lap's producer reuses it. */
				seq_store(s, pos & mask, pos + mask + 1);
				return true;
			}
			backoff(&spins);
		} else if (dif < 0) {
			return false; /* not yet published: empty */
		} else {
			pos = __atomic_load_n(&r->head, __ATOMIC_RELAXED);
		}
	}
}

/*
 * Claims up to n consecutive positions from *index whose slots are ready,
 * i.e. have seq == position + off (off 0: free for a producer; off 1:
 * published for a consumer). Acquire loads pair with the release stores
 * of the other side; one CAS claims the whole run (relaxed: it only
 * decides ownership). A slot not ready at the first position means full
 * (producers) or empty (consumers) unless the index moved meanwhile.
 * With share > 1 only ready / share + 1 of the ready slots seen are
 * claimed (a consumer leaving work for others without reading the
 * producers' index line). Returns the count (0: full/empty) and the first
 * position in *first.
 */
static size_t
claim_run(uint64_t *index, struct nv_slot *slots, uint64_t mask, size_t n,
	  uint64_t off, size_t share, uint64_t *first)
{
	uint64_t pos = __atomic_load_n(index, __ATOMIC_RELAXED);
	size_t k;

	if (n > mask + 1)
		n = mask + 1;
	for (;;) {
		for (k = 0; k < n; k++) {
			uint64_t p = pos + k;
			uint64_t seq = seq_load(&slots[p & mask], p & mask);
			if (seq != p + off)
				break;
		}
		if (k == 0) {
			uint64_t seq = seq_load(&slots[pos & mask], pos & mask);
			if ((int64_t)(seq - (pos + off)) < 0)
				return 0;
			pos = __atomic_load_n(index, __ATOMIC_RELAXED);
			continue;
		}
		if (share > 1 && k / share + 1 < k)
			k = k / share + 1;
		if (__atomic_compare_exchange_n(index, &pos, pos + k, true,
						__ATOMIC_RELAXED,
						__ATOMIC_RELAXED)) {
			*first = pos;
			return k;
		}
	}
}

size_t
nv_ring_push_bulk(nv_ring *r, void *const *items, size_t n)
{
	struct nv_slot *slots = r->slots;
	uint64_t mask = r->mask, pos = 0;
	size_t k = n ? claim_run(&r->tail, slots, mask, n, 0, 1, &pos) : 0;

	for (size_t i = 0; i < k; i++) {
		struct nv_slot *s = &slots[(pos + i) & mask];
		s->item = items[i];
		/* Release per slot: consumers may take them one by one. */
		seq_store(s, (pos + i) & mask, pos + i + 1);
	}
	return k;
}

size_t
nv__ring_pop_share(nv_ring *r, void **items, size_t n, size_t share)
{
	struct nv_slot *slots = r->slots;
	uint64_t mask = r->mask, pos = 0;
	size_t k = n ? claim_run(&r->head, slots, mask, n, 1, share, &pos) : 0;

	for (size_t i = 0; i < k; i++) {
		struct nv_slot *s = &slots[(pos + i) & mask];
		items[i] = s->item;
		/* Release: the read above happens before the next lap's
		 * producer reuses the slot. */
		seq_store(s, (pos + i) & mask, pos + i + mask + 1);
	}
	return k;
}

size_t
nv_ring_pop_bulk(nv_ring *r, void **items, size_t n)
{
	return nv__ring_pop_share(r, items, n, 1);
}

size_t
nv_ring_size(const nv_ring *r)
{
	/* Read head first: tail only grows, so tail - head >= the true size
	 * at the moment head was read; clamp to [0, cap]. */
	uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	uint64_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	int64_t n = (int64_t)(tail - head);
	if (n < 0)
		return 0;
	if ((uint64_t)n > r->cap)
		return r->cap;
	return (size_t)n;
}

size_t
nv_ring_capacity(const nv_ring *r)
{
	return r->cap;
}
