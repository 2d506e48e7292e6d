/*
 * recovery.c - rebuilds an engine's state from its store at start.
 *
 * The store replays its records in write order (the file log as written,
 * or compacted; SQLite as a synthesized fold: see persistence/store.h).
 * Recovery folds them per id, then:
 *  - a job without a final record goes back into the queue with its
 *    attempt count (at-least-once: a job that was running at the crash
 *    runs again); a pending retry keeps its due time; jobs beyond what the
 *    ring holds wait in the engine's backlog and enter the ring as it
 *    drains;
 *  - a finished job becomes a tracked record with its status, result or
 *    error, readable through nv_job_status/result/error;
 *  - a schedule not cancelled is restored (schedule.c) with its last fire;
 *  - job and schedule ids continue after the largest one ever stored.
 * A job whose task is not registered at start stays in the store (nothing
 * is written about it, so it is still there at the next start) and is
 * reported; its finished records are kept under the task name.
 */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "engine/recovery_int.h"
#include "engine/sched_int.h"

enum { RJ_PENDING, RJ_RETRY, RJ_SUCCESS, RJ_FAILED };

struct rjob {
	uint64_t id;
	uint32_t attempt;
	uint8_t state;
	bool enqueued; /* saw its JOB_ENQUEUED */
	int64_t created, due;
	char *task;
	void *args;
	uint32_t alen;
	void *data; /* result or error */
	uint32_t dlen;
};

struct rsched {
	uint64_t id;
	bool cancelled;
	int64_t next_ms, last_fired;
	char *task;
	void *args;
	uint32_t alen;
	char *spec;
};

struct fold {
	struct rjob *jobs; /* open addressing by id, 0 = empty */
	size_t cap, n;
	struct rsched *sch;
	size_t nsch, capsch;
	uint64_t max_job, max_sched;
	int rc;
};

static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static struct rjob *
job_slot(struct fold *f, uint64_t id)
{
	if (f->n * 2 >= f->cap) {
		size_t ncap = f->cap ? f->cap * 2 : 1024;
		struct rjob *nj = nv__calloc(ncap, sizeof(*nj));
		if (nj == NULL)
			return NULL;
		for (size_t i = 0; i < f->cap; i++) {
			if (f->jobs[i].id == 0)
				continue;
			size_t k = mix(f->jobs[i].id) & (ncap - 1);
			while (nj[k].id != 0)
				k = (k + 1) & (ncap - 1);
			nj[k] = f->jobs[i];
		}
		nv__free(f->jobs);
		f->jobs = nj;
		f->cap = ncap;
	}
	size_t k = mix(id) & (f->cap - 1);
	while (f->jobs[k].id != 0 && f->jobs[k].id != id)
		k = (k + 1) & (f->cap - 1);
	if (f->jobs[k].id == 0) {
		f->jobs[k].id = id;
		f->n++;
	}
	return &f->jobs[k];
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

static char *
copy_str(const char *s, uint32_t len)
{
	char *p = nv__malloc((size_t)len + 1);
	if (p != NULL) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

static struct rsched *
sched_slot(struct fold *f, uint64_t id)
{
	for (size_t i = 0; i < f->nsch; i++)
		if (f->sch[i].id == id)
			return &f->sch[i];
	if (f->nsch == f->capsch) {
		size_t nc = f->capsch ? f->capsch * 2 : 16;
		struct rsched *p = nv__realloc(f->sch, nc * sizeof(*p));
		if (p == NULL)
			return NULL;
		f->sch = p;
		f->capsch = nc;
	}
	memset(&f->sch[f->nsch], 0, sizeof(*f->sch));
	f->sch[f->nsch].id = id;
	return &f->sch[f->nsch++];
}

static int
on_record(const nv_rec *r, void *arg)
{
	struct fold *f = arg;
	bool ok = true;

	if (r->type >= NV_REC_SCHED_ADDED) {
		struct rsched *s = sched_slot(f, r->id);
		if (s == NULL)
			return f->rc = NV_ENOMEM;
		if (r->id > f->max_sched)
			f->max_sched = r->id;
		switch (r->type) {
		case NV_REC_SCHED_ADDED:
			nv__free(s->task);
			nv__free(s->spec);
			s->task = copy_str(r->task ? r->task : "", r->task_len);
			s->spec = copy_str(r->aux ? r->aux : "", r->aux_len);
			s->next_ms = r->time_ms;
			ok = s->task && s->spec &&
			     copy_bytes(&s->args, &s->alen, r->data, r->data_len);
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
	struct rjob *j = job_slot(f, r->id);
	if (j == NULL)
		return f->rc = NV_ENOMEM;
	if (r->id > f->max_job)
		f->max_job = r->id;
	switch (r->type) {
	case NV_REC_JOB_ENQUEUED:
		j->enqueued = true;
		j->state = RJ_PENDING;
		j->attempt = r->attempt;
		j->created = r->time_ms;
		nv__free(j->task);
		j->task = copy_str(r->task ? r->task : "", r->task_len);
		ok = j->task && copy_bytes(&j->args, &j->alen, r->data,
					   r->data_len);
		break;
	case NV_REC_JOB_STARTED:
		if (r->attempt > j->attempt)
			j->attempt = r->attempt;
		break;
	case NV_REC_JOB_SUCCEEDED:
		j->state = RJ_SUCCESS;
		if (r->attempt > j->attempt)
			j->attempt = r->attempt;
		ok = copy_bytes(&j->data, &j->dlen, r->data, r->data_len);
		break;
	case NV_REC_JOB_FAILED:
		j->state = RJ_FAILED;
		if (r->attempt > j->attempt)
			j->attempt = r->attempt;
		ok = copy_bytes(&j->data, &j->dlen, r->data, r->data_len);
		break;
	case NV_REC_JOB_RETRY:
		j->state = RJ_RETRY;
		if (r->attempt > j->attempt)
			j->attempt = r->attempt;
		j->due = r->time_ms;
		ok = copy_bytes(&j->data, &j->dlen, r->data, r->data_len);
		break;
	}
	return ok ? 0 : (f->rc = NV_ENOMEM);
}

static int
cmp_rjob(const void *a, const void *b)
{
	const struct rjob *x = *(struct rjob *const *)a;
	const struct rjob *y = *(struct rjob *const *)b;
	return (x->id > y->id) - (x->id < y->id);
}

/* Makes a record of a recovered job; NULL when its task is unknown. */
static nv_job *
make_job(nv_engine *e, struct rjob *rj, bool force_tracked)
{
	struct nv_task *t = nv_task_lookup(e, rj->task);
	if (t == NULL)
		t = nv__orphan_task(e, rj->task);
	if (t == NULL)
		return NULL;
	bool tracked = force_tracked || !nv__task_def(t)->opts.discard_result;
	nv_job *j = nv__job_new(e, t, rj->args, rj->alen, tracked, rj->id);
	if (j == NULL)
		return NULL;
	j->attempt = rj->attempt;
	if (tracked) {
		nv_jobx *x = nv__jobx(j);
		x->created_ms = rj->created;
		nv__job_table_add(e, j);
	}
	return j;
}

int
nv__recover(nv_engine *e, nv_store *store, bool requeue, bool results)
{
	struct fold f;
	uint64_t t0 = nv__mono_ns();
	size_t nq = 0, nres = 0, nunknown = 0, nsched = 0;
	int rc;

	memset(&f, 0, sizeof(f));
	rc = store->ops->replay(store, on_record, &f);
	if (rc == 0)
		rc = f.rc;
	if (rc == 0) {
		uint64_t mj = 0, ms = 0;
		store->ops->max_ids(store, &mj, &ms);
		if (mj < f.max_job)
			mj = f.max_job;
		if (ms < f.max_sched)
			ms = f.max_sched;
		/* Only ever raise next_id: jobs dispatched before start
		 * (their records still in the persister's inbox, not in the
		 * store) already took ids above the stored maximum. Relaxed
		 * CAS: ids only need to be unique (see nv__id_alloc). */
		uint64_t cur = __atomic_load_n(&e->next_id, __ATOMIC_RELAXED);
		while (cur < mj + 1 &&
		       !__atomic_compare_exchange_n(&e->next_id, &cur, mj + 1,
						    false, __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED))
			;
		nv__schedules_set_next_id(e, ms + 1);
	}
	struct rjob **order = rc == 0 && f.n ? nv__malloc(f.n * sizeof(*order))
					     : NULL;
	size_t no = 0;
	if (order != NULL)
		for (size_t i = 0; i < f.cap; i++)
			if (f.jobs[i].id != 0 && f.jobs[i].enqueued)
				order[no++] = &f.jobs[i];
	if (rc == 0 && f.n && order == NULL)
		rc = NV_ENOMEM;
	if (order != NULL)
		qsort(order, no, sizeof(*order), cmp_rjob);
	for (size_t i = 0; rc == 0 && i < no; i++) {
		struct rjob *rj = order[i];
		bool final = rj->state == RJ_SUCCESS || rj->state == RJ_FAILED;
		if (final && !results)
			continue;
		if (!final && !requeue)
			continue;
		if (!final && nv_task_lookup(e, rj->task) == NULL) {
			nunknown++;
			nv__warn("recovery: job %llu of unregistered task '%s' "
				 "left in the store",
				 (unsigned long long)rj->id, rj->task);
			continue;
		}
		nv_job *j = make_job(e, rj, final);
		if (j == NULL) {
			rc = NV_ENOMEM;
			break;
		}
		if (final) {
			nv_jobx *x = nv__jobx(j);
			if (rj->state == RJ_SUCCESS) {
				x->result = rj->data;
				x->result_len = rj->dlen;
				j->status = NV_SUCCESS;
			} else {
				x->error = copy_str(rj->data ? rj->data : "",
						    rj->dlen);
				nv__free(rj->data);
				j->status = NV_FAILED;
			}
			rj->data = NULL;
			nv__job_finished(e, j);
			nres++;
		} else if (rj->state == RJ_RETRY && rj->due > nv__epoch_ms()) {
			nv__sched_retry(e, j,
					nv__mono_ms() +
						(uint64_t)(rj->due - nv__epoch_ms()));
			nq++;
		} else {
			nv__backlog_push(e, j);
			nq++;
		}
	}
	for (size_t i = 0; rc == 0 && i < f.nsch; i++) {
		struct rsched *s = &f.sch[i];
		if (s->cancelled || !requeue)
			continue;
		rc = nv__schedule_restore(e, s->id, s->task, s->args, s->alen,
					  s->spec, s->next_ms, s->last_fired);
		if (rc == NV_ENOTASK) {
			nv__warn("recovery: schedule %llu of unregistered task "
				 "'%s' not restored",
				 (unsigned long long)s->id, s->task);
			rc = 0;
		} else if (rc == 0) {
			nsched++;
		}
	}
	/* Free the fold. */
	for (size_t i = 0; i < f.cap; i++) {
		nv__free(f.jobs[i].task);
		nv__free(f.jobs[i].args);
		nv__free(f.jobs[i].data);
	}
	nv__free(f.jobs);
	for (size_t i = 0; i < f.nsch; i++) {
		nv__free(f.sch[i].task);
		nv__free(f.sch[i].args);
		nv__free(f.sch[i].spec);
	}
	nv__free(f.sch);
	nv__free(order);
	if (rc == 0)
		nv__info("recovery: %zu job(s) queued again, %zu finished "
			 "result(s), %zu schedule(s), %zu job(s) of "
			 "unregistered tasks left in the store, in %.1f ms",
			 nq, nres, nsched, nunknown,
			 (double)(nv__mono_ns() - t0) / 1e6);
	e->recovered_jobs = nq;
	e->recovered_results = nres;
	return rc;
}
