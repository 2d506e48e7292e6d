/*
 * coalesce.c - STARTED coalescing within one write batch (coalesce.h has
 * the rule and why it keeps every guarantee).
 *
 * One pass in seq order over the batch with a small table id -> index of
 * the job's pending STARTED in the batch. A STARTED sets it; an ENQUEUED
 * clears it (a re-enqueued job starts afresh, so an outcome after it says
 * nothing about a STARTED before it); an outcome whose attempt is at least
 * the pending STARTED's marks that STARTED dropped (type 0) and clears the
 * pending index. A second pass closes the gaps. The table is sized to at
 * least twice the largest batch, so probes stay short and never wrap the
 * whole table; slots carry the batch's generation, so it is cleared only
 * when the generation counter wraps.
 *
 * Threads: the persister thread only.
 */
#include "persistence/coalesce.h"

#include <string.h>

#include "base/alloc.h"
#include "nuvom.h"

struct nv_cslot {
	uint64_t id;
	uint32_t gen; /* the batch that wrote it; other values = empty */
	uint32_t idx; /* pending STARTED's index in the batch, or CNONE */
};
#define CNONE UINT32_MAX

int
nv__coalesce_init(struct nv_coalesce *c, uint32_t max_batch)
{
	memset(c, 0, sizeof(*c));
	for (c->cap = 64; c->cap < 2 * max_batch; c->cap *= 2)
		;
	c->max_batch = max_batch;
	c->tab = nv__calloc(c->cap, sizeof(*c->tab));
	return c->tab ? 0 : NV_ENOMEM;
}

void
nv__coalesce_free(struct nv_coalesce *c)
{
	nv__free(c->tab);
	c->tab = NULL;
}

/* The slot of id in this batch (claimed, with no pending STARTED, when
 * new). */
static struct nv_cslot *
slot(struct nv_coalesce *c, uint64_t id)
{
	uint32_t mask = c->cap - 1;
	size_t h = (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & mask;

	for (;; h = (h + 1) & mask) {
		struct nv_cslot *s = &c->tab[h];
		if (s->gen != c->gen) {
			s->gen = c->gen;
			s->id = id;
			s->idx = CNONE;
			return s;
		}
		if (s->id == id)
			return s;
	}
}

size_t
nv__coalesce(struct nv_coalesce *c, nv_rec *b, size_t n)
{
	size_t kept = 0, dropped = 0;

	if (n < 2 || n > c->max_batch)
		return n;
	if (++c->gen == 0) { /* wrapped: old stamps could match again */
		memset(c->tab, 0, (size_t)c->cap * sizeof(*c->tab));
		c->gen = 1;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t t = b[i].type;
		struct nv_cslot *s;
		if (t < NV_REC_JOB_ENQUEUED || t > NV_REC_JOB_RETRY)
			continue;
		s = slot(c, b[i].id);
		if (t == NV_REC_JOB_STARTED) {
			s->idx = (uint32_t)i;
		} else if (t == NV_REC_JOB_ENQUEUED) {
			s->idx = CNONE;
		} else if (s->idx != CNONE) { /* an outcome */
			if (b[s->idx].attempt <= b[i].attempt) {
				b[s->idx].type = 0; /* left out */
				dropped++;
			}
			s->idx = CNONE;
		}
	}
	if (dropped == 0)
		return n;
	for (size_t i = 0; i < n; i++)
		if (b[i].type != 0)
			b[kept++] = b[i];
	return kept;
}
