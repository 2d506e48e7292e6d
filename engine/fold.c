/*
 * fold.c - folds the records a store replays into per-id state.
 *
 * A store replays its live records in write order (or, for SQLite and a
 * compacted file log, a synthesized stream that rebuilds the same state:
 * persistence/store.h). Folding keeps, per job id, the last word of each
 * kind: the enqueued task and args, the highest attempt, the final state
 * with its result or error, a pending retry's due time; per schedule id,
 * its definition, cancellation and last fire. Recovery (recovery.c) turns
 * the fold into engine jobs; the store-backed backends (backend_store.c)
 * into a pending FIFO and a result index. Single-threaded: the caller owns
 * the fold.
 */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/fold_int.h"

static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

/* (Re)builds the index for cap slots from the jobs array. */
static bool
index_grow(struct nv__fold *f, size_t ncap)
{
	struct nv__fidx *ni = nv__calloc(ncap, sizeof(*ni));
	if (ni == NULL)
		return false;
	for (size_t i = 0; i < f->n; i++) {
		size_t k = mix(f->jobs[i].id) & (ncap - 1);
		while (ni[k].id != 0)
			k = (k + 1) & (ncap - 1);
		ni[k] = (struct nv__fidx){f->jobs[i].id, i};
	}
	nv__free(f->idx);
	f->idx = ni;
	f->cap = ncap;
	return true;
}

/*
 * The job entry of id, created (zeroed, id set) at first sight. Entries
 * sit in a dense array in first-seen order, which is the log order and
 * so nearly id order: recovery then reads them almost sequentially
 * (slots scattered by a hash cost a cache and TLB miss per job at 1M).
 * A small open-addressing index maps id -> position.
 */
static struct nv__rjob *
job_slot(struct nv__fold *f, uint64_t id)
{
	if (f->n * 2 >= f->cap && !index_grow(f, f->cap ? f->cap * 2 : 1024))
		return NULL;
	size_t k = mix(id) & (f->cap - 1);
	while (f->idx[k].id != 0 && f->idx[k].id != id)
		k = (k + 1) & (f->cap - 1);
	if (f->idx[k].id == id)
		return &f->jobs[f->idx[k].pos];
	struct nv__rjob *nj =
	    nv__grow(f->jobs, &f->capj, f->n, sizeof(*nj), 1024);
	if (nj == NULL)
		return NULL;
	f->jobs = nj;
	struct nv__rjob *j = &f->jobs[f->n];
	memset(j, 0, sizeof(*j));
	j->id = id;
	f->idx[k] = (struct nv__fidx){id, f->n};
	f->n++;
	return j;
}

static bool
copy_bytes(void **dst, uint32_t *dlen, const void *src, uint32_t len)
{
	nv__free(*dst);
	*dst = NULL;
	*dlen = 0;
	if (len == 0 || src == NULL)
		return true;
	if ((*dst = nv__memdup(src, len)) == NULL)
		return false;
	*dlen = len;
	return true;
}

char *
nv__fold_str(const char *s, uint32_t len)
{
	char *p = nv__malloc((size_t)len + 1);
	if (p != NULL) {
		if (s != NULL && len)
			memcpy(p, s, len);
		else
			len = 0;
		p[len] = '\0';
	}
	return p;
}

static struct nv__rsched *
sched_slot(struct nv__fold *f, uint64_t id)
{
	for (size_t i = 0; i < f->nsch; i++)
		if (f->sch[i].id == id)
			return &f->sch[i];
	struct nv__rsched *p =
	    nv__grow(f->sch, &f->capsch, f->nsch, sizeof(*p), 16);
	if (p == NULL)
		return NULL;
	f->sch = p;
	memset(&f->sch[f->nsch], 0, sizeof(*f->sch));
	f->sch[f->nsch].id = id;
	return &f->sch[f->nsch++];
}

static int
on_record(const nv_rec *r, void *arg)
{
	struct nv__fold *f = arg;
	bool ok = true;

	if (r->type >= NV_REC_SCHED_ADDED) {
		struct nv__rsched *s = sched_slot(f, r->id);
		if (s == NULL)
			return f->rc = NV_ENOMEM;
		if (r->id > f->max_sched)
			f->max_sched = r->id;
		switch (r->type) {
		case NV_REC_SCHED_ADDED:
			nv__free(s->task);
			nv__free(s->spec);
			s->task =
			    nv__fold_str(r->task ? r->task : "", r->task_len);
			s->spec =
			    nv__fold_str(r->aux ? r->aux : "", r->aux_len);
			s->next_ms = r->time_ms;
			ok = s->task && s->spec &&
			     copy_bytes(&s->args, &s->alen, r->data,
					r->data_len);
			break;
		case NV_REC_SCHED_CANCELLED:
			s->cancelled = true;
			break;
		case NV_REC_SCHED_FIRED:
			s->last_fired = r->time_ms;
			break;
		}
		return ok ? 0 : (f->rc = NV_ENOMEM);
	}
	struct nv__rjob *j = job_slot(f, r->id);
	if (j == NULL)
		return f->rc = NV_ENOMEM;
	if (r->id > f->max_job)
		f->max_job = r->id;
	switch (r->type) {
	case NV_REC_JOB_ENQUEUED:
		j->enqueued = true;
		j->state = NV__RJ_PENDING;
		j->attempt = r->attempt;
		j->created = r->time_ms;
		j->started = j->finished = 0;
		nv__free(j->task);
		j->task = nv__fold_str(r->task ? r->task : "", r->task_len);
		ok = j->task &&
		     copy_bytes(&j->args, &j->alen, r->data, r->data_len);
		break;
	case NV_REC_JOB_STARTED:
		j->started = r->time_ms;
		if (r->attempt > j->attempt)
			j->attempt = r->attempt;
		break;
	case NV_REC_JOB_SUCCEEDED:
		j->state = NV__RJ_SUCCESS;
		j->finished = r->time_ms;
		if (r->attempt > j->attempt)
			j->attempt = r->attempt;
		ok = copy_bytes(&j->data, &j->dlen, r->data, r->data_len);
		break;
	case NV_REC_JOB_FAILED:
		j->state = NV__RJ_FAILED;
		j->finished = r->time_ms;
		if (r->attempt > j->attempt)
			j->attempt = r->attempt;
		ok = copy_bytes(&j->data, &j->dlen, r->data, r->data_len);
		break;
	case NV_REC_JOB_RETRY:
		j->state = NV__RJ_RETRY;
		if (r->attempt > j->attempt)
			j->attempt = r->attempt;
		j->due = r->time_ms;
		ok = copy_bytes(&j->data, &j->dlen, r->data, r->data_len);
		break;
	}
	return ok ? 0 : (f->rc = NV_ENOMEM);
}

int
nv__fold_replay(struct nv__fold *f, nv_store *store)
{
	int rc = store->ops->replay(store, on_record, f);
	return rc != 0 ? rc : f->rc;
}

/* (id, slot) pairs sorted by id with an LSD radix sort, a byte per pass:
 * no comparison callback and no pointer chasing (a qsort through the slot
 * pointers was 8% of a recovery). Passes whose byte is the same for every
 * id (the boot epoch's high bits, mostly) are skipped. */
struct idpair {
	uint64_t id;
	size_t slot;
};

static bool
radix_sort(struct idpair *a, size_t n)
{
	struct idpair *tmp = nv__malloc(n * sizeof(*tmp));
	if (tmp == NULL)
		return false;
	for (unsigned shift = 0; shift < 64; shift += 8) {
		size_t count[256] = {0};
		for (size_t i = 0; i < n; i++)
			count[(a[i].id >> shift) & 0xff]++;
		if (count[(a[0].id >> shift) & 0xff] == n)
			continue; /* one value: the order stands */
		size_t pos = 0;
		for (unsigned b = 0; b < 256; b++) {
			size_t c = count[b];
			count[b] = pos;
			pos += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[count[(a[i].id >> shift) & 0xff]++] = a[i];
		memcpy(a, tmp, n * sizeof(*a));
	}
	nv__free(tmp);
	return true;
}

struct nv__rjob **
nv__fold_jobs(struct nv__fold *f, size_t *n)
{
	struct nv__rjob **order;
	size_t no = 0;
	*n = 0;
	if (f->n == 0)
		return NULL;
	struct idpair *pairs = nv__malloc(f->n * sizeof(*pairs));
	if ((order = nv__malloc(f->n * sizeof(*order))) == NULL ||
	    pairs == NULL) {
		nv__free(order);
		nv__free(pairs);
		*n = SIZE_MAX;
		return NULL;
	}
	for (size_t i = 0; i < f->n; i++)
		if (f->jobs[i].enqueued)
			pairs[no++] = (struct idpair){f->jobs[i].id, i};
	if (no > 0 && !radix_sort(pairs, no)) {
		nv__free(order);
		nv__free(pairs);
		*n = SIZE_MAX;
		return NULL;
	}
	for (size_t i = 0; i < no; i++)
		order[i] = &f->jobs[pairs[i].slot];
	nv__free(pairs);
	*n = no;
	return order;
}

void
nv__fold_free(struct nv__fold *f)
{
	for (size_t i = 0; i < f->n; i++) {
		nv__free(f->jobs[i].task);
		nv__free(f->jobs[i].args);
		nv__free(f->jobs[i].data);
	}
	nv__free(f->jobs);
	nv__free(f->idx);
	for (size_t i = 0; i < f->nsch; i++) {
		nv__free(f->sch[i].task);
		nv__free(f->sch[i].args);
		nv__free(f->sch[i].spec);
	}
	nv__free(f->sch);
	memset(f, 0, sizeof(*f));
}
