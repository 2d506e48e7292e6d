/*
 * pump.c - an engine over plugin queue and result backends.
 *
 * Built-in backend names keep the fast path (ring + write-behind persister,
 * store.c). When cfg.queue_backend names a registered plugin, dispatch
 * hands each job to the backend instead of the ring (nv__pump_submit), and
 * one pump thread moves jobs from the backend into the ring:
 *
 *   nv_delay/nv_map -> job record (table, PENDING) -> `handed` map by id
 *                   -> nv_queue_enqueue(msg)
 *   pump thread     -> pop_batch up to the ring's free room (dequeue with a
 *                      timeout when the backend is empty; the backend's
 *                      enqueue wakes it) -> record by id from `handed`, or
 *                      a new record for an id this engine never saw
 *                      (another producer enqueued it) -> ring -> workers
 *
 * The pump waits on the engine's not_full eventcount while the ring has no
 * room (workers notify it after each pop), so the backend keeps the
 * backlog, not the process. Waits are bounded (PUMP_WAIT_MS) so that the
 * pump notices the engine's quit even if a plugin's dequeue does not wake.
 * Retries and schedules go straight to the ring as with every backend.
 * At stop (after the workers left) jobs still in the ring go back to the
 * backend, so a persistent plugin queue keeps them.
 *
 * With a plugin result backend every finished tracked job's result or
 * error goes to set_result/set_error from nv__job_finished (the engine's
 * table keeps it too, up to the retention), and nv_job_status/result/
 * error/wait fall back to the backend for ids the table does not hold.
 * Jobs of discard_result tasks store nothing and are not sent.
 *
 * Threads: submit from any dispatching thread; the map is under a mutex
 * (not the hot path: plugin dispatch costs a backend call anyway).
 */
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "engine/recovery_int.h"
#include "engine/store_int.h"

#define PUMP_WAIT_MS 50
#define PUMP_BATCH 256

struct nv_pump {
	pthread_mutex_t mu; /* handed */
	nv_job **tab;	    /* open addressing by id, NULL = empty, TOMB */
	size_t cap, used, live;
	pthread_t thread;
	bool started;
	int holding; /* atomic: popped messages not yet in the ring */
};

static nv_job tomb_;
#define TOMB (&tomb_)

static size_t
hslot(uint64_t id, size_t cap)
{
	id ^= id >> 29;
	id *= 0xbf58476d1ce4e5b9ULL;
	return (size_t)(id >> 20) & (cap - 1);
}

static int
map_put(struct nv_pump *p, nv_job *j)
{
	if ((p->used + 1) * 2 > p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 256;
		while (p->live * 4 > ncap)
			ncap *= 2;
		nv_job **nt = nv__calloc(ncap, sizeof(*nt));
		if (nt == NULL)
			return NV_ENOMEM;
		for (size_t i = 0; i < p->cap; i++) {
			nv_job *x = p->tab[i];
			if (x == NULL || x == TOMB)
				continue;
			size_t k = hslot(x->id, ncap);
			while (nt[k] != NULL)
				k = (k + 1) & (ncap - 1);
			nt[k] = x;
		}
		nv__free(p->tab);
		p->tab = nt;
		p->cap = ncap;
		p->used = p->live;
	}
	size_t k = hslot(j->id, p->cap);
	while (p->tab[k] != NULL && p->tab[k] != TOMB)
		k = (k + 1) & (p->cap - 1);
	if (p->tab[k] == NULL)
		p->used++;
	p->tab[k] = j;
	p->live++;
	return 0;
}

static nv_job *
map_take(struct nv_pump *p, uint64_t id)
{
	if (p->cap == 0)
		return NULL;
	size_t k = hslot(id, p->cap);
	while (p->tab[k] != NULL) {
		if (p->tab[k] != TOMB && p->tab[k]->id == id) {
			nv_job *j = p->tab[k];
			p->tab[k] = TOMB;
			p->live--;
			return j;
		}
		k = (k + 1) & (p->cap - 1);
	}
	return NULL;
}

int
nv__pump_create(nv_engine *e)
{
	struct nv_pump *p = nv__calloc(1, sizeof(*p));
	if (p == NULL)
		return NV_ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	e->pump = p;
	return 0;
}

static nv_job_msg
msg_of(nv_job *j)
{
	nv_job_msg m;
	m.id = j->id;
	m.attempt = j->attempt;
	m.created_ms = (j->flags & NV_JOB_TRACKED) ? nv__jobx(j)->created_ms
						   : nv__epoch_ms();
	m.task = j->task->name;
	m.args = nv__job_args(j);
	m.args_len = j->args_len;
	return m;
}

int
nv__pump_submit(nv_engine *e, nv_job *const *jobs, size_t n, size_t *pushed)
{
	struct nv_pump *p = e->pump;
	int rc = 0;
	size_t i;
	for (i = 0; i < n && rc == 0; i++) {
		nv_job *j = jobs[i];
		nv_job_msg m = msg_of(j);
		/* In the map before the backend has it: the pump may pop it
		 * at once. */
		pthread_mutex_lock(&p->mu);
		rc = map_put(p, j);
		pthread_mutex_unlock(&p->mu);
		if (rc != 0)
			break;
		uint64_t end = 0;
		while ((rc = nv_queue_enqueue(e->qbe, &m)) == NV_EFULL) {
			uint64_t now = nv__mono_ms();
			if (end == 0)
				end = now + e->enqueue_timeout_ms;
			if (now >= end ||
			    __atomic_load_n(&e->state, __ATOMIC_ACQUIRE) >=
				NV_ENG_STOPPING)
				break;
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
		if (rc != 0) {
			pthread_mutex_lock(&p->mu);
			(void)map_take(p, j->id);
			pthread_mutex_unlock(&p->mu);
			if (rc == NV_EFULL &&
			    __atomic_load_n(&e->state, __ATOMIC_ACQUIRE) >=
				NV_ENG_STOPPING)
				rc = NV_ESTOPPED;
			break;
		}
	}
	*pushed = rc == 0 ? n : i;
	return rc;
}

/* A record for a message whose id this engine does not hold (another
 * producer enqueued it), the way recovery makes one; an unknown task gets
 * the orphan task, which fails the job with a message naming it. */
static nv_job *
adopt(nv_engine *e, const nv_job_msg *m)
{
	struct nv_task *t = nv_task_lookup(e, m->task);
	if (t == NULL)
		t = nv__orphan_task(e, m->task);
	if (t == NULL)
		return NULL;
	bool tracked = !nv__task_def(t)->opts.discard_result;
	nv_job *j = nv__job_new(e, t, m->args, m->args_len, tracked, m->id);
	if (j == NULL)
		return NULL;
	j->attempt = m->attempt;
	if (tracked) {
		nv__jobx(j)->created_ms = m->created_ms;
		nv__job_table_add(e, j);
	}
	return j;
}

static void
move_in(nv_engine *e, nv_job_msg **msgs, size_t got)
{
	struct nv_pump *p = e->pump;
	size_t moved = 0;
	for (size_t i = 0; i < got; i++) {
		pthread_mutex_lock(&p->mu);
		nv_job *j = map_take(p, msgs[i]->id);
		pthread_mutex_unlock(&p->mu);
		if (j == NULL && (j = adopt(e, msgs[i])) == NULL) {
			/* Out of memory: give it back rather than lose it. */
			if (nv_queue_enqueue(e->qbe, msgs[i]) != 0)
				nv__err("pump: job %llu lost (out of memory "
					"and the queue backend refused it "
					"back)",
					(unsigned long long)msgs[i]->id);
			nv__free(msgs[i]);
			continue;
		}
		nv__free(msgs[i]);
		if (nv__queue_try_push(e, j))
			moved++;
		else
			nv__backlog_push(e, j);
	}
	if (moved)
		nv__notify_workers(e, moved);
}

static void *
pump_main(void *arg)
{
	nv_engine *e = arg;
	struct nv_pump *p = e->pump;
	nv_job_msg *msgs[PUMP_BATCH];

	nv__rcu_thread_online();
	while (!__atomic_load_n(&e->quit, __ATOMIC_ACQUIRE)) {
		size_t cap = e->nlanes * nv_ring_capacity(e->lane[0]);
		size_t used = nv__queued(e);
		size_t room = used < cap ? cap - used : 0;
		size_t got = 0;
		if (room == 0) {
			/* Workers notify not_full after each pop (the
			 * light half: this side prepares heavy). */
			int64_t cap_ms;
			uint32_t key =
			    nv__ec_prepare_heavy(&e->not_full, &cap_ms);
			if (nv__queued(e) < cap)
				nv__ec_cancel(&e->not_full);
			else
				nv__ec_wait(&e->not_full, key,
					    cap_ms < 0 ? PUMP_WAIT_MS : cap_ms);
			continue;
		}
		if (room > PUMP_BATCH)
			room = PUMP_BATCH;
		/* Set before the pop: stop's drained() must not see an empty
		 * backend and an empty ring while jobs are in our hands. */
		__atomic_store_n(&p->holding, 1, __ATOMIC_SEQ_CST);
		if (nv_queue_pop_batch(e->qbe, msgs, room, &got) != 0)
			got = 0;
		if (got == 0) {
			__atomic_store_n(&p->holding, 0, __ATOMIC_SEQ_CST);
			int rc =
			    nv_queue_dequeue(e->qbe, &msgs[0], PUMP_WAIT_MS);
			if (rc != 0) {
				if (rc != NV_ETIMEDOUT) {
					struct timespec ts = {0, 10000000};
					nanosleep(&ts, NULL); /* failing */
				}
				continue;
			}
			__atomic_store_n(&p->holding, 1, __ATOMIC_SEQ_CST);
			got = 1;
		}
		move_in(e, msgs, got);
		__atomic_store_n(&p->holding, 0, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

int
nv__pump_start(nv_engine *e)
{
	struct nv_pump *p = e->pump;
	int rc = pthread_create(&p->thread, NULL, pump_main, e);
	if (rc != 0)
		return NV_ENOMEM;
	p->started = true;
	return 0;
}

bool
nv__pump_idle(nv_engine *e)
{
	uint64_t n = 0;
	if (__atomic_load_n(&e->pump->holding, __ATOMIC_SEQ_CST))
		return false;
	return nv_queue_qsize(e->qbe, &n) != 0 || n == 0;
}

void
nv__pump_stop(nv_engine *e)
{
	struct nv_pump *p = e->pump;
	void *v;
	size_t back = 0;
	if (p == NULL || !p->started)
		return;
	pthread_join(p->thread, NULL); /* it saw quit (set before stop) */
	p->started = false;
	/* Jobs the workers never took go back to the backend. */
	for (unsigned i = 0; i < e->nlanes; i++)
		while (nv_ring_try_pop(e->lane[i], &v)) {
			nv_job *j = v;
			nv_job_msg m = msg_of(j);
			if (nv_queue_enqueue(e->qbe, &m) == 0)
				back++;
			if (!(j->flags & NV_JOB_TRACKED))
				nv__job_release(j);
		}
	if (back)
		nv__info("stop: %zu queued job(s) handed back to the '%s' "
			 "queue backend",
			 back, e->qbe->ops->name);
}

void
nv__pump_destroy(nv_engine *e)
{
	struct nv_pump *p = e->pump;
	if (p == NULL)
		return;
	/* Records still handed out (the backend kept them, or another
	 * process took them): tracked ones belong to the job table. */
	for (size_t i = 0; i < p->cap; i++) {
		nv_job *j = p->tab[i];
		if (j != NULL && j != TOMB && !(j->flags & NV_JOB_TRACKED))
			nv__job_release(j);
	}
	nv__free(p->tab);
	pthread_mutex_destroy(&p->mu);
	nv__free(p);
	e->pump = NULL;
}

/* ---------------------------------------------------------------- results */

void
nv__pump_result(nv_engine *e, nv_job *j)
{
	nv_jobx *x = nv__jobx(j);
	nv_job_info i;
	memset(&i, 0, sizeof(i));
	i.id = j->id;
	i.task = j->task->name;
	i.status = (nv_status)__atomic_load_n(&j->status, __ATOMIC_ACQUIRE);
	i.attempts = j->attempt;
	i.created_ms = x->created_ms;
	i.started_ms = x->started_ms;
	i.finished_ms = x->finished_ms;
	int rc;
	if (i.status == NV_SUCCESS) {
		i.result = x->result;
		i.result_len = x->result ? x->result_len : 0;
		rc = nv_results_set_result(e->rbe, &i);
	} else {
		i.error = x->error;
		rc = nv_results_set_error(e->rbe, &i);
	}
	if (rc != 0) {
		static int warned; /* atomic: once per process */
		if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
			nv__err("result backend '%s': result of job %llu not "
				"stored: %s",
				e->rbe->ops->name, (unsigned long long)j->id,
				nv_strerror(rc));
	}
}

int
nv__pump_status(nv_engine *e, nv_job_id id, nv_status *out)
{
	nv_job_info *i;
	int rc = nv_results_get_full(e->rbe, id, &i);
	if (rc != 0)
		return rc == NV_ENORESULT ? NV_ENOENT : rc;
	*out = i->status;
	nv__free(i);
	return 0;
}
