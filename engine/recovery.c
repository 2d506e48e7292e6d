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
#include "engine/fold_int.h"
#include "engine/recovery_int.h"
#include "engine/sched_int.h"

/* Makes a record of a recovered job; NULL when its task is unknown. */
static nv_job *
make_job(nv_engine *e, struct nv__rjob *rj, bool force_tracked)
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
	struct nv__fold f;
	uint64_t t0 = nv__mono_ns();
	size_t nq = 0, nres = 0, nunknown = 0, nsched = 0;
	int rc;

	memset(&f, 0, sizeof(f));
	rc = nv__fold_replay(&f, store);
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
	size_t no = 0;
	struct nv__rjob **order = rc == 0 ? nv__fold_jobs(&f, &no) : NULL;
	if (no == SIZE_MAX) {
		rc = NV_ENOMEM;
		no = 0;
	}
	if (no > 0)
		nv__job_table_reserve(e, no);
	for (size_t i = 0; rc == 0 && i < no; i++) {
		struct nv__rjob *rj = order[i];
		bool final =
		    rj->state == NV__RJ_SUCCESS || rj->state == NV__RJ_FAILED;
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
			if (rj->state == NV__RJ_SUCCESS) {
				x->result = rj->data;
				x->result_len = rj->dlen;
				j->status = NV_SUCCESS;
			} else {
				x->error = nv__fold_str(
				    rj->data ? rj->data : "", rj->dlen);
				nv__free(rj->data);
				j->status = NV_FAILED;
			}
			rj->data = NULL;
			nv__job_finished(e, j);
			nres++;
		} else if (rj->state == NV__RJ_RETRY &&
			   rj->due > nv__epoch_ms()) {
			nv__sched_retry(
			    e, j,
			    nv__mono_ms() +
				(uint64_t)(rj->due - nv__epoch_ms()));
			nq++;
		} else {
			nv__backlog_push(e, j);
			nq++;
		}
	}
	for (size_t i = 0; rc == 0 && i < f.nsch; i++) {
		struct nv__rsched *s = &f.sch[i];
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
	nv__fold_free(&f);
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
