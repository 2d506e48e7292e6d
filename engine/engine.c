/*
 * engine.c - engine lifecycle (open, start, stop, close), statistics and
 * observers.
 *
 * Lifecycle: OPEN (tasks may be registered and jobs dispatched; they queue
 * until start) -> RUNNING -> STOPPING (intake refused with NV_ESTOPPED;
 * queued and running jobs get the grace period) -> STOPPED. Close frees
 * everything; jobs still queued are abandoned (with a persistent store they
 * are recovered on the next start).
 *
 * A worker still inside a task function when the grace period ends cannot
 * be joined: stop returns NV_ETIMEDOUT and close waits for it a little
 * longer; if it still does not return, close leaves the engine allocated
 * (and says so) rather than free memory the function may still touch.
 */
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "engine/config_int.h"
#include "engine/engine_int.h"
#include "lockfree/asym.h"
#include "engine/sched_int.h"
#include "engine/recovery_int.h"
#include "engine/store_int.h"

const char *
nv_status_name(nv_status s)
{
	switch (s) {
	case NV_PENDING:
		return "PENDING";
	case NV_RUNNING:
		return "RUNNING";
	case NV_SUCCESS:
		return "SUCCESS";
	case NV_FAILED:
		return "FAILED";
	}
	return "UNKNOWN";
}

static unsigned
online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

/* The queue's lanes: one per worker, a power of two up to NV_MAX_LANES,
 * each with an equal share of queue_capacity (rounded up to a power of
 * two first, as a single ring would be), at least 2 slots per lane. */
static int
lanes_create(nv_engine *e)
{
	size_t cap = 2;
	unsigned n = 1;
	while (cap < e->cfg.queue_capacity)
		cap <<= 1;
	while (n * 2 <= e->nworkers && n * 2 <= NV_MAX_LANES &&
	       cap / (n * 2) >= 2)
		n <<= 1;
	e->nlanes = n;
	for (unsigned i = 0; i < n; i++) {
		int rc = nv_ring_create(&e->lane[i], cap / n);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int
nv_engine_open(nv_engine **out, const nv_config *cfg)
{
	nv_engine *e;
	nv_config defaults;
	int rc;

	if (out == NULL)
		return NV_EINVAL;
	*out = NULL;
	/* Before any engine thread exists, so nv__asym_ok never changes
	 * under a running worker (lockfree/asym.h). */
	nv__asym_init();
	if (cfg == NULL) {
		nv_config_init(&defaults);
		cfg = &defaults;
	}
	if (cfg->queue_capacity == 0 || cfg->queue_capacity > ((size_t)1 << 30) ||
	    cfg->job_timeout_ms == 0 || cfg->batch_size == 0 ||
	    cfg->timeout_policy > NV_TIMEOUT_IGNORE || cfg->max_args == 0 ||
	    cfg->max_args > UINT32_MAX || cfg->result_retention == 0)
		return NV_EINVAL;
	/* The same limits as the NUVOM_* loader (config.c): a struct filled
	 * by hand must not get past what the environment cannot (a worker
	 * count of a million would try to start a million threads). */
	if (cfg->workers > 1024 ||
	    (cfg->max_extra_workers != NV__CONFIG_AUTO &&
	     cfg->max_extra_workers > 1024) ||
	    cfg->fsync > NV_FSYNC_OFF || cfg->misfire > NV_MISFIRE_SKIP ||
	    cfg->log_level > NV_LOG_DEBUG)
		return NV_EINVAL;
	e = nv__aligned_alloc(NV_CL, sizeof(*e));
	if (e == NULL)
		return NV_ENOMEM;
	nv__config_copy(&e->cfg, cfg);
	nv__log_set_level((int)e->cfg.log_level);
	e->nworkers = e->cfg.workers ? e->cfg.workers : online_cpus();
	e->nslots = e->nworkers +
		    nv__config_extra_workers(&e->cfg, e->nworkers);
	e->batch = e->cfg.batch_size > 4096 ? 4096 : e->cfg.batch_size;
	e->max_args = (uint32_t)e->cfg.max_args;
	e->enqueue_timeout_ms = e->cfg.enqueue_timeout_ms;
	e->next_id = 1;
	e->watch_off = 1; /* no worker runs a job yet */
	pthread_mutex_init(&e->life_mu, NULL);
	pthread_mutex_init(&e->backlog_mu, NULL);
	pthread_mutex_init(&e->spawn_mu, NULL);
	e->workers = nv__aligned_alloc(NV_CL, e->nslots * sizeof(*e->workers));
	rc = e->workers ? 0 : NV_ENOMEM;
	for (unsigned i = 0; rc == 0 && i < e->nslots; i++) {
		e->workers[i].index = i;
		e->workers[i].engine = e;
		e->workers[i].batch = nv__calloc(e->batch, sizeof(nv_job *));
		if (e->workers[i].batch == NULL)
			rc = NV_ENOMEM;
	}
	if (rc == 0)
		rc = lanes_create(e);
	if (rc == 0)
		rc = nv_ring_create(&e->prio, 1024);
	if (rc == 0)
		rc = nv__registry_init(e);
	if (rc == 0)
		rc = nv__jobs_init(e);
	if (rc == 0)
		rc = nv__sched_init(e);
	if (rc == 0)
		rc = nv__store_open(e);
	if (rc != 0) {
		nv_engine_close(e);
		return rc;
	}
	e->state = NV_ENG_OPEN;
	*out = e;
	return 0;
}

int
nv_engine_start(nv_engine *e)
{
	int rc;
	if (e == NULL)
		return NV_EINVAL;
	pthread_mutex_lock(&e->life_mu);
	if (e->state != NV_ENG_OPEN) {
		pthread_mutex_unlock(&e->life_mu);
		return e->state == NV_ENG_RUNNING ? 0 : NV_ESTOPPED;
	}
	nv__rcu_thread_online();
	e->has_observers = e->nobs > 0;
	rc = nv__sched_start(e);
	if (rc == 0)
		rc = nv__store_start(e); /* recovery, persister thread */
	if (rc == 0)
		rc = nv__workers_start(e);
	if (rc != 0) {
		pthread_mutex_unlock(&e->life_mu);
		nv_engine_stop(e, 0);
		return rc;
	}
	__atomic_store_n(&e->state, NV_ENG_RUNNING, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&e->life_mu);
	return 0;
}

static bool
worker_busy(struct nv_worker *w)
{
	return (__atomic_load_n(&w->word, __ATOMIC_ACQUIRE) & 3) !=
	       NV_SLOT_IDLE;
}

/* A live worker that is not inside a job: it is about to exit (it saw
 * quit, or is waking up to see it). */
static bool
workers_leaving(nv_engine *e)
{
	for (unsigned i = 0; i < e->nslots; i++)
		if (__atomic_load_n(&e->workers[i].state, __ATOMIC_ACQUIRE) ==
			    1 &&
		    !worker_busy(&e->workers[i]))
			return true;
	return false;
}

static bool
queues_empty(nv_engine *e)
{
	if (nv__queued(e) || nv_ring_size(e->prio) ||
	    __atomic_load_n(&e->backlog_n, __ATOMIC_ACQUIRE))
		return false;
	return e->pump == NULL || nv__pump_idle(e); /* plugin queue */
}

static bool
drained(nv_engine *e)
{
	if (!queues_empty(e))
		return false;
	/* Not the slot word: a worker between two jobs of its batch is
	 * IDLE with jobs in hand. `holding` is 1 from before a worker's
	 * pops until it parks empty-handed; it is stored (with a fence)
	 * before the pop, so a ring read above that saw the pop sees it.
	 * Two passes: an idle worker may steal an entry of a busy one's
	 * batch (raising its own holding first) after the first pass read
	 * the thief's 0 and before it reads the owner's, which the owner
	 * lowers only after its own claim of that entry failed; that
	 * lowering is a release store, so the second pass sees the
	 * thief's 1. */
	for (int pass = 0; pass < 2; pass++)
		for (unsigned i = 0; i < e->nslots; i++)
			if (__atomic_load_n(&e->workers[i].state,
					    __ATOMIC_ACQUIRE) == 1 &&
			    __atomic_load_n(&e->workers[i].holding,
					    __ATOMIC_SEQ_CST))
				return false;
	/* And the queues once more: a job handed back to them (a stolen
	 * job's retry, the pump) between the first look and the passes. */
	return queues_empty(e);
}

int
nv_engine_stop(nv_engine *e, uint32_t grace_ms)
{
	uint64_t end;
	unsigned busy = 0;
	int rc;

	if (e == NULL)
		return NV_EINVAL;
	pthread_mutex_lock(&e->life_mu);
	if (e->state == NV_ENG_STOPPED) {
		pthread_mutex_unlock(&e->life_mu);
		return 0;
	}
	bool started = e->sched != NULL && e->sched->started;
	__atomic_store_n(&e->state, NV_ENG_STOPPING, __ATOMIC_SEQ_CST);
	/* Wake producers parked on a full ring: they return NV_ESTOPPED. */
	nv__ec_notify(&e->not_full, INT_MAX);
	end = nv__mono_ms() + grace_ms;
	while (started && !drained(e)) {
		uint64_t now = nv__mono_ms();
		if (now >= end)
			break;
		uint32_t key = nv__ec_prepare(&e->done);
		if (drained(e)) {
			nv__ec_cancel(&e->done);
			break;
		}
		nv__ec_wait(&e->done, key,
			    (int64_t)(end - now < 10 ? end - now : 10));
	}
	bool complete = !started || drained(e);
	__atomic_store_n(&e->quit, 1, __ATOMIC_SEQ_CST);
	nv__ec_notify(&e->not_empty, INT_MAX);
	/* Workers leave as soon as their hands are empty: after quit they
	 * take no new job and hand back the rest of their batch. Wait (up
	 * to 2 s) for the ones not inside a job, then join those that
	 * left. Never join a live one: a worker between two jobs used to be
	 * joined and then ran into a job that did not return, and stop
	 * never returned. */
	uint64_t jend = nv__mono_ms() + 2000;
	while (started && workers_leaving(e)) {
		uint64_t now = nv__mono_ms();
		if (now >= jend)
			break;
		uint32_t key = nv__ec_prepare(&e->done);
		if (!workers_leaving(e)) {
			nv__ec_cancel(&e->done);
			break;
		}
		nv__ec_wait(&e->done, key,
			    (int64_t)(jend - now < 10 ? jend - now : 10));
	}
	for (unsigned i = 0; i < e->nslots; i++) {
		struct nv_worker *w = &e->workers[i];
		/* Under spawn_mu: the scheduler may be joining or reusing a
		 * slot for a replacement (nv__worker_spawn). */
		pthread_mutex_lock(&e->spawn_mu);
		int st = __atomic_load_n(&w->state, __ATOMIC_ACQUIRE);
		if (st == 2) {
			pthread_join(w->thread, NULL);
			__atomic_store_n(&w->state, 0, __ATOMIC_RELEASE);
		} else if (st == 1) {
			busy++; /* still in a task function: not joinable */
		}
		pthread_mutex_unlock(&e->spawn_mu);
	}
	/* What was abandoned is what is still queued once the workers are
	 * gone (they hand unstarted jobs of their batch back to the ring):
	 * exact, unlike the drained() estimate above, which may catch an
	 * idle worker between raising and lowering its holding flag. */
	if (started && !complete && busy == 0)
		complete = nv__queued(e) == 0 &&
			   nv_ring_size(e->prio) == 0 &&
			   __atomic_load_n(&e->backlog_n, __ATOMIC_ACQUIRE) == 0;
	nv__sched_stop(e);
	rc = nv__store_stop(e); /* flush and stop the persister */
	__atomic_store_n(&e->state, NV_ENG_STOPPED, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&e->life_mu);
	if (busy) {
		nv__warn("stop: %u job(s) still running after the %u ms grace "
			 "period; their results will be discarded",
			 busy, grace_ms);
		return NV_ETIMEDOUT;
	}
	if (!complete) {
		nv__warn("stop: jobs still queued after the %u ms grace period "
			 "were abandoned",
			 grace_ms);
		return NV_ETIMEDOUT;
	}
	return rc;
}

static void backlog_free(nv_engine *e);
static void orphans_free(nv_engine *e);

static void
drain_ring(nv_ring *r)
{
	void *p;
	while (r != NULL && nv_ring_try_pop(r, &p)) {
		nv_job *j = p;
		if (!(j->flags & NV_JOB_TRACKED))
			nv__job_release(j);
	}
}

void
nv_engine_close(nv_engine *e)
{
	if (e == NULL)
		return;
	if (e->state != NV_ENG_STOPPED && e->lane[0] != NULL)
		nv_engine_stop(e, 0);
	/* Workers still in a task function: give them a moment. */
	uint64_t end = nv__mono_ms() + 2000;
	for (unsigned i = 0; e->workers && i < e->nslots; i++) {
		struct nv_worker *w = &e->workers[i];
		while (__atomic_load_n(&w->state, __ATOMIC_ACQUIRE) == 1 &&
		       nv__mono_ms() < end) {
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
		}
		int st = __atomic_load_n(&w->state, __ATOMIC_ACQUIRE);
		if (st == 1) {
			nv__err("close: a task function never returned; the "
				"engine's memory is left allocated");
			return;
		}
		if (st == 2)
			pthread_join(nv__worker_thread(e, w), NULL);
	}
	nv__rcu_thread_online();
	for (unsigned i = 0; i < e->nlanes; i++)
		drain_ring(e->lane[i]);
	drain_ring(e->prio);
	backlog_free(e);
	nv__sched_free(e);
	nv__store_close(e);
	nv__jobs_fini(e);
	orphans_free(e);
	if (e->tasks != NULL)
		nv__registry_fini(e);
	for (unsigned i = 0; i < e->nlanes; i++)
		nv_ring_destroy(e->lane[i]);
	nv_ring_destroy(e->prio);
	for (unsigned i = 0; e->workers && i < e->nslots; i++)
		nv__free(e->workers[i].batch);
	nv__aligned_free(e->workers);
	pthread_mutex_destroy(&e->life_mu);
	pthread_mutex_destroy(&e->spawn_mu);
	nv__aligned_free(e);
}

int
nv_engine_observe(nv_engine *e, nv_observer_fn fn, void *arg)
{
	if (e == NULL || fn == NULL)
		return NV_EINVAL;
	if (e->state != NV_ENG_OPEN)
		return NV_EBUSY;
	if (e->nobs == NV_MAX_OBSERVERS)
		return NV_ENOMEM;
	e->obs_fn[e->nobs] = fn;
	e->obs_arg[e->nobs] = arg;
	e->nobs++;
	return 0;
}

void
nv__emit(nv_engine *e, nv_event_type type, nv_job_id id, struct nv_task *t,
	 unsigned attempt, uint64_t latency_ns, const char *error)
{
	nv_event ev;
	ev.type = type;
	ev.id = id;
	ev.task = t ? t->name : NULL;
	ev.attempt = attempt;
	ev.time_ms = nv__epoch_ms();
	ev.latency_ns = latency_ns;
	ev.error = error;
	for (unsigned i = 0; i < e->nobs; i++)
		e->obs_fn[i](&ev, e->obs_arg[i]);
}

int
nv_engine_stats(nv_engine *e, nv_stats *out)
{
	if (e == NULL || out == NULL)
		return NV_EINVAL;
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < NV_SHARDS; i++)
		out->enqueued += __atomic_load_n(&e->enqueued[i].v,
						 __ATOMIC_RELAXED);
	for (unsigned i = 0; i < e->nslots; i++) {
		struct nv_worker *w = &e->workers[i];
		out->started += __atomic_load_n(&w->started, __ATOMIC_RELAXED);
		out->succeeded +=
			__atomic_load_n(&w->succeeded, __ATOMIC_RELAXED);
		out->failed += __atomic_load_n(&w->failed, __ATOMIC_RELAXED);
		out->retried += __atomic_load_n(&w->retried, __ATOMIC_RELAXED);
		if (__atomic_load_n(&w->state, __ATOMIC_ACQUIRE) == 1) {
			out->workers++;
			if ((__atomic_load_n(&w->word, __ATOMIC_ACQUIRE) & 3) ==
			    NV_SLOT_RUNNING)
				out->running++;
		}
	}
	out->succeeded += __atomic_load_n(&e->t_succeeded, __ATOMIC_RELAXED);
	out->failed += __atomic_load_n(&e->t_failed, __ATOMIC_RELAXED);
	out->retried += __atomic_load_n(&e->t_retried, __ATOMIC_RELAXED);
	out->timed_out = __atomic_load_n(&e->t_timed_out, __ATOMIC_RELAXED);
	out->queued = nv__queued(e) + nv_ring_size(e->prio) +
		      __atomic_load_n(&e->backlog_n, __ATOMIC_RELAXED);
	out->results = __atomic_load_n(&e->nfinished, __ATOMIC_RELAXED);
	out->store_error = nv__store_error(e);
	return 0;
}

/* ---------------------------------------------------------------- backlog */

void
nv__backlog_push(nv_engine *e, nv_job *j)
{
	pthread_mutex_lock(&e->backlog_mu);
	if (e->back_n == e->back_cap) {
		size_t cap = e->back_cap ? e->back_cap * 2 : 1024;
		nv_job **p = nv__malloc(cap * sizeof(*p));
		if (p == NULL) {
			pthread_mutex_unlock(&e->backlog_mu);
			/* Keep the job: retry through the wheel instead. */
			nv__sched_retry(e, j, nv__mono_ms() + 1);
			return;
		}
		for (size_t i = 0; i < e->back_n; i++)
			p[i] = e->backlog[(e->back_head + i) % e->back_cap];
		nv__free(e->backlog);
		e->backlog = p;
		e->back_cap = cap;
		e->back_head = 0;
	}
	e->backlog[(e->back_head + e->back_n) % e->back_cap] = j;
	e->back_n++;
	__atomic_store_n(&e->backlog_n, e->back_n, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&e->backlog_mu);
	nv__notify_workers(e, 1);
}

size_t
nv__backlog_refill(nv_engine *e)
{
	size_t moved = 0;
	if (__atomic_load_n(&e->backlog_n, __ATOMIC_ACQUIRE) == 0)
		return 0;
	pthread_mutex_lock(&e->backlog_mu);
	while (e->back_n > 0) {
		nv_job *j = e->backlog[e->back_head];
		if (!nv__queue_try_push(e, j))
			break;
		e->back_head = (e->back_head + 1) % e->back_cap;
		e->back_n--;
		moved++;
	}
	__atomic_store_n(&e->backlog_n, e->back_n, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&e->backlog_mu);
	if (moved)
		nv__notify_workers(e, moved);
	return moved;
}

static void
backlog_free(nv_engine *e)
{
	for (size_t i = 0; i < e->back_n; i++) {
		nv_job *j = e->backlog[(e->back_head + i) % e->back_cap];
		if (!(j->flags & NV_JOB_TRACKED))
			nv__job_release(j);
	}
	nv__free(e->backlog);
	e->backlog = NULL;
	e->back_n = 0;
	pthread_mutex_destroy(&e->backlog_mu);
}

/* ---------------------------------------------------------------- orphans */

static int
orphan_fn(nv_ctx *c, const void *args, size_t len)
{
	(void)args;
	(void)len;
	nv_ctx_set_error(c, "task '%s' is not registered",
			 nv_ctx_task_name(c));
	return 1;
}

struct nv_task *
nv__orphan_task(nv_engine *e, const char *name)
{
	struct nv_task *t;
	size_t n = strlen(name);
	for (t = e->orphans; t != NULL; t = t->all_next)
		if (t->name_len == n && memcmp(t->name, name, n) == 0)
			return t;
	t = nv__calloc(1, sizeof(*t) + n + 1);
	if (t == NULL)
		return NULL;
	t->def = nv__calloc(1, sizeof(*t->def));
	if (t->def == NULL) {
		nv__free(t);
		return NULL;
	}
	t->def->fn = orphan_fn;
	t->engine = e;
	t->name_len = n;
	memcpy(t->name, name, n + 1);
	t->all_next = e->orphans;
	e->orphans = t;
	return t;
}

static void
orphans_free(nv_engine *e)
{
	while (e->orphans != NULL) {
		struct nv_task *t = e->orphans;
		e->orphans = t->all_next;
		nv__free(t->def);
		nv__free(t);
	}
}
