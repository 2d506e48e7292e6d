/*
 * worker.c - the worker pool, job execution and the task context.
 *
 * Each worker pops batches from the priority ring (scheduled jobs), then
 * its own lane of the queue, then the other lanes (engine_int.h), runs
 * them one by one and records the outcome. When every ring is empty it
 * spins briefly, then parks on the engine's not_empty
 * eventcount (~0% CPU when idle); dispatchers wake it after a push.
 *
 * A popped batch is published in the worker's slot (w->batch) and every
 * entry is claimed with an atomic exchange, by the owner going forward
 * or by an idle worker (steal(), before it parks; publishing a batch of
 * more than one wakes parked workers). So jobs popped together with a
 * long or never-returning job still run on the other workers, and each
 * job is claimed exactly once.
 *
 * Timeouts without a message or a clock read per job: before running a
 * job the worker writes the job and its timeout into its slot and
 * publishes the slot word (seq << 2 | RUNNING). While any worker runs a
 * job the scheduler samples the slots every few ms and times each
 * execution from the first sample that saw it (scheduler.c). When an
 * execution is still running past its timeout, the scheduler CASes the
 * word to TIMEDOUT and applies the policy; the worker's own CAS to IDLE at
 * the end of the job then fails and it discards the late result. Exactly
 * one side wins, so an outcome is recorded once.
 *
 * A timed-out function may never return. Its worker is then "stuck": the
 * scheduler starts a replacement (up to max_extra_workers) so the pool
 * keeps its strength, and the stuck worker exits when it finally returns
 * while the pool is at strength. The job record stays alive for the stuck
 * function's args through job->hold (see job.c).
 */
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "engine/engine_int.h"
#include "engine/persist_int.h"
#include "engine/recovery_int.h"
#include "lockfree/asym.h"
#include "lockfree/ring_int.h"

#define NV_SPIN_ROUNDS 200 /* idle polls before parking */

static inline uint64_t
word_of(uint64_t seq, unsigned state)
{
	return seq << 2 | state;
}

/* ---------------------------------------------------------------- ctx */

int
nv_ctx_set_result(nv_ctx *c, const void *buf, size_t len)
{
	void *copy;
	if (c == NULL || (buf == NULL && len != 0))
		return NV_EINVAL;
	if (c->def->opts.discard_result)
		return 0;
	if (nv_ctx_cancelled(c) &&
	    __atomic_load_n(&c->worker->word, __ATOMIC_ACQUIRE) !=
		    word_of(c->seq, NV_SLOT_RUNNING))
		return NV_ETIMEDOUT; /* late: the outcome is decided */
	if ((copy = nv__malloc(len)) == NULL)
		return NV_ENOMEM;
	if (len)
		memcpy(copy, buf, len);
	nv__free(c->result);
	c->result = copy;
	c->result_len = len;
	return 0;
}

int
nv_ctx_set_error(nv_ctx *c, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	if (c == NULL || fmt == NULL)
		return NV_EINVAL;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (c->hook_phase) {
		/* A failing hook is logged and reported, never fatal. */
		c->hook_failed = true;
		nv__warn("hook of task '%s' (job %llu) failed: %s",
			 c->job->task->name, (unsigned long long)c->job->id,
			 buf);
		nv__emit(c->engine, NV_EV_HOOK_FAILED, c->job->id,
			 c->job->task, c->attempt, 0, buf);
		return 0;
	}
	nv__free(c->error);
	c->error = nv__strdup(buf);
	return c->error ? 0 : NV_ENOMEM;
}

bool
nv_ctx_cancelled(const nv_ctx *c)
{
	if (c == NULL)
		return true;
	/* Acquire pairs with the scheduler's CAS to TIMEDOUT. */
	if (__atomic_load_n(&c->worker->word, __ATOMIC_ACQUIRE) !=
	    word_of(c->seq, NV_SLOT_RUNNING))
		return true;
	return __atomic_load_n(&c->engine->state, __ATOMIC_RELAXED) >=
	       NV_ENG_STOPPING;
}

nv_job_id
nv_ctx_job_id(const nv_ctx *c)
{
	return c ? c->job->id : 0;
}

unsigned
nv_ctx_attempt(const nv_ctx *c)
{
	/* Not c->job->attempt: a timed-out function still running reads
	 * this while a retry of its job increments that (a data race, and
	 * the wrong number). */
	return c ? c->attempt : 0;
}

const char *
nv_ctx_task_name(const nv_ctx *c)
{
	return c ? c->job->task->name : NULL;
}

nv_engine *
nv_ctx_engine(const nv_ctx *c)
{
	return c ? c->engine : NULL;
}

/* ---------------------------------------------------------------- outcome */

static uint32_t
retry_delay(nv_engine *e, struct nv_taskdef *def, unsigned attempt)
{
	uint64_t d = def->opts.retry_delay_ms ? def->opts.retry_delay_ms
					      : e->cfg.retry_delay_ms;
	if (def->opts.retry_backoff && d > 0) {
		/* Exponential backoff with full jitter in [d/2, d*2^k]. */
		unsigned k = attempt > 1 ? attempt - 1 : 0;
		if (k > 16)
			k = 16;
		uint64_t cap = d << k;
		uint64_t r = (nv__mono_ns() * 0x9e3779b97f4a7c15ULL) >> 33;
		d = d / 2 + r % (cap - d / 2 + 1);
		if (d > 3600000)
			d = 3600000;
	}
	return (uint32_t)d;
}

/* Final failure or retry of an attempt (worker or scheduler thread). */
static void
fail_attempt(nv_engine *e, nv_job *j, struct nv_taskdef *def, char *error,
	     bool may_retry, uint64_t *retried, uint64_t *failed)
{
	if (may_retry && j->attempt <= def->opts.retries) {
		uint32_t delay = retry_delay(e, def, j->attempt);
		__atomic_store_n(&j->status, NV_PENDING, __ATOMIC_RELEASE);
		if (e->persister != NULL)
			nv__persist_retry(e, j, error, delay);
		if (e->has_observers)
			nv__emit(e, NV_EV_RETRY, j->id, j->task, j->attempt, 0,
				 error);
		nv__free(error);
		NV_STAT_ADD(*retried, 1);
		if (delay == 0)
			nv__job_requeue(e, j);
		else /* rounded up: a retry never runs early */
			nv__sched_retry(e, j,
					(nv__mono_ns() + 999999) / 1000000 +
						delay);
		return;
	}
	if (j->flags & NV_JOB_TRACKED) {
		nv_jobx *x = nv__jobx(j);
		nv__free(x->error);
		x->error = error;
	}
	if (e->persister != NULL)
		nv__persist_failed(e, j, error);
	if (e->has_observers)
		nv__emit(e, NV_EV_FAILED, j->id, j->task, j->attempt, 0, error);
	if (!(j->flags & NV_JOB_TRACKED))
		nv__free(error);
	NV_STAT_ADD(*failed, 1);
	/* seq_cst: waiters re-check status after announcing themselves.
	 * Untracked jobs have no readers. */
	if (j->flags & NV_JOB_TRACKED)
		__atomic_store_n(&j->status, NV_FAILED, __ATOMIC_SEQ_CST);
	nv__job_finished(e, j);
}

static void
succeed(nv_engine *e, nv_job *j, void *result, size_t len)
{
	if (j->flags & NV_JOB_TRACKED) {
		nv_jobx *x = nv__jobx(j);
		x->result = result;
		x->result_len = len;
	} else {
		nv__free(result);
		result = NULL;
	}
	if (e->persister != NULL)
		nv__persist_succeeded(e, j, result, len);
	if (e->has_observers)
		nv__emit(e, NV_EV_SUCCEEDED, j->id, j->task, j->attempt, 0,
			 NULL);
	if (j->flags & NV_JOB_TRACKED)
		__atomic_store_n(&j->status, NV_SUCCESS, __ATOMIC_SEQ_CST);
	nv__job_finished(e, j);
}

/* Scheduler thread: the sampler saw w's execution `word` past its
 * deadline. */
void
nv__worker_timeout(nv_engine *e, struct nv_worker *w, uint64_t word)
{
	/* Relaxed: only trusted once the CAS below proves the word never
	 * left this execution (then this is its job). */
	nv_job *j = __atomic_load_n(&w->job, __ATOMIC_RELAXED);
	struct nv_taskdef *def;
	nv_timeout_policy pol;
	char msg[128];

	/* The job pointer read above belongs to this execution only if the
	 * word never left `word`: the CAS proves it (acq_rel pairs with the
	 * worker's release of the word). */
	if (!__atomic_compare_exchange_n(&w->word, &word,
					 (word & ~(uint64_t)3) |
						 NV_SLOT_TIMEDOUT,
					 false, __ATOMIC_ACQ_REL,
					 __ATOMIC_RELAXED))
		return;
	/* The stuck function may still read j's args: pin the record. */
	__atomic_fetch_add(&j->hold, 2, __ATOMIC_ACQ_REL);
	__atomic_fetch_add(&e->stuck, 1, __ATOMIC_ACQ_REL);
	NV_STAT_ADD(e->t_timed_out, 1);
	def = nv__task_def(j->task);
	pol = def->opts.timeout_policy ? def->opts.timeout_policy
				       : e->cfg.timeout_policy;
	if (pol == NV_TIMEOUT_DEFAULT)
		pol = NV_TIMEOUT_RETRY;
	snprintf(msg, sizeof(msg), "timed out after %llu ms",
		 (unsigned long long)(def->opts.timeout_ms
					      ? def->opts.timeout_ms
					      : e->cfg.job_timeout_ms));
	nv__warn("job %llu (task '%s', attempt %u) %s",
		 (unsigned long long)j->id, j->task->name, j->attempt, msg);
	if (e->has_observers)
		nv__emit(e, NV_EV_TIMEOUT, j->id, j->task, j->attempt, 0, msg);
	switch (pol) {
	case NV_TIMEOUT_IGNORE:
		NV_STAT_ADD(e->t_succeeded, 1);
		succeed(e, j, NULL, 0);
		break;
	case NV_TIMEOUT_FAIL:
		/* Final whatever retries the task has left. */
		fail_attempt(e, j, def, nv__strdup(msg), false, &e->t_retried,
			     &e->t_failed);
		break;
	default:
		fail_attempt(e, j, def, nv__strdup(msg), true, &e->t_retried,
			     &e->t_failed);
		break;
	}
	/* Keep the pool at strength while this worker is stuck. */
	unsigned live = __atomic_load_n(&e->live, __ATOMIC_ACQUIRE);
	unsigned stuck = __atomic_load_n(&e->stuck, __ATOMIC_ACQUIRE);
	if (live - stuck < e->nworkers)
		nv__worker_spawn(e);
}

/* ---------------------------------------------------------------- run */

static void
run_hook(nv_ctx *c, void (*fn)(nv_ctx *))
{
	if (fn == NULL)
		return;
	c->hook_phase = true;
	fn(c);
	c->hook_phase = false;
}

/* Returns false when this worker must exit (it came back from a stuck
 * execution and the pool is at strength without it). */
static bool
run_job(nv_engine *e, struct nv_worker *w, nv_job *j, uint64_t *seqp)
{
	struct nv_taskdef *def = nv__task_def(j->task);
	uint64_t seq = ++*seqp;
	uint32_t tmo = def->opts.timeout_ms ? def->opts.timeout_ms
					    : e->cfg.job_timeout_ms;
	nv_ctx c;
	int rc;

	/* Read what the rest of the execution needs from the job now: once
	 * the word below says RUNNING, the scheduler may time this
	 * execution out and hand the job to a retry on another worker,
	 * which writes attempt and enq_ns. */
	unsigned attempt = ++j->attempt;
	uint64_t wait_ns = e->has_observers ? nv__mono_ns() - j->enq_ns : 0;
	/* Only tracked jobs have readers of their status (the job table). */
	if (j->flags & NV_JOB_TRACKED) {
		__atomic_store_n(&j->status, NV_RUNNING, __ATOMIC_RELEASE);
		nv__jobx(j)->started_ms = nv__epoch_ms();
	}
	/* No clock read per job: the scheduler samples the slot and times
	 * the execution from when it first saw it (scheduler.c,
	 * "Timeouts"). Relaxed job: published by the seq_cst store of the
	 * word below. Release tmo: a sampler that reads this value also sees
	 * every earlier word of this slot (it re-reads the word after). */
	__atomic_store_n(&w->job, j, __ATOMIC_RELAXED);
	__atomic_store_n(&w->tmo_ms, tmo, __ATOMIC_RELEASE);
	/* Store the word, then load watch_off: the frequent half of an
	 * asymmetric Dekker pair with the scheduler, which stores watch_off
	 * and re-reads the words behind a membarrier when it stops sampling
	 * (lockfree/asym.h), so a running job is never left unwatched. With
	 * membarrier the word is a release store (it publishes job and tmo
	 * to the scheduler's acquire loads and CAS) and only the compiler
	 * may not reorder the pair; without it, seq_cst store and load. */
	bool watch_off;
	if (nv__asym_ok) {
		__atomic_store_n(&w->word, word_of(seq, NV_SLOT_RUNNING),
				 __ATOMIC_RELEASE);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		watch_off = __atomic_load_n(&e->watch_off, __ATOMIC_RELAXED);
	} else {
		__atomic_store_n(&w->word, word_of(seq, NV_SLOT_RUNNING),
				 __ATOMIC_SEQ_CST);
		watch_off = __atomic_load_n(&e->watch_off, __ATOMIC_SEQ_CST);
	}
	if (watch_off)
		nv__sched_watch(e);
	NV_STAT_ADD(w->started, 1);
	if (e->persister != NULL)
		nv__persist_started(e, j);
	if (e->has_observers)
		nv__emit(e, NV_EV_STARTED, j->id, j->task, attempt, wait_ns,
			 NULL);

	memset(&c, 0, sizeof(c));
	c.engine = e;
	c.worker = w;
	c.job = j;
	c.def = def;
	c.seq = seq;
	c.attempt = attempt;
	run_hook(&c, def->opts.before_job);
	rc = def->fn(&c, nv__job_args(j), j->args_len);

	uint64_t expect = word_of(seq, NV_SLOT_RUNNING);
	/* Release: our writes to the job happen before the slot is idle;
	 * acquire on failure: the scheduler's outcome is visible. */
	if (!__atomic_compare_exchange_n(&w->word, &expect,
					 word_of(seq, NV_SLOT_IDLE), false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		/* Timed out: the scheduler recorded the outcome. Discard
		 * the late result and let go of the record. */
		nv__free(c.result);
		nv__free(c.error);
		/* Back to IDLE: a slot left at TIMEDOUT reads as busy, and a
		 * worker that stays in the pool (no replacement was started
		 * for it) would make every later stop wait out its grace
		 * period and return NV_ETIMEDOUT. Only the scheduler CASes
		 * the word, and only from RUNNING. */
		__atomic_store_n(&w->word, word_of(seq, NV_SLOT_IDLE),
				 __ATOMIC_RELEASE);
		if (__atomic_fetch_sub(&j->hold, 2, __ATOMIC_ACQ_REL) == 3)
			nv__job_free(j);
		unsigned stuck =
			__atomic_sub_fetch(&e->stuck, 1, __ATOMIC_ACQ_REL);
		unsigned live = __atomic_load_n(&e->live, __ATOMIC_ACQUIRE);
		return live - stuck <= e->nworkers;
	}
	if (rc == 0) {
		run_hook(&c, def->opts.after_job);
		NV_STAT_ADD(w->succeeded, 1);
		nv__free(c.error);
		succeed(e, j, c.result, c.result_len);
	} else {
		char *err = c.error;
		if (err == NULL) {
			char buf[64];
			snprintf(buf, sizeof(buf), "task returned %d", rc);
			err = nv__strdup(buf);
		}
		if (def->opts.on_error != NULL) {
			c.hook_phase = true;
			def->opts.on_error(&c, err ? err : "error");
			c.hook_phase = false;
		}
		nv__free(c.result);
		fail_attempt(e, j, def, err, true, &w->retried, &w->failed);
	}
	return true;
}

/* ---------------------------------------------------------------- loop */

/* A fair share of lane r: leave work for the other workers. */
static size_t
pop_lane(nv_engine *e, nv_ring *r, nv_job **buf)
{
	return nv__ring_pop_share(r, (void **)buf, e->batch, e->nworkers);
}

/* Priority ring, then the worker's own lane, then the other lanes. */
static size_t
pop_batch(nv_engine *e, struct nv_worker *w, nv_job **buf)
{
	size_t n = nv_ring_pop_bulk(e->prio, (void **)buf, e->batch);
	unsigned own = w->index & (e->nlanes - 1);
	if (n)
		return n;
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned k = 0; k < e->nlanes; k++) {
			nv_ring *r = e->lane[(own + k) & (e->nlanes - 1)];
			if ((n = pop_lane(e, r, buf)) != 0)
				return n;
		}
		/* Empty: move what the persistent backlog holds in. */
		if (nv__backlog_refill(e) == 0)
			break;
	}
	return 0;
}

/* An idle worker takes one job that another worker popped but has not
 * started (that owner may be inside a long or stuck job). Entries are
 * scanned from the end: the owner claims from the front. */
static nv_job *
steal(nv_engine *e, struct nv_worker *self)
{
	for (unsigned k = 0; k < e->nslots; k++) {
		struct nv_worker *v = &e->workers[k];
		if (v == self)
			continue;
		/* A stale count only bounds the scan: entries past the
		 * latest batch are NULL (all claimed). */
		uint32_t n = __atomic_load_n(&v->batch_n, __ATOMIC_ACQUIRE);
		for (uint32_t i = n; i-- > 0;) {
			if (__atomic_load_n(&v->batch[i], __ATOMIC_RELAXED) ==
			    NULL)
				continue;
			/* Acquire pairs with the owner's release store of
			 * the entry: the job record is visible. */
			nv_job *j = __atomic_exchange_n(&v->batch[i], NULL,
							__ATOMIC_ACQ_REL);
			if (j != NULL)
				return j;
		}
	}
	return NULL;
}

/* Exiting (after a stuck run, or stopping): hands an unstarted job back
 * to the ring for the others (to the scheduler when the ring is full or
 * the engine stopping; leftovers are freed at close). */
static void
give_back(nv_engine *e, nv_job *j)
{
	size_t pushed = 0;
	nv__queue_push_wait(e, &j, 1, &pushed);
	if (pushed == 0)
		nv__sched_retry(e, j, nv__mono_ms() + 1);
	else
		nv__notify_workers(e, 1);
}

static void
set_holding(struct nv_worker *w, uint32_t v)
{
#ifdef NUVOM_TSAN
	/* TSan does not take fences: a seq_cst store and RMW instead. */
	__atomic_store_n(&w->holding, v, __ATOMIC_SEQ_CST);
	(void)nv__dekker_load(&w->holding);
#else
	if (v == 0) {
		/* Release: a steal from this worker's batch (whose exchange
		 * our own claim of that entry read) happens before a
		 * drained() that reads this 0, so its second pass sees the
		 * thief's holding (engine.c). */
		__atomic_store_n(&w->holding, 0, __ATOMIC_RELEASE);
		return;
	}
	__atomic_store_n(&w->holding, 1, __ATOMIC_RELAXED);
	/* Release fence: the store above happens before this worker's next
	 * ring pop (a relaxed CAS of the ring's head, or an exchange), so
	 * drained(), whose acquire load of that head reads the pop (or a
	 * later RMW of its release sequence), then sees holding == 1. A
	 * compiler barrier on x86: no locked instruction per pop. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
#endif
}

/* Pops with `holding` raised first (so that drained() never sees an
 * empty ring and an empty-handed worker while this pop is in flight), and
 * lowered again when nothing came: an idle, spinning worker holds
 * nothing and does not delay a stop. */
static size_t
pop_held(nv_engine *e, struct nv_worker *w, nv_job **buf)
{
	set_holding(w, 1);
	size_t n = pop_batch(e, w, buf);
	if (n == 0)
		set_holding(w, 0);
	return n;
}

static void *
worker_main(void *arg)
{
	struct nv_worker *w = arg;
	nv_engine *e = w->engine;
	nv_job *buf[4096];
	uint64_t seq = __atomic_load_n(&w->word, __ATOMIC_RELAXED) >> 2;
	bool stay = true;

	nv__rcu_thread_online();
	if (e->cfg.pin_workers) {
		cpu_set_t set;
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		CPU_ZERO(&set);
		CPU_SET(w->index % (unsigned)(ncpu > 0 ? ncpu : 1), &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	while (stay) {
		nv_job *j = NULL;
		/* Stopping: no new job (stop has waited out its grace period
		 * or everything is done; what is still queued is
		 * abandoned). */
		if (__atomic_load_n(&e->quit, __ATOMIC_ACQUIRE))
			break;
		size_t n = pop_held(e, w, buf);
		if (n == 0) {
			if (__atomic_load_n(&e->quit, __ATOMIC_ACQUIRE))
				break;
			for (int i = 0; i < NV_SPIN_ROUNDS && n == 0; i++) {
				nv__cpu_relax();
				if (i % 32 == 31)
					sched_yield();
				n = pop_held(e, w, buf);
			}
			if (n == 0) {
				/* Heavy half: dispatchers notify with the
				 * light one (lockfree/park.h). */
				int64_t cap_ms;
				uint32_t key = nv__ec_prepare_heavy(
				    &e->not_empty, &cap_ms);
				n = pop_held(e, w, buf);
				if (n == 0) {
					set_holding(w, 1);
					j = steal(e, w);
					if (j == NULL)
						set_holding(w, 0);
				}
				if (n != 0 || j != NULL ||
				    __atomic_load_n(&e->quit, __ATOMIC_ACQUIRE)) {
					nv__ec_cancel(&e->not_empty);
				} else {
					/* Empty-handed (holding is 0): stop
					 * may count this worker out. */
					nv__ec_notify(&e->done, INT_MAX);
					nv__ec_wait(&e->not_empty, key, cap_ms);
					continue;
				}
				if (j != NULL) {
					stay = run_job(e, w, j, &seq);
					continue;
				}
				if (n == 0)
					break;
			}
		}
		/* Room appeared: wake a producer blocked on a full ring. */
		nv__ec_notify_light(&e->not_full, (int)n);
		/* Publish the batch; parked workers may take part of it. */
		for (size_t i = 0; i < n; i++)
			/* Release: pairs with the exchange in steal(). */
			__atomic_store_n(&w->batch[i], buf[i],
					 __ATOMIC_RELEASE);
		__atomic_store_n(&w->batch_n, (uint32_t)n, __ATOMIC_RELEASE);
		if (n > 1)
			nv__ec_notify_light(&e->not_empty, (int)(n - 1));
		for (size_t i = 0; i < n; i++) {
			/* The records were written on the dispatcher's core:
			 * fetch the next one while this one runs (a stolen
			 * entry makes it a harmless extra prefetch). */
			if (i + 1 < n) {
				__builtin_prefetch(buf[i + 1], 1, 3);
				__builtin_prefetch((char *)buf[i + 1] + 64, 1, 3);
			}
			/* Claim entry i (NULL: an idle worker took it). */
			j = __atomic_exchange_n(&w->batch[i], NULL,
						__ATOMIC_ACQ_REL);
			if (j == NULL)
				continue;
			/* Stopping: hand the rest of the batch back rather
			 * than keep stop waiting for it. */
			if (stay &&
			    !__atomic_load_n(&e->quit, __ATOMIC_ACQUIRE))
				stay = run_job(e, w, j, &seq);
			else
				give_back(e, j);
		}
	}
	__atomic_store_n(&w->word, word_of(seq + 1, NV_SLOT_IDLE),
			 __ATOMIC_RELEASE);
	set_holding(w, 0);
	__atomic_sub_fetch(&e->live, 1, __ATOMIC_ACQ_REL);
	__atomic_store_n(&w->state, 2, __ATOMIC_RELEASE);
	nv__ec_notify(&e->done, INT_MAX);
	return NULL;
}

/* Called with e->spawn_mu held. */
static int
start_in_slot(nv_engine *e, struct nv_worker *w)
{
	int rc;
	w->engine = e;
	/* Holding until it first parks: its first pops come before any
	 * set_holding of its own (see drained() in engine.c). */
	__atomic_store_n(&w->holding, 1, __ATOMIC_SEQ_CST);
	/* The slot reads live (state 1) before pthread_create has written
	 * w->thread: spawn_mu keeps joiners off until it has
	 * (nv__worker_thread). */
	__atomic_store_n(&w->state, 1, __ATOMIC_RELEASE);
	__atomic_add_fetch(&e->live, 1, __ATOMIC_ACQ_REL);
	rc = pthread_create(&w->thread, NULL, worker_main, w);
	if (rc != 0) {
		__atomic_sub_fetch(&e->live, 1, __ATOMIC_ACQ_REL);
		__atomic_store_n(&w->state, 0, __ATOMIC_RELEASE);
		return NV_ENOMEM;
	}
	return 0;
}

int
nv__workers_start(nv_engine *e)
{
	int rc = 0;
	pthread_mutex_lock(&e->spawn_mu);
	for (unsigned i = 0; rc == 0 && i < e->nworkers; i++)
		rc = start_in_slot(e, &e->workers[i]);
	pthread_mutex_unlock(&e->spawn_mu);
	return rc;
}

pthread_t
nv__worker_thread(nv_engine *e, struct nv_worker *w)
{
	pthread_t t;
	pthread_mutex_lock(&e->spawn_mu);
	t = w->thread;
	pthread_mutex_unlock(&e->spawn_mu);
	return t;
}

int
nv__worker_spawn(nv_engine *e)
{
	int rc = NV_EBUSY;
	/* The whole scan under spawn_mu: nv_engine_stop joins exited
	 * workers under it too, so a slot is never joined twice (a second
	 * pthread_join of a thread is undefined; it hung). No replacement
	 * once stopping: stop may already have passed that slot. */
	pthread_mutex_lock(&e->spawn_mu);
	if (__atomic_load_n(&e->quit, __ATOMIC_ACQUIRE)) {
		pthread_mutex_unlock(&e->spawn_mu);
		return NV_ESTOPPED;
	}
	for (unsigned i = 0; i < e->nslots; i++) {
		struct nv_worker *w = &e->workers[i];
		int st = __atomic_load_n(&w->state, __ATOMIC_ACQUIRE);
		if (st == 2) {
			pthread_join(w->thread, NULL);
			__atomic_store_n(&w->state, 0, __ATOMIC_RELEASE);
			st = 0;
		}
		if (st == 0) {
			nv__info("starting a replacement worker (slot %u)", i);
			rc = start_in_slot(e, w);
			break;
		}
	}
	pthread_mutex_unlock(&e->spawn_mu);
	if (rc == NV_EBUSY)
		nv__warn("all %u worker slots busy: no replacement for a "
			 "stuck worker (raise max_extra_workers)",
			 e->nslots);
	return rc;
}

void
nv__job_requeue(nv_engine *e, nv_job *j)
{
	if (e->has_observers)
		j->enq_ns = nv__mono_ns();
	if (!((j->flags & NV_JOB_SCHEDULED) ? nv_ring_try_push(e->prio, j)
					     : nv__queue_try_push(e, j))) {
		/* Full: the job waits in the backlog, which workers move
		 * into the ring as it drains (never block the scheduler). */
		nv__backlog_push(e, j);
		return;
	}
	nv__notify_workers(e, 1);
}
