/*
 * dispatch.c - the dispatcher: nv_delay, nv_task_delay, nv_map.
 *
 * A dispatch copies the arguments into a job record, puts tracked jobs in
 * the job table (so their status is visible at once), hands the "enqueued"
 * event to the persister when there is one, pushes the job on the
 * caller's lane of the queue (engine_int.h) and wakes a parked worker. nv_map does the same for a batch with one id
 * reservation and bulk ring pushes of up to 256 jobs.
 *
 * Backpressure: a full ring makes the caller spin briefly, then park on
 * the engine's not_full eventcount (workers notify it after each pop)
 * until room appears or enqueue_timeout_ms passes; then NV_EFULL. A job
 * that could not be queued is taken back out of the table and freed:
 * nothing is dropped silently.
 *
 * With a plugin queue backend (e->qbe) the one branch at the push hands
 * the jobs to the backend instead (pump.c); everything else is the same.
 */
#include <sched.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "engine/engine_int.h"
#include "engine/persist_int.h"
#include "engine/store_int.h"

#define NV_MAP_CHUNK 256

void
nv__notify_workers(nv_engine *e, size_t n)
{
	/* Light half: the workers prepare to park with the heavy one
	 * (lockfree/park.h), so a dispatch pays no fence here. */
	nv__ec_notify_light(&e->not_empty,
			    n >= e->nworkers ? (int)e->nworkers : (int)n);
}

/* The calling thread's lane in engine e (round-robin at first use; the
 * generation tag makes a cache left by another engine stale). */
static __thread struct {
	uint64_t gen;
	unsigned lane;
} lane_tls;

static inline unsigned
my_lane(nv_engine *e)
{
	if (lane_tls.gen != e->gen) {
		/* Relaxed: only spreads threads over the lanes. */
		lane_tls.lane = __atomic_fetch_add(&e->lane_rr, 1,
						   __ATOMIC_RELAXED) &
				(e->nlanes - 1);
		lane_tls.gen = e->gen;
	}
	return lane_tls.lane;
}

static size_t
push_ring(nv_ring *r, nv_job *const *jobs, size_t n)
{
	if (n == 1)
		return nv_ring_try_push(r, jobs[0]) ? 1 : 0;
	return nv_ring_push_bulk(r, (void *const *)jobs, n);
}

/* Lane `first`, then the others in turn while jobs are left. */
static size_t
push_from(nv_engine *e, unsigned first, nv_job *const *jobs, size_t n)
{
	size_t done = push_ring(e->lane[first], jobs, n);
	for (unsigned k = 1; k < e->nlanes && done < n; k++)
		done += push_ring(e->lane[(first + k) & (e->nlanes - 1)],
				  jobs + done, n - done);
	return done;
}

static size_t
push_some(nv_engine *e, nv_job *const *jobs, size_t n)
{
	return push_from(e, my_lane(e), jobs, n);
}

bool
nv__queue_try_push(nv_engine *e, nv_job *j)
{
	/* Requeues (retries, backlog, hand-backs) come from the scheduler
	 * and workers: spread by id, leaving the dispatchers' round-robin
	 * to the dispatchers. */
	return push_from(e, (unsigned)j->id & (e->nlanes - 1), &j, 1) == 1;
}

size_t
nv__queued(nv_engine *e)
{
	size_t n = 0;
	for (unsigned i = 0; i < e->nlanes; i++)
		n += nv_ring_size(e->lane[i]);
	return n;
}

int
nv__queue_push_wait(nv_engine *e, nv_job *const *jobs, size_t n,
		    size_t *pushed)
{
	size_t done = push_some(e, jobs, n);
	uint64_t end = 0;
	unsigned spins = 0;

	while (done < n) {
		if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) >=
		    NV_ENG_STOPPING) {
			*pushed = done;
			return NV_ESTOPPED;
		}
		if (spins < 64) {
			spins++;
			if (spins % 16 == 0)
				sched_yield();
			else
				nv__cpu_relax();
		} else {
			uint64_t now = nv__mono_ms();
			if (end == 0)
				end = now + e->enqueue_timeout_ms;
			if (now >= end) {
				*pushed = done;
				return NV_EFULL;
			}
			/* Workers wake us after popping (no lost wake-up:
			 * we re-check after prepare; heavy: the workers
			 * notify with the light half, park.h). */
			int64_t cap_ms;
			uint32_t key =
			    nv__ec_prepare_heavy(&e->not_full, &cap_ms);
			/* Stop stores the state, then notifies: seen here
			 * or it sees this waiter (seq_cst on both sides). */
			if (__atomic_load_n(&e->state, __ATOMIC_SEQ_CST) >=
			    NV_ENG_STOPPING) {
				nv__ec_cancel(&e->not_full);
				*pushed = done;
				return NV_ESTOPPED;
			}
			size_t k = push_some(e, jobs + done, n - done);
			if (k) {
				nv__ec_cancel(&e->not_full);
				done += k;
				nv__notify_workers(e, k);
				continue;
			}
			nv__ec_wait(&e->not_full, key,
				    cap_ms < 0 ? (int64_t)(end - now) : cap_ms);
		}
		done += push_some(e, jobs + done, n - done);
	}
	*pushed = done;
	return 0;
}

/* Takes a job that never made it onto the ring back out. */
static void
unqueue(nv_engine *e, nv_job *j)
{
	if (j->flags & NV_JOB_TRACKED) {
		nv_jobx *x = nv__jobx(j);
		urcu_memb_read_lock();
		int rc = cds_lfht_del(e->jobs, &x->node);
		urcu_memb_read_unlock();
		if (rc == 0 && __atomic_sub_fetch(&x->refs, 1,
						  __ATOMIC_ACQ_REL) == 0) {
			/* A reader may still hold the pointer: free after
			 * a grace period. */
			urcu_memb_synchronize_rcu();
			nv__job_free(j);
		}
		return;
	}
	nv__job_free(j);
}

static int
check_dispatch(nv_engine *e, const void *args, size_t len)
{
	if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) >= NV_ENG_STOPPING)
		return NV_ESTOPPED;
	if (args == NULL && len != 0)
		return NV_EINVAL;
	if (len > e->max_args)
		return NV_E2BIG;
	return 0;
}

int
nv_task_delay(nv_task *t, const void *args, size_t len, nv_job_id *out_id)
{
	nv_engine *e;
	struct nv_taskdef *def;
	nv_job *j;
	nv_job_id id;
	size_t pushed;
	bool tracked;
	int rc;

	if (t == NULL)
		return NV_EINVAL;
	e = t->engine;
	if ((rc = check_dispatch(e, args, len)) != 0)
		return rc;
	def = nv__task_def(t);
	tracked = !def->opts.discard_result;
	id = nv__id_alloc(e, 1);
	j = nv__job_new(e, t, args, len, tracked, id);
	if (j == NULL)
		return NV_ENOMEM;
	if (tracked) {
		nv__rcu_thread_online();
		nv__job_table_add(e, j);
	}
	if (e->persister != NULL && (rc = nv__persist_enqueued(e, j)) != 0) {
		unqueue(e, j);
		return rc;
	}
	/* Counted before the push (taken back if it fails): this locked add
	 * waits for the record's stores, so the push's CAS that follows has
	 * none left to wait for (the stats are relaxed counters either
	 * way). */
	nv__shard_add(e->enqueued, 1);
	/* After a successful push a worker may run and free j at once:
	 * nothing below touches it. */
	rc = e->qbe == NULL ? nv__queue_push_wait(e, &j, 1, &pushed)
			    : nv__pump_submit(e, &j, 1, &pushed);
	if (rc != 0) {
		nv__shard_add(e->enqueued, (uint64_t)-1); /* modulo 2^64 */
		if (e->persister != NULL)
			nv__persist_dropped(e, id);
		unqueue(e, j);
		return rc;
	}
	nv__notify_workers(e, 1);
	if (e->has_observers)
		nv__emit(e, NV_EV_ENQUEUED, id, t, 0, 0, NULL);
	if (out_id != NULL)
		*out_id = id;
	return 0;
}

int
nv_delay(nv_engine *e, const char *task, const void *args, size_t len,
	 nv_job_id *out_id)
{
	nv_task *t;
	if (e == NULL || task == NULL)
		return NV_EINVAL;
	if ((t = nv_task_lookup(e, task)) == NULL)
		return NV_ENOTASK;
	return nv_task_delay(t, args, len, out_id);
}

int
nv_map(nv_engine *e, const char *task, const nv_args *argv, size_t n,
       nv_job_id *out_ids)
{
	nv_job *jobs[NV_MAP_CHUNK];
	nv_task *t;
	struct nv_taskdef *def;
	nv_job_id first;
	bool tracked;
	int rc;

	if (e == NULL || task == NULL || (argv == NULL && n != 0))
		return NV_EINVAL;
	if ((t = nv_task_lookup(e, task)) == NULL)
		return NV_ENOTASK;
	if (out_ids != NULL)
		memset(out_ids, 0, n * sizeof(*out_ids));
	for (size_t i = 0; i < n; i++)
		if ((rc = check_dispatch(e, argv[i].data, argv[i].len)) != 0)
			return rc;
	if (n == 0)
		return 0;
	def = nv__task_def(t);
	tracked = !def->opts.discard_result;
	first = nv__id_alloc(e, n);
	if (tracked)
		nv__rcu_thread_online();
	for (size_t base = 0; base < n; base += NV_MAP_CHUNK) {
		size_t m = n - base < NV_MAP_CHUNK ? n - base : NV_MAP_CHUNK;
		size_t made = 0, pushed = 0;
		int prc_rec = 0; /* why the enqueued record was refused */
		for (; made < m; made++) {
			const nv_args *a = &argv[base + made];
			jobs[made] = nv__job_new(e, t, a->data, a->len, tracked,
						 first + base + made);
			if (jobs[made] == NULL)
				break;
			if (tracked)
				nv__job_table_add(e, jobs[made]);
			if (e->persister != NULL &&
			    (prc_rec = nv__persist_enqueued(e, jobs[made])) !=
				    0) {
				unqueue(e, jobs[made]);
				break;
			}
		}
		/* A full persister backlog (NV_EFULL) or a stop is reported
		 * as such; otherwise a failed store or no memory. */
		if (made == m)
			rc = 0;
		else if (prc_rec == NV_EFULL || prc_rec == NV_ESTOPPED)
			rc = prc_rec;
		else if (e->persister != NULL && nv__persist_error(e) != 0)
			rc = NV_EIO;
		else
			rc = NV_ENOMEM;
		if (made > 0) {
			int prc = e->qbe == NULL
				      ? nv__queue_push_wait(e, jobs, made,
							    &pushed)
				      : nv__pump_submit(e, jobs, made, &pushed);
			if (pushed)
				nv__notify_workers(e, pushed);
			if (prc != 0)
				rc = prc;
		}
		if (out_ids != NULL)
			for (size_t i = 0; i < pushed; i++)
				out_ids[base + i] = first + base + i;
		nv__shard_add(e->enqueued, pushed);
		if (e->has_observers)
			for (size_t i = 0; i < pushed; i++)
				nv__emit(e, NV_EV_ENQUEUED, first + base + i,
					 t, 0, 0, NULL);
		if (rc != 0) {
			for (size_t i = pushed; i < made; i++) {
				if (e->persister != NULL)
					nv__persist_dropped(e, jobs[i]->id);
				unqueue(e, jobs[i]);
			}
			return rc;
		}
	}
	return 0;
}
