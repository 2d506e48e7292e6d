/*
 * ring.c - bounded MPMC ring of pointers (nuvom/ring.h).
 *
 * Design. Each slot carries a sequence number next to its item: the
 * producer of position p stores the item and then seq = p + 1, which
 * publishes it to the consumer of p. Positions are 64-bit and never wrap
 * in practice, so there is no ABA on them.
 *
 * Two indices, tail (next position to push) and head (next to pop), each
 * on its own cache line. What differs from the textbook per-slot-sequence
 * queue (Vyukov's bounded MPMC queue, our bench baseline) is how a slot
 * goes back to the producers:
 *
 *  - A consumer reads the item *before* it claims the position: it sees
 *    seq == p + 1, loads the item, then CASes head from p to p + 1. The
 *    successful CAS is the whole pop: nobody else can have taken p (head
 *    never goes back), so the slot held p's item when it was read. The
 *    consumer never writes to the slot, and a consumer preempted anywhere
 *    in a pop holds nothing.
 *  - A producer of position q may write the slot of q when head > q - cap,
 *    i.e. once position q - cap was popped, whose item was read before that
 *    pop's CAS. Producers test this against a copy of head kept on their
 *    own line (head_cache) and read the consumers' line only when the copy
 *    says full, as single-producer rings do with a cached index.
 *
 * So the slot lines travel one way, producer to consumer, instead of back
 * and forth (the textbook consumer stores seq = p + cap, which the next
 * lap's producer must fetch before it can write). A push writes a slot it
 * never read; a pop reads a slot it never writes.
 *
 * Bulk operations claim k positions with one CAS: a bulk pop loads the k
 * published items first, a bulk push checks room for k against head.
 * A thread that loses a claim CAS backs off briefly (1..16 pauses) so the
 * winner keeps the index line.
 *
 * Run-ahead: because a slot line now has one writer side and one reader
 * side, each side can ask for its lines before it needs them without
 * stealing a line the other side is using: a producer write-prefetches the
 * line NV_RING_AHEAD positions on (slots the consumers are done with), a
 * bulk pop that found a full batch read-prefetches the next two batches'
 * lines (slots the producers already filled). Both queues pay about one
 * line transfer per 4 items; ours does not wait for it.
 *
 * Owner bias (lockfree/bias.h): each side starts biased to the first
 * thread that claims on it, which then claims with a plain load and store
 * of its index instead of a locked CAS (the locked instruction, with the
 * store-buffer drain it forces, was most of a single op's cost). The
 * first claim by a second thread on that side revokes the bias for good
 * (an asymmetric handshake: membarrier on the revoker, two plain stores
 * per claim on the owner). A one-producer or one-consumer side, common in
 * practice (a dispatcher thread, a single worker), never pays an atomic
 * read-modify-write; shared sides run exactly the CAS protocol above.
 * While the consumers' side is biased its owner keeps its position in
 * cpos, on its own line, and only stores head: a producer polling head
 * on a full ring then delays the owner's store, never its loads.
 *
 * Memory ordering (see each atomic below):
 *  - producer: store item (relaxed), store-release seq = q + 1;
 *  - consumer: load-acquire seq == p + 1 (pairs with that release, so the
 *    item load sees the item), load item (relaxed: it may race with the
 *    next lap's producer, in which case the CAS below fails), then CAS
 *    head p -> p + 1 with release, which orders the item load before it;
 *  - producer of q = p + cap: load-acquire head (or head_cache, published
 *    with release by the producer that loaded head with acquire) > p. The
 *    CASes on head continue the release sequence of the pop of p, so the
 *    consumer's item load happens-before the producer's overwrite.
 *  The CAS on tail is relaxed: it only arbitrates ownership of a position.
 *  A biased owner's plain index store takes the place of its CAS: head is
 *  stored with release (as the pop's CAS), tail relaxed (as the push's);
 *  bias.h orders a revoker's first CAS after the owner's last store.
 */
#include "nuvom/ring.h"
#include "lockfree/ring_int.h"

#include <stdint.h>

#include "base/alloc.h"
#include "lockfree/bias.h"
#include "lockfree/relax.h"
#include "nuvom/error.h"

#define NV_CACHELINE 64
#define NV_RING_MAX ((size_t)1 << 30)
/* How far ahead of its position a producer asks for its slots' lines
 * (positions; 32 lines of 4 slots). Measured at 1P/1C on the 2-core
 * machine: 64-256 all help, 128 best (bench/README.md). */
#define NV_RING_AHEAD 128
#define NV_SLOTS_PER_LINE (NV_CACHELINE / 16)

/* Exponential pause after a lost CAS (1, 2, 4 .. 16 pauses). */
static inline void
backoff(unsigned *spins)
{
	for (unsigned i = 0; i < *spins; i++)
		nv__cpu_relax();
	if (*spins < 16)
		*spins <<= 1;
}

struct nv_slot {
	uint64_t seq; /* atomic */
	void *item;   /* atomic (relaxed) */
};

struct nv_ring {
	/* Read-only after create: shared clean by every thread. */
	struct nv_slot *slots __attribute__((aligned(NV_CACHELINE)));
	uint64_t mask;
	size_t cap;
	uint64_t ahead; /* prefetch distance in positions (0: none) */
	/* Producers' line: their index, their copy of head, their bias. */
	uint64_t tail __attribute__((aligned(NV_CACHELINE))); /* atomic */
	uint64_t head_cache;                                  /* atomic */
	struct nv_bias pbias;
	/* Consumers' index, alone on its line: producers read it when
	 * their copy says full. */
	uint64_t head __attribute__((aligned(NV_CACHELINE))); /* atomic */
	/* The consumers' bias and the sole consumer's own copy of head, on
	 * a line producers never read: a producer polling head while the
	 * ring is full does not make the sole consumer miss on its loads. */
	struct nv_bias cbias __attribute__((aligned(NV_CACHELINE)));
	uint64_t cpos; /* = head while the consumer side is biased */
	char pad_[NV_CACHELINE - sizeof(uint64_t) - sizeof(struct nv_bias)];
};

/*
 * A slot stores its sequence number minus its own index, so a fresh ring
 * is all zeroes (logical seq i at slot i: published for nobody, since the
 * consumer of i waits for i + 1). Its pages come from the allocator
 * untouched and cost no memory until a lap first reaches them.
 */
static inline uint64_t
seq_load(struct nv_slot *s, uint64_t idx)
{
	return __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) + idx;
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
	r->head = r->tail = r->head_cache = r->cpos = 0;
	nv__bias_init(&r->pbias);
	nv__bias_init(&r->cbias);
	/* Rings too small for a run-ahead of a few lines do without. */
	r->ahead = cap >= 64 ? (cap / 4 < NV_RING_AHEAD ? cap / 4 : NV_RING_AHEAD)
			     : 0;
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

/*
 * Free slots at position pos for a producer, at most want: first against
 * head_cache, then, when that is short, against head itself (which is then
 * copied to head_cache). pos may be stale (behind tail); then the room is
 * overstated and the caller's CAS fails. Returns 0 when full.
 */
static inline uint64_t
room_at(nv_ring *r, uint64_t pos, uint64_t want)
{
	/* Acquire pairs with the release store below by another producer
	 * (which loaded head with acquire): see the header comment. */
	uint64_t h = __atomic_load_n(&r->head_cache, __ATOMIC_ACQUIRE);
	int64_t used = (int64_t)(pos - h);

	if (used >= 0 && (uint64_t)used + want <= r->cap)
		return want;
	/* Acquire pairs with the consumers' release CAS on head. The copy
	 * is rewritten only when it moves forward (no store to the
	 * producers' line while they poll a full ring). */
	uint64_t hc = h;
	h = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	if ((int64_t)(h - hc) > 0)
		__atomic_store_n(&r->head_cache, h, __ATOMIC_RELEASE);
	used = (int64_t)(pos - h);
	if (used < 0)
		return want; /* pos is stale: the CAS will fail */
	if ((uint64_t)used >= r->cap)
		return 0;
	return r->cap - (uint64_t)used < want ? r->cap - (uint64_t)used : want;
}

/* The first position at or after p whose slot starts a cache line (the
 * slot array is line-aligned). */
static inline uint64_t
line_start_from(uint64_t p)
{
	return (p + NV_SLOTS_PER_LINE - 1) & ~(uint64_t)(NV_SLOTS_PER_LINE - 1);
}

/*
 * The contiguous piece of the slot array that positions pos.. occupy, at
 * most left of them (a run of positions is one piece, or two around the
 * wrap). Returns the piece's length; *stored is the stored sequence of a
 * published slot anywhere in it (position + 1 - index is constant within
 * a piece, see seq_load).
 */
static inline uint64_t
piece_at(const nv_ring *r, uint64_t pos, uint64_t left, uint64_t *stored)
{
	uint64_t idx = pos & r->mask;

	*stored = pos + 1 - idx;
	return r->cap - idx < left ? r->cap - idx : left;
}

/* A hint that this thread will soon write the line at p (read for
 * ownership now, not when the store needs it). No semantic effect. */
static inline void
prefetch_write(const void *p)
{
#if defined(__PRFCHW__) || !(defined(__x86_64__) || defined(__i386__))
	__builtin_prefetch(p, 1, 3);
#else
	/* prefetchw without -mprfchw; executes as a NOP on x86 CPUs that
	 * predate it. */
	__asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
#endif
}

/*
 * Run-ahead ownership. A producer that is about to start a new slot line
 * asks for the line `ahead` positions further on with a write prefetch.
 * Those slots belong to positions a lap back that the consumers are done
 * with (checked against head_cache: never a line a consumer may still be
 * reading, which would only move it back and forth), so the line's
 * transfer overlaps the pushes in between instead of stalling the next
 * locked CAS on a store that waits for it.
 */
static inline void
run_ahead(nv_ring *r, uint64_t first, uint64_t k)
{
	uint64_t h = __atomic_load_n(&r->head_cache, __ATOMIC_RELAXED);

	for (uint64_t p = line_start_from(first); p < first + k;
	     p += NV_SLOTS_PER_LINE) {
		uint64_t a = p + r->ahead;
		if (a - h < r->cap)
			prefetch_write(&r->slots[a & r->mask]);
	}
}

/* Stores items[0..k) at positions first.. and publishes each, piece by
 * piece (piece_at). */
static inline void
fill(nv_ring *r, uint64_t first, void *const *items, uint64_t k)
{
	if (r->ahead)
		run_ahead(r, first, k);
	while (k) {
		uint64_t stored, len = piece_at(r, first, k, &stored);
		struct nv_slot *s = &r->slots[first & r->mask];
		for (uint64_t i = 0; i < len; i++) {
			/* Relaxed: a consumer of the previous lap may still
			 * load the old item speculatively; its claim then
			 * fails. */
			__atomic_store_n(&s[i].item, items[i],
					 __ATOMIC_RELAXED);
			/* Release: the item is visible to whoever acquires
			 * this seq. One per slot, so consumers may take
			 * them one by one. */
			__atomic_store_n(&s[i].seq, stored, __ATOMIC_RELEASE);
		}
		first += len;
		items += len;
		k -= len;
	}
}

/*
 * Loads the items of the published positions pos, pos + 1, .. (at most
 * n) into items[]; stops at the first slot not published for its
 * position. Returns how many. Walks pieces (piece_at) as fill does.
 */
static inline size_t
scan_published(const nv_ring *r, uint64_t pos, void **items, size_t n)
{
	size_t k = 0;

	while (k < n) {
		uint64_t stored, len = piece_at(r, pos + k, n - k, &stored);
		struct nv_slot *s = &r->slots[(pos + k) & r->mask];
		for (uint64_t i = 0; i < len; i++) {
			/* Acquire pairs with the producer's release of this
			 * seq: the item load below sees its item. */
			if (__atomic_load_n(&s[i].seq, __ATOMIC_ACQUIRE) !=
			    stored)
				return k + i;
			items[k + i] =
			    __atomic_load_n(&s[i].item, __ATOMIC_RELAXED);
		}
		k += len;
	}
	return k;
}

/* Claims up to n positions for a push; returns the count (0: full). */
static inline uint64_t
claim_push(nv_ring *r, uint64_t n, uint64_t *first)
{
	uint64_t pos;
	unsigned spins = 1;

	if (n > r->cap)
		n = r->cap;
	switch (nv__bias_enter(&r->pbias)) {
	case NV_BIAS_NESTED:
		return 0; /* a signal handler inside our own claim: full */
	case NV_BIAS_SOLE: {
		/* Sole producer: tail is ours, no CAS. */
		pos = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
		uint64_t k = room_at(r, pos, n);
		if (k)
			__atomic_store_n(&r->tail, pos + k, __ATOMIC_RELAXED);
		nv__bias_exit(&r->pbias);
		*first = pos;
		return k;
	}
	default:
		break; /* shared side: CAS below */
	}
	pos = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
	for (;;) {
		uint64_t k = room_at(r, pos, n);
		if (k == 0) {
			uint64_t t = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
			if (t == pos)
				return 0; /* full at the current tail */
			pos = t;
			continue;
		}
		/* Relaxed: the CAS only decides who owns [pos, pos + k). */
		if (__atomic_compare_exchange_n(&r->tail, &pos, pos + k, true,
						__ATOMIC_RELAXED,
						__ATOMIC_RELAXED)) {
			*first = pos;
			return k;
		}
		/* pos now holds the tail another producer left; back off so
		 * the winner's line is not stolen back at once. */
		backoff(&spins);
	}
}

bool
nv_ring_try_push(nv_ring *r, void *item)
{
	uint64_t pos;

	if (claim_push(r, 1, &pos) == 0)
		return false;
	fill(r, pos, &item, 1);
	return true;
}

size_t
nv_ring_push_bulk(nv_ring *r, void *const *items, size_t n)
{
	uint64_t pos, k = n ? claim_push(r, n, &pos) : 0;

	if (k)
		fill(r, pos, items, k);
	return (size_t)k;
}

/*
 * The consumers' side of run-ahead: a bulk pop that found a full batch
 * ready (a backlog, the producers are ahead) asks for the lines of the
 * batch after next, so their transfers from the producers' caches overlap
 * the batches in between instead of each batch waiting for its lines.
 * Not done for single pops or partial batches: there the consumer is near
 * the producers and a read of a line still being written would only move
 * it back and forth.
 */
static inline void
read_ahead(const nv_ring *r, uint64_t from, uint64_t k)
{
	for (uint64_t p = line_start_from(from); p < from + k;
	     p += NV_SLOTS_PER_LINE)
		__builtin_prefetch(&r->slots[p & r->mask], 0, 3);
}

/*
 * Pops up to n published items from head: loads them into items[], then
 * claims them with one CAS (release: the loads happen before any producer
 * that sees the new head overwrites the slots). With share > 1 only
 * ready / share + 1 of the ready items seen are taken.
 */
size_t
nv__ring_pop_share(nv_ring *r, void **items, size_t n, size_t share)
{
	struct nv_slot *slots = r->slots;
	uint64_t mask = r->mask, pos;
	unsigned spins = 1;
	size_t k;
	int mode;
	bool sole;

	if (n == 0)
		return 0;
	if (n > mask + 1)
		n = mask + 1;
	/* Sole consumer (bias.h): head is ours, pos is never stale and the
	 * claim is a release store instead of a CAS. */
	mode = nv__bias_enter(&r->cbias);
	if (mode == NV_BIAS_NESTED)
		return 0; /* a signal handler inside our own claim: empty */
	sole = mode == NV_BIAS_SOLE;
	pos = sole ? r->cpos : __atomic_load_n(&r->head, __ATOMIC_RELAXED);
	for (;;) {
		k = scan_published(r, pos, items, n);
		if (k == 0 && sole) {
			nv__bias_exit(&r->cbias);
			return 0; /* head is ours, so pos is current: empty */
		}
		if (k == 0) {
			uint64_t seq = seq_load(&slots[pos & mask], pos & mask);
			if ((int64_t)(seq - (pos + 1)) < 0)
				return 0; /* not published yet: empty */
			/* A later lap: pos is stale. */
			pos = __atomic_load_n(&r->head, __ATOMIC_RELAXED);
			continue;
		}
		if (k == n && n >= NV_SLOTS_PER_LINE * 2)
			read_ahead(r, pos + 2 * k, 2 * k);
		if (share > 1 && k / share + 1 < k)
			k = k / share + 1;
		if (sole) {
			/* cpos: only the owner touches it (bias.h orders a
			 * revoker after our last claim). Release on head: as
			 * the CAS below. */
			r->cpos = pos + k;
			__atomic_store_n(&r->head, pos + k, __ATOMIC_RELEASE);
			nv__bias_exit(&r->cbias);
			return k;
		}
		/* Release on success: the item loads above happen before a
		 * producer that acquires head > pos reuses the slots. */
		if (__atomic_compare_exchange_n(&r->head, &pos, pos + k, true,
						__ATOMIC_RELEASE,
						__ATOMIC_RELAXED))
			return k;
		backoff(&spins);
	}
}

bool
nv_ring_try_pop(nv_ring *r, void **item)
{
	return nv__ring_pop_share(r, item, 1, 1) == 1;
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
