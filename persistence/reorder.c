/*
 * reorder.c - the persister's reorder buffer (reorder.h).
 *
 * Invariant: every node held has a seq above the owner's `next` (the seq
 * it waits for) minus one, and distinct nodes have distinct seqs. So the
 * window, which holds only seqs in [next, next + WIN) at the time they were
 * put and keeps them until taken, never has two nodes in one slot: two
 * seqs that share a slot differ by WIN or more, and the lower one is taken
 * before `next` can pass it. A node put further ahead goes to the heap
 * and stays there (it is found by the heap's minimum) even once `next`
 * comes within the window: take looks at both. The heap keeps the seq
 * beside the pointer, so ordering never reads a node (they are cold: the
 * producers wrote them on other cores).
 */
#include "persistence/reorder.h"

#include "base/alloc.h"
#include "nuvom.h"

int
nv__ro_init(struct nv_reorder *ro)
{
	*ro = (struct nv_reorder){0};
	ro->win = nv__calloc(NV__RO_WIN, sizeof(*ro->win));
	return ro->win ? 0 : NV_ENOMEM;
}

void
nv__ro_free(struct nv_reorder *ro, void (*drop)(void *node))
{
	for (size_t i = 0; drop && ro->win && i < NV__RO_WIN; i++)
		if (ro->win[i])
			drop(ro->win[i]);
	for (size_t i = 0; drop && i < ro->heap_len; i++)
		drop(ro->heap[i].node);
	nv__free(ro->win);
	nv__free(ro->heap);
	*ro = (struct nv_reorder){0};
}

static bool
heap_push(struct nv_reorder *ro, struct nv_ro_ent e)
{
	size_t i;
	struct nv_ro_ent *h = nv__grow(ro->heap, &ro->heap_cap, ro->heap_len,
				       sizeof(*h), 1024);
	if (h == NULL)
		return false;
	ro->heap = h;
	for (i = ro->heap_len++; i > 0; i = (i - 1) / 2) {
		struct nv_ro_ent up = ro->heap[(i - 1) / 2];
		if (up.seq <= e.seq)
			break;
		ro->heap[i] = up;
	}
	ro->heap[i] = e;
	return true;
}

static void *
heap_pop(struct nv_reorder *ro)
{
	struct nv_ro_ent top = ro->heap[0], last = ro->heap[--ro->heap_len];
	size_t i = 0, n = ro->heap_len;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && ro->heap[c + 1].seq < ro->heap[c].seq)
			c++;
		if (last.seq <= ro->heap[c].seq)
			break;
		ro->heap[i] = ro->heap[c];
		i = c;
	}
	if (n > 0)
		ro->heap[i] = last;
	return top.node;
}

bool
nv__ro_put(struct nv_reorder *ro, uint64_t seq, uint64_t next, void *node)
{
	if (seq - next < NV__RO_WIN) {
		ro->win[seq & (NV__RO_WIN - 1)] = node;
		ro->win_len++;
		return true;
	}
	return heap_push(ro, (struct nv_ro_ent){seq, node});
}

void *
nv__ro_take(struct nv_reorder *ro, uint64_t next)
{
	void *x;
	if (ro->win_len > 0 && (x = ro->win[next & (NV__RO_WIN - 1)])) {
		ro->win[next & (NV__RO_WIN - 1)] = NULL;
		ro->win_len--;
		return x;
	}
	if (ro->heap_len > 0 && ro->heap[0].seq <= next)
		return heap_pop(ro);
	return NULL;
}
