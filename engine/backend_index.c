/*
 * backend_index.c - the job index behind the memory and store-backed
 * result backends: id -> packed nv_job_info.
 *
 * A chained hash (power-of-two buckets, doubled at load 1) of entries,
 * each holding one nv_job_info_dup allocation that is replaced whole on
 * every update, so a reader copies one consistent record. Finished entries
 * also sit on a FIFO in the order they first became final; once more than
 * `retain` are finished, the oldest are unlinked and freed. Unfinished
 * entries (a store-backed index knows pending and running jobs) are never
 * evicted: they leave when they finish and age out.
 *
 * Not thread-safe: every caller holds its instance's mutex.
 */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/backend_int.h"

struct nv__jent {
	struct nv__jent *next;	/* hash chain */
	struct nv__jent *fnext; /* finished FIFO */
	bool listed;		/* on the finished FIFO */
	nv_job_info *info;
};

static size_t
slot(const nv__jidx *x, nv_job_id id)
{
	id ^= id >> 31;
	id *= 0x9e3779b97f4a7c15ULL;
	return (size_t)(id >> 17) & (x->nb - 1);
}

int
nv__jidx_init(nv__jidx *x, size_t retain)
{
	memset(x, 0, sizeof(*x));
	x->nb = 64;
	x->retain = retain;
	x->b = nv__calloc(x->nb, sizeof(*x->b));
	return x->b ? 0 : NV_ENOMEM;
}

void
nv__jidx_fini(nv__jidx *x)
{
	for (size_t i = 0; x->b && i < x->nb; i++) {
		struct nv__jent *e = x->b[i];
		while (e) {
			struct nv__jent *n = e->next;
			nv__free(e->info);
			nv__free(e);
			e = n;
		}
	}
	nv__free(x->b);
	memset(x, 0, sizeof(*x));
}

static struct nv__jent *
find(nv__jidx *x, nv_job_id id)
{
	for (struct nv__jent *e = x->b[slot(x, id)]; e; e = e->next)
		if (e->info->id == id)
			return e;
	return NULL;
}

const nv_job_info *
nv__jidx_get(nv__jidx *x, nv_job_id id)
{
	struct nv__jent *e = find(x, id);
	return e ? e->info : NULL;
}

static void
grow(nv__jidx *x)
{
	size_t nb = x->nb * 2;
	struct nv__jent **b = nv__calloc(nb, sizeof(*b));
	if (b == NULL)
		return; /* longer chains, still correct */
	struct nv__jent **old = x->b;
	size_t onb = x->nb;
	x->b = b;
	x->nb = nb;
	for (size_t i = 0; i < onb; i++) {
		struct nv__jent *e = old[i];
		while (e) {
			struct nv__jent *n = e->next;
			size_t k = slot(x, e->info->id);
			e->next = b[k];
			b[k] = e;
			e = n;
		}
	}
	nv__free(old);
}

static void
unlink_free(nv__jidx *x, struct nv__jent *victim)
{
	struct nv__jent **pp = &x->b[slot(x, victim->info->id)];
	while (*pp != victim)
		pp = &(*pp)->next;
	*pp = victim->next;
	x->n--;
	nv__free(victim->info);
	nv__free(victim);
}

static void
evict(nv__jidx *x)
{
	while (x->retain && x->nfin > x->retain) {
		struct nv__jent *v = x->fhead;
		x->fhead = v->fnext;
		if (x->fhead == NULL)
			x->ftail = NULL;
		x->nfin--;
		unlink_free(x, v);
	}
}

int
nv__jidx_put(nv__jidx *x, const nv_job_info *src)
{
	nv_job_info *info = nv_job_info_dup(src);
	struct nv__jent *e;
	if (info == NULL)
		return NV_ENOMEM;
	if ((e = find(x, src->id)) == NULL) {
		if ((e = nv__calloc(1, sizeof(*e))) == NULL) {
			nv__free(info);
			return NV_ENOMEM;
		}
		e->info = info;
		size_t k = slot(x, src->id);
		e->next = x->b[k];
		x->b[k] = e;
		if (++x->n > x->nb)
			grow(x);
	} else {
		nv__free(e->info);
		e->info = info;
	}
	if (!e->listed &&
	    (info->status == NV_SUCCESS || info->status == NV_FAILED)) {
		e->listed = true;
		if (x->ftail)
			x->ftail->fnext = e;
		else
			x->fhead = e;
		x->ftail = e;
		x->nfin++;
		evict(x);
	}
	return 0;
}

int
nv__jidx_result(nv__jidx *x, nv_job_id id, void **buf, size_t *len)
{
	const nv_job_info *i = nv__jidx_get(x, id);
	if (i == NULL)
		return NV_ENOENT;
	if (i->status != NV_SUCCESS || i->result == NULL)
		return NV_ENORESULT;
	/* One byte more: a zero-length result is still a buffer. */
	if ((*buf = nv__malloc(i->result_len + 1)) == NULL)
		return NV_ENOMEM;
	memcpy(*buf, i->result, i->result_len);
	*len = i->result_len;
	return 0;
}

int
nv__jidx_error(nv__jidx *x, nv_job_id id, char **msg)
{
	const nv_job_info *i = nv__jidx_get(x, id);
	if (i == NULL)
		return NV_ENOENT;
	if (i->status != NV_FAILED || i->error == NULL)
		return NV_ENORESULT;
	return (*msg = nv__strdup(i->error)) ? 0 : NV_ENOMEM;
}

int
nv__jidx_full(nv__jidx *x, nv_job_id id, nv_job_info **out)
{
	const nv_job_info *i = nv__jidx_get(x, id);
	if (i == NULL)
		return NV_ENOENT;
	return (*out = nv_job_info_dup(i)) ? 0 : NV_ENOMEM;
}

static int
newest_first(const void *a, const void *b)
{
	const nv_job_info *x = *(nv_job_info *const *)a;
	const nv_job_info *y = *(nv_job_info *const *)b;
	if (x->created_ms != y->created_ms)
		return x->created_ms < y->created_ms ? 1 : -1;
	return (x->id < y->id) - (x->id > y->id);
}

int
nv__jidx_list(nv__jidx *x, const nv_job_filter *f, nv_job_info ***out,
	      size_t *n)
{
	const nv_job_info **all;
	size_t k = 0;
	if (x->n == 0)
		return 0;
	if ((all = nv__malloc(x->n * sizeof(*all))) == NULL)
		return NV_ENOMEM;
	for (size_t i = 0; i < x->nb; i++)
		for (struct nv__jent *e = x->b[i]; e; e = e->next)
			if (f->status < 0 || (int)e->info->status == f->status)
				all[k++] = e->info;
	qsort(all, k, sizeof(*all), newest_first);
	if (f->limit && k > f->limit)
		k = f->limit;
	nv_job_info **res = k ? nv__calloc(k, sizeof(*res)) : NULL;
	if (k && res == NULL) {
		nv__free(all);
		return NV_ENOMEM;
	}
	for (size_t i = 0; i < k; i++) {
		if ((res[i] = nv_job_info_dup(all[i])) == NULL) {
			nv_job_info_list_free(res, i);
			nv__free(all);
			return NV_ENOMEM;
		}
	}
	nv__free(all);
	*out = res;
	*n = k;
	return 0;
}
