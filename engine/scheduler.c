/*
 * scheduler.c - the scheduler thread: owner of the engine's timer wheel.
 *
 * The wheel (lockfree/wheel.c) holds delayed retries, the
 * timeout sampler and the schedules (schedule.c). It is touched only by
 * this thread. Other threads talk to it through:
 *  - an MPSC inbox (liburcu wfcqueue) of messages: "retry job j at t",
 *    schedule add/cancel;
 *  - a poke flag (a worker started a job while timeout sampling was off),
 *    so the hot path sends no message.
 * Both are followed by a notify on the scheduler's eventcount.
 *
 * The thread sleeps until the wheel's next deadline or a notify.
 *
 * Timeouts. A worker does not read the clock per job: it publishes the
 * job's timeout and its slot word (seq << 2 | RUNNING) and nothing else.
 * While any worker runs a job, a periodic timer of this thread (the
 * sampler, every NV_WATCH_MS) reads every slot. An execution is timed from
 * the first sample that saw it running: that instant is after the job
 * started, so a timeout never fires early, and at most one period plus
 * one tick late. When every slot is idle the sampler stops: it stores
 * watch_off = 1, passes a membarrier (lockfree/asym.h) and re-reads the
 * words; a worker stores its word then loads watch_off with only a
 * compiler barrier between (seq_cst on both sides where membarrier is
 * missing). One of the two sees the other (an asymmetric Dekker pair):
 * either the sampler finds the new RUNNING word and goes on, or the
 * worker finds sampling off, clears it and pokes this thread, which
 * restarts the sampler. It stops after NV_WATCH_LINGER idle samples
 * (100 ms): an idle engine has no sampling and no wake-ups. Busy engine:
 * 1000/NV_WATCH_MS short wake-ups a second instead of a clock read (~26 ns
 * here) and a locked instruction on every job.
 */
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "engine/engine_int.h"
#include "engine/sched_int.h"
#include "lockfree/asym.h"

static __thread bool on_sched_thread;

#define NV_SCHED_MAX_SLEEP_MS 3600000ll /* longest single wait */
#define NV_WATCH_MS 2 /* timeout sampling period while jobs run */
#define NV_WATCH_LINGER 50 /* idle samples (100 ms) before it stops */

/* ThreadSanitizer cannot see liburcu's inline-asm atomics, so it would
 * take every hand-off through the inbox for a race. In TSan builds the
 * inbox operations run under one mutex, which TSan understands; release
 * builds stay lock-free. */
#ifdef NUVOM_TSAN
static pthread_mutex_t inbox_tsan_mu = PTHREAD_MUTEX_INITIALIZER;
#define INBOX_LOCK() pthread_mutex_lock(&inbox_tsan_mu)
#define INBOX_UNLOCK() pthread_mutex_unlock(&inbox_tsan_mu)
#else
#define INBOX_LOCK() ((void)0)
#define INBOX_UNLOCK() ((void)0)
#endif

static struct cds_wfcq_node *
inbox_pop(struct nv_sched_state *s)
{
	struct cds_wfcq_node *n;
	INBOX_LOCK();
	/* Single consumer: the non-locking dequeue is allowed. */
	n = __cds_wfcq_dequeue_blocking(&s->head, &s->tail);
	INBOX_UNLOCK();
	return n;
}

static bool
inbox_empty(struct nv_sched_state *s)
{
	bool empty;
	INBOX_LOCK();
	empty = cds_wfcq_empty(&s->head, &s->tail);
	INBOX_UNLOCK();
	return empty;
}

static void
post(nv_engine *e, struct nv_msg *m)
{
	struct nv_sched_state *s = e->sched;
	cds_wfcq_node_init(&m->node);
	INBOX_LOCK();
	cds_wfcq_enqueue(&s->head, &s->tail, &m->node);
	INBOX_UNLOCK();
	nv__ec_notify(&s->ec, 1);
}

/* A delayed retry is due: its message (which carried the timer) goes. */
static void
retry_fire(nv_timer *t, void *arg)
{
	struct nv_msg *m = arg;
	nv_job *j = m->job;
	nv_engine *e = j->task->engine;
	(void)t;
	nv__free(m);
	if (e->sched->draining) {
		nv__sched_leftover(e, j);
		return;
	}
	nv__job_requeue(e, j);
}

/* Scheduler thread: puts retry message m on the wheel (the message owns
 * the timer, so a job record needs none), or hands the job over as a
 * leftover when stopping. */
static void
retry_arm(struct nv_sched_state *s, struct nv_msg *m)
{
	nv_timer_init(&m->timer, retry_fire, m);
	if (s->draining || nv_wheel_add(s->wheel, &m->timer, m->due) != 0) {
		nv__sched_leftover(m->job->task->engine, m->job);
		nv__free(m);
	}
}

void
nv__sched_retry(nv_engine *e, nv_job *j, uint64_t due)
{
	struct nv_sched_state *s = e->sched;
	struct nv_msg *m = nv__malloc(sizeof(*m));
	if (m == NULL) {
		/* Out of memory for a message: run the retry at once rather
		 * than lose the job. */
		nv__err("no memory to delay the retry of job %llu; "
			"requeueing now",
			(unsigned long long)j->id);
		nv__job_requeue(e, j);
		return;
	}
	m->kind = NV_MSG_RETRY;
	m->job = j;
	m->due = due;
	if (on_sched_thread)
		retry_arm(s, m);
	else
		post(e, m);
}

void
nv__sched_post(nv_engine *e, struct nv_msg *m)
{
	post(e, m);
}

void
nv__sched_watch(nv_engine *e)
{
	struct nv_sched_state *s = e->sched;
	/* One poke per restart: the worker that clears the flag. */
	uint32_t one = 1;
	if (!__atomic_compare_exchange_n(&e->watch_off, &one, 0, false,
					 __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
		return;
	__atomic_store_n(&s->poke, 1, __ATOMIC_RELEASE);
	nv__ec_notify(&s->ec, 1);
}

/* Samples slot w at `now`; returns true when it runs a job. */
static bool
sample(nv_engine *e, unsigned i, uint64_t now)
{
	struct nv_sched_state *s = e->sched;
	struct nv_worker *w = &e->workers[i];
	/* Acquire word, acquire tmo, re-read word: a tmo read between two
	 * equal words belongs to that execution (the worker stores tmo with
	 * release before its seq_cst word store; a tmo of a later execution
	 * would make the re-read see the later word). */
	uint64_t word = __atomic_load_n(&w->word, __ATOMIC_ACQUIRE);
	if ((word & 3) != NV_SLOT_RUNNING) {
		s->seen[i] = 0;
		return false;
	}
	uint32_t tmo = __atomic_load_n(&w->tmo_ms, __ATOMIC_ACQUIRE);
	if (__atomic_load_n(&w->word, __ATOMIC_RELAXED) != word) {
		s->seen[i] = 0; /* moved on: time the next one afresh */
		return true;
	}
	if (s->seen[i] != word) {
		/* First sight: the job started before now, so now + tmo is
		 * never early. */
		s->seen[i] = word;
		s->due[i] = now + tmo;
	} else if (now >= s->due[i]) {
		nv__worker_timeout(e, w, word);
		s->seen[i] = 0;
	}
	return true;
}

static bool
any_running(nv_engine *e)
{
	for (unsigned i = 0; i < e->nslots; i++)
		if ((__atomic_load_n(&e->workers[i].word, __ATOMIC_SEQ_CST) &
		     3) == NV_SLOT_RUNNING)
			return true;
	return false;
}

static void
watch_fire(nv_timer *t, void *arg)
{
	nv_engine *e = arg;
	struct nv_sched_state *s = e->sched;
	uint64_t now = nv__mono_ms();
	bool busy = false;
	for (unsigned i = 0; i < e->nslots; i++)
		busy |= sample(e, i, now);
	/* Linger: keep sampling a little after the last job, so bursty
	 * traffic does not pay a poke (a futex wake-up on the worker, before
	 * its job starts) at the head of every burst. */
	s->idle_samples = busy ? 0 : s->idle_samples + 1;
	if (!busy && s->idle_samples >= NV_WATCH_LINGER) {
		/* Stop sampling, then look again (the Dekker half above):
		 * a job that started meanwhile keeps the sampler going. */
		__atomic_store_n(&e->watch_off, 1, __ATOMIC_SEQ_CST);
		/* The rare half of the asymmetric Dekker pair (worker.c):
		 * after it, a worker's RUNNING store is visible or that
		 * worker will see watch_off. If the barrier could not be
		 * forced, keep sampling. */
		if (nv__asym_heavy() && !any_running(e)) {
			s->watching = false;
			return;
		}
		/* Clear it again unless a worker already did (and poked:
		 * that poke finds the sampler running). */
		uint32_t one = 1;
		__atomic_compare_exchange_n(&e->watch_off, &one, 0, false,
					    __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
	}
	nv_wheel_add(s->wheel, t, now + NV_WATCH_MS);
}

static void
watch_start(nv_engine *e)
{
	struct nv_sched_state *s = e->sched;
	if (s->watching || s->draining)
		return;
	s->watching = true;
	s->idle_samples = 0;
	nv_wheel_add(s->wheel, &s->watch, nv__mono_ms() + NV_WATCH_MS);
}

static void
handle(nv_engine *e, struct nv_msg *m)
{
	struct nv_sched_state *s = e->sched;
	switch (m->kind) {
	case NV_MSG_RETRY:
		retry_arm(s, m); /* m lives on with its timer */
		break;
	default:
		nv__schedule_msg(e, m); /* schedule.c frees it */
		break;
	}
}

static bool
drain_inbox(nv_engine *e)
{
	struct nv_sched_state *s = e->sched;
	struct cds_wfcq_node *n;
	bool any = false;
	while ((n = inbox_pop(s)) != NULL) {
		handle(e, caa_container_of(n, struct nv_msg, node));
		any = true;
	}
	if (__atomic_exchange_n(&s->poke, 0, __ATOMIC_ACQ_REL)) {
		watch_start(e);
		any = true;
	}
	return any;
}

static void *
sched_main(void *arg)
{
	nv_engine *e = arg;
	struct nv_sched_state *s = e->sched;

	on_sched_thread = true;
	nv__rcu_thread_online();
	nv_timer_init(&s->watch, watch_fire, e);
	while (!__atomic_load_n(&s->quit, __ATOMIC_ACQUIRE)) {
		drain_inbox(e);
		nv_wheel_advance(s->wheel, nv__mono_ms());
		uint32_t key = nv__ec_prepare(&s->ec);
		if (!inbox_empty(s) ||
		    __atomic_load_n(&s->poke, __ATOMIC_ACQUIRE) ||
		    __atomic_load_n(&s->quit, __ATOMIC_ACQUIRE)) {
			nv__ec_cancel(&s->ec);
			continue;
		}
		uint64_t next = nv_wheel_next_deadline(s->wheel);
		uint64_t now_ns = nv__mono_ns(), now = now_ns / 1000000;
		if (next == UINT64_MAX)
			nv__ec_wait(&s->ec, key, -1);
		else if (next > now)
			/* Until the deadline's tick itself, counted from now_ns
			 * (counted from the start of the current millisecond,
			 * it woke up to 1 ms late). At most an hour at a time:
			 * a deadline centuries out (timers go up to 2^63 ms)
			 * overflowed the microseconds into a busy loop. */
			nv__ec_wait_us(&s->ec, key,
				       next - now < NV_SCHED_MAX_SLEEP_MS
					       ? (int64_t)(next * 1000000 - now_ns +
							   999) / 1000
					       : NV_SCHED_MAX_SLEEP_MS * 1000);
		else
			nv__ec_cancel(&s->ec);
	}
	/* Stopping: everything still delayed is handed back (leftovers). */
	s->draining = true;
	if (s->watching)
		nv_wheel_cancel(s->wheel, &s->watch);
	s->watching = false;
	nv__schedules_stop(e);
	drain_inbox(e);
	nv_wheel_advance(s->wheel, (uint64_t)1 << 62);
	return NULL;
}

void
nv__sched_leftover(nv_engine *e, nv_job *j)
{
	struct nv_sched_state *s = e->sched;
	nv_job **p = nv__grow(s->left, &s->capleft, s->nleft, sizeof(*p), 64);
	if (p == NULL) {
		nv__err("out of memory keeping delayed job %llu",
			(unsigned long long)j->id);
		return;
	}
	s->left = p;
	s->left[s->nleft++] = j;
}

int
nv__sched_init(nv_engine *e)
{
	struct nv_sched_state *s = nv__aligned_alloc(NV_CL, sizeof(*s));
	int rc;
	if (s == NULL)
		return NV_ENOMEM;
	if ((rc = nv_wheel_create(&s->wheel, nv__mono_ms())) != 0) {
		nv__aligned_free(s);
		return rc;
	}
	cds_wfcq_init(&s->head, &s->tail);
	e->sched = s;
	s->seen = nv__calloc(e->nslots, sizeof(*s->seen));
	s->due = nv__calloc(e->nslots, sizeof(*s->due));
	if (s->seen == NULL || s->due == NULL) {
		nv__sched_free(e);
		return NV_ENOMEM;
	}
	if ((rc = nv__schedules_init(e)) != 0) {
		nv__sched_free(e);
		return rc;
	}
	return 0;
}

int
nv__sched_start(nv_engine *e)
{
	struct nv_sched_state *s = e->sched;
	if (pthread_create(&s->thread, NULL, sched_main, e) != 0)
		return NV_ENOMEM;
	s->started = true;
	return 0;
}

void
nv__sched_stop(nv_engine *e)
{
	struct nv_sched_state *s = e->sched;
	if (s == NULL || !s->started)
		return;
	__atomic_store_n(&s->quit, 1, __ATOMIC_RELEASE);
	nv__ec_notify(&s->ec, 1);
	pthread_join(s->thread, NULL);
	s->started = false;
}

void
nv__sched_free(nv_engine *e)
{
	struct nv_sched_state *s = e->sched;
	if (s == NULL)
		return;
	/* Untracked leftovers are freed here; tracked ones belong to the
	 * job table (freed with it). */
	for (size_t i = 0; i < s->nleft; i++)
		if (!(s->left[i]->flags & NV_JOB_TRACKED))
			nv__job_release(s->left[i]);
	nv__free(s->left);
	/* Messages never handled (engine never started). */
	struct cds_wfcq_node *n;
	while ((n = inbox_pop(s)) != NULL) {
		struct nv_msg *m = caa_container_of(n, struct nv_msg, node);
		if (m->kind == NV_MSG_RETRY) {
			if (!(m->job->flags & NV_JOB_TRACKED))
				nv__job_release(m->job);
			nv__free(m);
		} else {
			nv__schedule_msg_free(e, m);
		}
	}
	nv__schedules_free(e);
	nv_wheel_destroy(s->wheel);
	cds_wfcq_destroy(&s->head, &s->tail);
	nv__free(s->seen);
	nv__free(s->due);
	nv__aligned_free(s);
	e->sched = NULL;
}
