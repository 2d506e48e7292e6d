/*
 * backend_store.c - the "file" and "sqlite" queue and result backends: one
 * implementation over the store method table (persistence/store.h),
 * instantiated for each store.
 *
 * A core per (store, path) holds the open store and the state folded from
 * it (fold.c, the same fold the engine's recovery uses): a FIFO of pending
 * messages and a job index (backend_index.c) of every job the store knows,
 * finished ones capped by cfg->result_retention. A queue and a result
 * instance opened on the same location in one process share the core (the
 * file store's lock admits one opener), counted by refs.
 *
 * Every operation writes the records the engine writes for the same event
 * and syncs per cfg->fsync before it returns, so the engine and these
 * backends read each other's data:
 *   enqueue          JOB_ENQUEUED (task, args, attempt, created)
 *   dequeue/pop      JOB_STARTED (attempt + 1): a job handed out and never
 *                    finished comes back at the next open (at-least-once,
 *                    the engine's recovery rule)
 *   set_result       JOB_SUCCEEDED, preceded in the same write by a
 *                    JOB_ENQUEUED with the task when the index does not
 *                    know the id (the fold then ends in the final state)
 *   set_error        JOB_FAILED, likewise
 *   clear            JOB_FAILED "cleared" for every pending job
 * No record type or on-disk format is added. Ids for messages enqueued
 * with id 0 continue after the store's largest id and the opener's boot
 * epoch (store.c), so two openers of a shared sqlite db never collide.
 *
 * Threads: one mutex per core serializes every call (the store is not
 * thread-safe); dequeue waits on a condition variable (CLOCK_MONOTONIC)
 * signalled by enqueue. After a store failure every call returns NV_EIO.
 *
 * Limits: the state is a snapshot taken at open; another process writing
 * the same sqlite db is not seen until the next open. A pending retry's due
 * time is not honoured here (the job is simply pending). SQLite keeps no
 * start time, so started_ms reads 0 after a reopen there.
 */
#include <pthread.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "engine/backend_int.h"
#include "engine/fold_int.h"

struct core {
	struct core *next; /* all open cores, under cores_mu */
	const nv_store_ops *sops;
	char path[4096];
	unsigned refs; /* under cores_mu */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* pending became non-empty */
	nv_store *store;
	nv_fsync_policy fsync;
	int failed;
	uint64_t seq, next_id, writes;
	nv_job_msg **pq; /* pending FIFO: ring buffer of pq_cap */
	size_t ph, pn, pq_cap;
	nv__jidx idx;
};

struct sq {
	nv_queue base; /* first: the ops pointer */
	struct core *c;
};

struct sr {
	nv_results base; /* first: the ops pointer */
	struct core *c;
};

static pthread_mutex_t cores_mu = PTHREAD_MUTEX_INITIALIZER;
static struct core *cores;

/* ---------------------------------------------------------------- pending */

static int
pq_reserve(struct core *c, size_t more)
{
	if (c->pn + more <= c->pq_cap)
		return 0;
	size_t cap = c->pq_cap ? c->pq_cap : 64;
	while (cap < c->pn + more)
		cap *= 2;
	nv_job_msg **p = nv__malloc(cap * sizeof(*p));
	if (p == NULL)
		return NV_ENOMEM;
	for (size_t i = 0; i < c->pn; i++)
		p[i] = c->pq[(c->ph + i) % c->pq_cap];
	nv__free(c->pq);
	c->pq = p;
	c->pq_cap = cap;
	c->ph = 0;
	return 0;
}

static nv_job_msg *
pq_at(struct core *c, size_t i)
{
	return c->pq[(c->ph + i) % c->pq_cap];
}

/* Removes pending message i (not the head: rare, O(n)). */
static void
pq_remove(struct core *c, size_t i)
{
	for (; i + 1 < c->pn; i++)
		c->pq[(c->ph + i) % c->pq_cap] = pq_at(c, i + 1);
	c->pn--;
}

/* ---------------------------------------------------------------- writes */

/* Writes recs and syncs; NV_EIO (and failed for good) on a store error. */
static int
put_recs(struct core *c, nv_rec *recs, size_t n)
{
	int rc;
	if (c->failed)
		return c->failed;
	for (size_t i = 0; i < n; i++)
		recs[i].seq = ++c->seq;
	rc = c->sops->write(c->store, recs, n);
	if (rc == 0)
		rc = c->sops->sync(c->store);
	if (rc == 0 && c->sops->maintain && ++c->writes % 256 == 0)
		rc = c->sops->maintain(c->store);
	if (rc != 0) {
		nv__err("%s backend at '%s': store failed (%s); later calls "
			"return NV_EIO",
			c->sops->name, c->path, nv_strerror(rc));
		c->failed = NV_EIO;
	}
	return rc ? NV_EIO : 0;
}

static void
rec_init(nv_rec *r, nv_rec_type t, nv_job_id id, uint32_t attempt,
	 int64_t time_ms)
{
	memset(r, 0, sizeof(*r));
	r->type = (uint8_t)t;
	r->id = id;
	r->attempt = attempt;
	r->time_ms = time_ms;
}

/* Updates the index entry of id (no-op when unknown and no task). */
static void
idx_update(struct core *c, nv_job_id id, nv_status st, uint32_t attempts,
	   int64_t started, int64_t finished, const char *error)
{
	const nv_job_info *old = nv__jidx_get(&c->idx, id);
	if (old == NULL)
		return;
	nv_job_info i = *old;
	i.status = st;
	i.attempts = attempts;
	if (started)
		i.started_ms = started;
	if (finished)
		i.finished_ms = finished;
	i.result = NULL;
	i.result_len = 0;
	i.error = error;
	/* Out of memory: the entry keeps its old state; the store has the
	 * truth and the next open reads it. */
	(void)nv__jidx_put(&c->idx, &i);
}

/* ---------------------------------------------------------------- open */

static int
load(struct core *c)
{
	struct nv__fold f;
	struct nv__rjob **jobs;
	size_t n = 0;
	int rc;

	memset(&f, 0, sizeof(f));
	rc = nv__fold_replay(&f, c->store);
	jobs = rc == 0 ? nv__fold_jobs(&f, &n) : NULL;
	if (n == SIZE_MAX)
		rc = NV_ENOMEM, n = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct nv__rjob *j = jobs[i];
		bool ok = j->state == NV__RJ_SUCCESS;
		nv_job_info info = {
		    .id = j->id,
		    .task = j->task,
		    .status = NV_PENDING,
		    .attempts = j->attempt,
		    .created_ms = j->created,
		    .started_ms = j->started,
		    .finished_ms = j->finished,
		};
		if (ok || j->state == NV__RJ_FAILED) {
			info.status = ok ? NV_SUCCESS : NV_FAILED;
			char *err = ok ? NULL : nv__fold_str(j->data, j->dlen);
			if (!ok && err == NULL) {
				rc = NV_ENOMEM;
				break;
			}
			info.result = ok ? (j->data ? j->data : "") : NULL;
			info.result_len = ok ? j->dlen : 0;
			info.error = err;
			rc = nv__jidx_put(&c->idx, &info);
			nv__free(err);
			continue;
		}
		nv_job_msg *m = nv_job_msg_new(j->id, j->task, j->args, j->alen,
					       j->attempt, j->created);
		if (m == NULL || pq_reserve(c, 1) != 0 ||
		    nv__jidx_put(&c->idx, &info) != 0) {
			nv__free(m);
			rc = NV_ENOMEM;
			break;
		}
		c->pq[(c->ph + c->pn++) % c->pq_cap] = m;
	}
	if (rc == 0) {
		uint64_t mj = 0, ms = 0, boot = 0;
		nv_store_stats st;
		c->sops->max_ids(c->store, &mj, &ms);
		if (mj < f.max_job)
			mj = f.max_job;
		memset(&st, 0, sizeof(st));
		c->sops->stats(c->store, &st);
		c->seq = st.last_seq;
		rc = nv__store_next_boot(c->path, &boot);
		c->next_id = mj + 1 > boot << NV__BOOT_SHIFT
				 ? mj + 1
				 : boot << NV__BOOT_SHIFT;
	}
	nv__free(jobs);
	nv__fold_free(&f);
	return rc;
}

static void
core_free(struct core *c)
{
	if (c->store)
		c->sops->close(c->store);
	for (size_t i = 0; i < c->pn; i++)
		nv__free(pq_at(c, i));
	nv__free(c->pq);
	nv__jidx_fini(&c->idx);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	nv__free(c);
}

static int
core_get(const nv_store_ops *sops, bool queue_side, const nv_backend_conf *conf,
	 struct core **out)
{
	nv_config tmp;
	const nv_config *cfg = nv__backend_cfg(conf, &tmp);
	char path[4096];
	struct core *c;
	int rc;

	if (conf->path != NULL) {
		if (strlen(conf->path) >= sizeof(path))
			return NV_EINVAL;
		strcpy(path, conf->path);
	} else if ((rc = nv__store_location(cfg, sops->name, queue_side, path,
					    sizeof(path))) != 0) {
		return rc;
	}
	pthread_mutex_lock(&cores_mu);
	for (c = cores; c != NULL; c = c->next)
		if (c->sops == sops && strcmp(c->path, path) == 0)
			break;
	if (c != NULL) {
		c->refs++;
		pthread_mutex_unlock(&cores_mu);
		*out = c;
		return 0;
	}
	rc = NV_ENOMEM;
	if ((c = nv__calloc(1, sizeof(*c))) == NULL)
		goto out;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&c->mu, NULL);
	c->sops = sops;
	c->fsync = cfg->fsync;
	strcpy(c->path, path);
	if (nv__jidx_init(&c->idx, cfg->result_retention) != 0) {
		core_free(c);
		goto out;
	}
	nv_store_conf sc;
	memset(&sc, 0, sizeof(sc));
	sc.path = path;
	sc.fsync = cfg->fsync;
	sc.retain_finished = cfg->result_retention;
	if ((rc = sops->open(&c->store, &sc)) != 0) {
		nv__err("%s backend: cannot open the store at '%s': %s",
			sops->name, path, nv_strerror(rc));
		c->store = NULL;
		core_free(c);
		goto out;
	}
	if ((rc = load(c)) != 0) {
		nv__err("%s backend: cannot load '%s': %s", sops->name, path,
			nv_strerror(rc));
		core_free(c);
		goto out;
	}
	c->refs = 1;
	c->next = cores;
	cores = c;
	*out = c;
out:
	pthread_mutex_unlock(&cores_mu);
	return rc;
}

static void
core_put(struct core *c)
{
	pthread_mutex_lock(&cores_mu);
	if (--c->refs > 0) {
		pthread_mutex_unlock(&cores_mu);
		return;
	}
	for (struct core **pp = &cores; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	pthread_mutex_unlock(&cores_mu);
	core_free(c);
}

/* ---------------------------------------------------------------- queue */

static int
q_open(nv_queue **out, const nv_backend_conf *conf, const nv_queue_ops *qo,
       const nv_store_ops *sops)
{
	struct sq *q = nv__calloc(1, sizeof(*q));
	if (q == NULL)
		return NV_ENOMEM;
	int rc = core_get(sops, true, conf, &q->c);
	if (rc != 0) {
		nv__free(q);
		return rc;
	}
	q->base.ops = qo;
	*out = &q->base;
	return 0;
}

static int
fq_open(nv_queue **out, const nv_backend_conf *conf)
{
	return q_open(out, conf, &nv__file_queue_ops, &nv__file_store_ops);
}

static int
sq_open(nv_queue **out, const nv_backend_conf *conf)
{
	return q_open(out, conf, &nv__sqlite_queue_ops, &nv__sqlite_store_ops);
}

static void
q_close(nv_queue *base)
{
	struct sq *q = (struct sq *)base;
	core_put(q->c);
	nv__free(q);
}

static int
q_enqueue(nv_queue *base, const nv_job_msg *m)
{
	struct core *c = ((struct sq *)base)->c;
	nv_rec r;
	int rc;

	pthread_mutex_lock(&c->mu);
	nv_job_id id = m->id ? m->id : c->next_id++;
	if (id >= c->next_id)
		c->next_id = id + 1;
	nv_job_msg *copy =
	    nv_job_msg_new(id, m->task, m->args, m->args_len, m->attempt,
			   m->created_ms ? m->created_ms : nv__epoch_ms());
	nv_job_info info = {.id = id,
			    .task = m->task,
			    .status = NV_PENDING,
			    .attempts = m->attempt,
			    .created_ms = copy ? copy->created_ms : 0};
	/* Everything that can fail for want of memory before the write: a
	 * job is never durable without being queued here too. */
	rc = copy == NULL || pq_reserve(c, 1) != 0 ||
		     nv__jidx_put(&c->idx, &info) != 0
		 ? NV_ENOMEM
		 : 0;
	if (rc == 0) {
		rec_init(&r, NV_REC_JOB_ENQUEUED, id, m->attempt,
			 copy->created_ms);
		r.task = m->task;
		r.task_len = (uint32_t)strlen(m->task);
		r.data = m->args;
		r.data_len = (uint32_t)m->args_len;
		rc = put_recs(c, &r, 1);
	}
	if (rc == 0) {
		c->pq[(c->ph + c->pn++) % c->pq_cap] = copy;
		pthread_cond_signal(&c->cv);
	} else {
		nv__free(copy);
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* Hands out the first n pending messages (c->mu held): one write of their
 * STARTED records first, so nothing leaves unless that is stored. */
static int
take(struct core *c, nv_job_msg **out, size_t n)
{
	nv_rec stack[64],
	    *recs = n <= 64 ? stack : nv__malloc(n * sizeof(*recs));
	int64_t now = nv__epoch_ms();
	int rc;
	if (recs == NULL)
		return NV_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		nv_job_msg *m = pq_at(c, i);
		rec_init(&recs[i], NV_REC_JOB_STARTED, m->id, m->attempt + 1,
			 now);
	}
	rc = put_recs(c, recs, n);
	if (recs != stack)
		nv__free(recs);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		out[i] = pq_at(c, 0);
		c->ph = (c->ph + 1) % c->pq_cap;
		c->pn--;
		idx_update(c, out[i]->id, NV_RUNNING, out[i]->attempt + 1, now,
			   0, NULL);
	}
	return 0;
}

static int
q_dequeue(nv_queue *base, nv_job_msg **out, int timeout_ms)
{
	struct core *c = ((struct sq *)base)->c;
	struct timespec dl = nv__deadline_ts(timeout_ms > 0 ? timeout_ms : 0);
	int rc = 0;

	pthread_mutex_lock(&c->mu);
	while (c->pn == 0 && rc == 0) {
		if (timeout_ms == 0)
			rc = NV_ETIMEDOUT;
		else if (timeout_ms < 0)
			pthread_cond_wait(&c->cv, &c->mu);
		else if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) != 0 &&
			 c->pn == 0)
			rc = NV_ETIMEDOUT;
	}
	if (rc == 0)
		rc = take(c, out, 1);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

static int
q_pop_batch(nv_queue *base, nv_job_msg **out, size_t n, size_t *got)
{
	struct core *c = ((struct sq *)base)->c;
	int rc = 0;
	pthread_mutex_lock(&c->mu);
	size_t k = c->pn < n ? c->pn : n;
	if (k && (rc = take(c, out, k)) == 0)
		*got = k;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

static int
q_qsize(nv_queue *base, uint64_t *n)
{
	struct core *c = ((struct sq *)base)->c;
	pthread_mutex_lock(&c->mu);
	*n = c->pn;
	int rc = c->failed;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

static int
q_clear(nv_queue *base, uint64_t *removed)
{
	static const char why[] = "cleared";
	struct core *c = ((struct sq *)base)->c;
	int64_t now = nv__epoch_ms();
	int rc = 0;

	pthread_mutex_lock(&c->mu);
	size_t n = c->pn;
	nv_rec *recs = n ? nv__malloc(n * sizeof(*recs)) : NULL;
	if (n && recs == NULL)
		rc = NV_ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		nv_job_msg *m = pq_at(c, i);
		rec_init(&recs[i], NV_REC_JOB_FAILED, m->id, m->attempt, now);
		recs[i].data = why;
		recs[i].data_len = sizeof(why) - 1;
	}
	if (rc == 0 && n)
		rc = put_recs(c, recs, n);
	if (rc == 0) {
		for (size_t i = 0; i < n; i++) {
			nv_job_msg *m = pq_at(c, i);
			idx_update(c, m->id, NV_FAILED, m->attempt, 0, now,
				   why);
			nv__free(m);
		}
		c->pn = c->ph = 0;
		*removed = n;
	}
	nv__free(recs);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

#define QUEUE_OPS(var, nm, openfn)                                             \
	const nv_queue_ops var = {                                             \
	    .version = NV_QUEUE_OPS_VERSION,                                   \
	    .name = nm,                                                        \
	    .open = openfn,                                                    \
	    .close = q_close,                                                  \
	    .enqueue = q_enqueue,                                              \
	    .dequeue = q_dequeue,                                              \
	    .pop_batch = q_pop_batch,                                          \
	    .qsize = q_qsize,                                                  \
	    .clear = q_clear,                                                  \
	}
QUEUE_OPS(nv__file_queue_ops, "file", fq_open);
QUEUE_OPS(nv__sqlite_queue_ops, "sqlite", sq_open);

/* ---------------------------------------------------------------- results */

static int
r_open(nv_results **out, const nv_backend_conf *conf, const nv_results_ops *ro,
       const nv_store_ops *sops)
{
	struct sr *r = nv__calloc(1, sizeof(*r));
	if (r == NULL)
		return NV_ENOMEM;
	int rc = core_get(sops, false, conf, &r->c);
	if (rc != 0) {
		nv__free(r);
		return rc;
	}
	r->base.ops = ro;
	*out = &r->base;
	return 0;
}

static int
fr_open(nv_results **out, const nv_backend_conf *conf)
{
	return r_open(out, conf, &nv__file_results_ops, &nv__file_store_ops);
}

static int
sr_open(nv_results **out, const nv_backend_conf *conf)
{
	return r_open(out, conf, &nv__sqlite_results_ops,
		      &nv__sqlite_store_ops);
}

static void
r_close(nv_results *base)
{
	struct sr *r = (struct sr *)base;
	core_put(r->c);
	nv__free(r);
}

static int
r_set(nv_results *base, const nv_job_info *in, bool ok)
{
	struct core *c = ((struct sr *)base)->c;
	nv_rec recs[2];
	size_t n = 0;
	int rc;

	pthread_mutex_lock(&c->mu);
	const nv_job_info *old = nv__jidx_get(&c->idx, in->id);
	nv_job_info i = *in;
	i.status = ok ? NV_SUCCESS : NV_FAILED;
	if (ok)
		i.error = NULL;
	else
		i.result = NULL, i.result_len = 0;
	if (i.finished_ms == 0)
		i.finished_ms = nv__epoch_ms();
	if (old != NULL) { /* keep what the caller did not say */
		if (i.task == NULL || i.task[0] == '\0')
			i.task = old->task;
		if (i.created_ms == 0)
			i.created_ms = old->created_ms;
		if (i.started_ms == 0)
			i.started_ms = old->started_ms;
		if (i.attempts < old->attempts)
			i.attempts = old->attempts;
	} else {
		if (i.created_ms == 0)
			i.created_ms = i.finished_ms;
		/* Unknown id: a JOB_ENQUEUED carries the task, and the final
		 * record after it in the same write ends the fold. */
		rec_init(&recs[n], NV_REC_JOB_ENQUEUED, i.id, 0, i.created_ms);
		recs[n].task = i.task ? i.task : "";
		recs[n].task_len = (uint32_t)strlen(recs[n].task);
		n++;
	}
	rec_init(&recs[n], ok ? NV_REC_JOB_SUCCEEDED : NV_REC_JOB_FAILED, i.id,
		 i.attempts, i.finished_ms);
	recs[n].data = ok ? i.result : i.error;
	recs[n].data_len =
	    (uint32_t)(ok ? i.result_len : (i.error ? strlen(i.error) : 0));
	n++;
	/* The index entry first (it may fail for memory), the store last. */
	nv_job_info *keep = old ? nv_job_info_dup(old) : NULL;
	rc = old && keep == NULL ? NV_ENOMEM : nv__jidx_put(&c->idx, &i);
	if (rc == 0 && (rc = put_recs(c, recs, n)) != 0) {
		if (keep)
			(void)nv__jidx_put(&c->idx, keep);
	}
	nv__free(keep);
	if (rc == 0) /* a job finished while still pending leaves the FIFO */
		for (size_t k = 0; k < c->pn; k++)
			if (pq_at(c, k)->id == i.id) {
				nv__free(pq_at(c, k));
				pq_remove(c, k);
				break;
			}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

static int
r_set_result(nv_results *base, const nv_job_info *in)
{
	return r_set(base, in, true);
}

static int
r_set_error(nv_results *base, const nv_job_info *in)
{
	return r_set(base, in, false);
}

#define CORE_LOCKED(base, call)                                                \
	do {                                                                   \
		struct core *c_ = ((struct sr *)(base))->c;                    \
		pthread_mutex_lock(&c_->mu);                                   \
		int rc_ = c_->failed ? c_->failed : (call);                    \
		pthread_mutex_unlock(&c_->mu);                                 \
		return rc_;                                                    \
	} while (0)

static int
r_get_result(nv_results *r, nv_job_id id, void **buf, size_t *len)
{
	CORE_LOCKED(r, nv__jidx_result(&c_->idx, id, buf, len));
}

static int
r_get_error(nv_results *r, nv_job_id id, char **msg)
{
	CORE_LOCKED(r, nv__jidx_error(&c_->idx, id, msg));
}

static int
r_get_full(nv_results *r, nv_job_id id, nv_job_info **out)
{
	CORE_LOCKED(r, nv__jidx_full(&c_->idx, id, out));
}

static int
r_list_jobs(nv_results *r, const nv_job_filter *f, nv_job_info ***out,
	    size_t *n)
{
	CORE_LOCKED(r, nv__jidx_list(&c_->idx, f, out, n));
}

#define RESULTS_OPS(var, nm, openfn)                                           \
	const nv_results_ops var = {                                           \
	    .version = NV_RESULTS_OPS_VERSION,                                 \
	    .name = nm,                                                        \
	    .open = openfn,                                                    \
	    .close = r_close,                                                  \
	    .set_result = r_set_result,                                        \
	    .set_error = r_set_error,                                          \
	    .get_result = r_get_result,                                        \
	    .get_error = r_get_error,                                          \
	    .get_full = r_get_full,                                            \
	    .list_jobs = r_list_jobs,                                          \
	}
RESULTS_OPS(nv__file_results_ops, "file", fr_open);
RESULTS_OPS(nv__sqlite_results_ops, "sqlite", sr_open);
