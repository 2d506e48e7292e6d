/*
 * persist.c - turns job events into store records for the persister.
 *
 * The persister copies each record into its inbox, so the pointers here
 * may borrow the job's memory. Record layout per type: persistence/record.h.
 * Events of one job are submitted by the thread that owns the job at that
 * moment, in the order they happen, so the log order of a job's records is
 * its real history.
 *
 * Backpressure (persister.h): the persister's backlog is bounded. The
 * ENQUEUED record of a dispatch waits for room at most the engine's
 * enqueue timeout and then fails with NV_EFULL before anything was
 * submitted, so the caller unqueues the job and no record of it exists.
 * Every other event (STARTED, outcomes, FAILED for a dropped job) waits
 * without a limit: those come from workers and the scheduler, and the
 * persister thread never waits for any of them, so the wait ends as soon
 * as the store has written some of the backlog (or fails, or stops).
 */
#include <stdint.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "engine/persist_int.h"
#include "persistence/persister.h"

static int
submit(nv_engine *e, nv_rec *r, int timeout_ms)
{
	int rc = nv__persister_submit_wait(e->persister, r, NULL, timeout_ms);
	if (rc != 0 && rc != NV_EFULL) {
		/* atomic: log once per process and kind */
		static int warned[2];
		bool stopped = rc == NV_ESTOPPED;
		if (__atomic_exchange_n(&warned[stopped], 1, __ATOMIC_RELAXED))
			return rc;
		if (stopped)
			nv__warn("persister: an event of job %llu came after "
				 "the persister stopped and was not stored "
				 "(the job is recovered at the next start)",
				 (unsigned long long)r->id);
		else
			nv__err("persister: job event not stored (%s); the "
				"store is in a failed state",
				nv_strerror(rc));
	}
	return rc;
}

static void
base(nv_rec *r, nv_rec_type type, nv_job *j, int64_t time_ms)
{
	memset(r, 0, sizeof(*r));
	r->type = (uint8_t)type;
	r->id = j->id;
	r->attempt = j->attempt;
	r->time_ms = time_ms;
}

int
nv__persist_enqueued_wait(nv_engine *e, nv_job *j, int timeout_ms)
{
	nv_rec r;
	base(&r, NV_REC_JOB_ENQUEUED, j,
	     (j->flags & NV_JOB_TRACKED) ? nv__jobx(j)->created_ms
					 : nv__epoch_ms());
	r.task = j->task->name;
	r.task_len = (uint32_t)j->task->name_len;
	r.data = nv__job_args(j);
	r.data_len = j->args_len;
	int rc = submit(e, &r, timeout_ms);
	/* A stop racing the dispatch is NV_ESTOPPED, not a store error; a
	 * full backlog is NV_EFULL, like a full ring. */
	return rc == 0 || rc == NV_ESTOPPED || rc == NV_ENOMEM || rc == NV_EFULL
		   ? rc
		   : NV_EIO;
}

int
nv__persist_enqueued(nv_engine *e, nv_job *j)
{
	uint32_t t = e->enqueue_timeout_ms;
	return nv__persist_enqueued_wait(e, j, t > INT32_MAX ? -1 : (int)t);
}

void
nv__persist_dropped(nv_engine *e, nv_job_id id)
{
	static const char msg[] = "not queued: the ring stayed full";
	nv_rec r;
	memset(&r, 0, sizeof(r));
	r.type = NV_REC_JOB_FAILED;
	r.id = id;
	r.time_ms = nv__epoch_ms();
	r.data = msg;
	r.data_len = sizeof(msg) - 1;
	submit(e, &r, -1);
}

void
nv__persist_started(nv_engine *e, nv_job *j)
{
	nv_rec r;
	base(&r, NV_REC_JOB_STARTED, j, nv__epoch_ms());
	submit(e, &r, -1);
}

void
nv__persist_succeeded(nv_engine *e, nv_job *j, const void *res, size_t len)
{
	nv_rec r;
	base(&r, NV_REC_JOB_SUCCEEDED, j, nv__epoch_ms());
	r.data = res;
	r.data_len = res ? (uint32_t)len : 0;
	submit(e, &r, -1);
}

void
nv__persist_failed(nv_engine *e, nv_job *j, const char *error)
{
	nv_rec r;
	base(&r, NV_REC_JOB_FAILED, j, nv__epoch_ms());
	r.data = error;
	r.data_len = error ? (uint32_t)strlen(error) : 0;
	submit(e, &r, -1);
}

void
nv__persist_retry(nv_engine *e, nv_job *j, const char *error, uint32_t delay_ms)
{
	nv_rec r;
	base(&r, NV_REC_JOB_RETRY, j, nv__epoch_ms() + delay_ms);
	r.data = error;
	r.data_len = error ? (uint32_t)strlen(error) : 0;
	submit(e, &r, -1);
}

int
nv__persist_error(nv_engine *e)
{
	return e->persister ? nv__persister_error(e->persister) : 0;
}
