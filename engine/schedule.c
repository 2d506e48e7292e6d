/*
 * schedule.c - one-off, interval and cron schedules on the scheduler's
 * timer wheel.
 *
 * nv_schedule_add validates and compiles the request on the caller's
 * thread (cron parsed once, zone checked), registers the schedule in a
 * mutex-protected table (an id-ordered list plus an id hash: add, cancel
 * and a fire's removal are O(1) whatever the number of live schedules;
 * the mutex is held for a few pointer writes) and posts it to the
 * scheduler thread, which
 * arms its timer. When a timer fires, the scheduler creates a job and
 * pushes it on the priority ring (workers pop it before ordinary work),
 * then re-arms interval and cron schedules from inside the callback; a
 * one-off schedule is removed after its dispatch. No polling anywhere: the
 * scheduler sleeps until the wheel's next deadline.
 *
 * Time: schedules speak epoch milliseconds (UTC); the wheel runs on the
 * monotonic clock. Each arm converts the remaining epoch delay into a
 * monotonic deadline (at ns precision, rounded up to the tick: a run is
 * never early), so a wall-clock step affects only the next arm.
 * Interval schedules run at a fixed rate from their start: run k is due at
 * start + k * interval; when the engine falls behind, missed runs are
 * skipped, never bunched, and the rate does not drift.
 */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "engine/cron.h"
#include "engine/persist_int.h"
#include "engine/recovery_int.h"
#include "persistence/persister.h"
#include "engine/sched_int.h"

struct nv_sched {
	nv_timer timer; /* owned by the scheduler thread */
	nv_engine *engine;
	nv_schedule_id id;
	struct nv_task *task;
	nv_schedule_kind kind;
	int64_t start_ms; /* interval: epoch ms of run 0 */
	uint64_t interval_ms;
	int64_t next_ms; /* epoch ms of the next run */
	int64_t at_ns;	 /* in_ms one-off: exact epoch ns of its run, else 0 */
	uint64_t fired;	 /* runs dispatched */
	bool cancelled;	 /* set under the table mutex */
	bool armed;	 /* scheduler thread only */
	bool past;	 /* once: its time had passed when it was given to
			    us (at_ms in the past, or missed while down) */
	nv_cron cron;
	char cron_text[128];
	char tz[64];
	struct nv_sched *next, *prev; /* table list, ordered by id */
	struct nv_sched *hnext;	      /* table hash chain */
	size_t len;
	unsigned char args[];
};

/* Live schedules: a list ordered by id (for nv_schedule_list) with a
 * tail, so adds append in O(1), and an id hash (for cancel); both under
 * mu. The hash doubles when it holds as many schedules as buckets. */
struct nv_sched_table {
	pthread_mutex_t mu;
	struct nv_sched *head, *tail;
	struct nv_sched **hash; /* nbuckets (2^k) chains */
	size_t nbuckets;
	uint64_t next_id;
	size_t count;
};

#define NV_SCHED_HASH0 64
#define NV_SCHED_MAX_MS ((int64_t)1 << 61) /* |at_ms|, in_ms: 73 My */

int
nv__schedules_init(nv_engine *e)
{
	struct nv_sched_table *t = nv__calloc(1, sizeof(*t));
	if (t == NULL)
		return NV_ENOMEM;
	t->hash = nv__calloc(NV_SCHED_HASH0, sizeof(*t->hash));
	if (t->hash == NULL) {
		nv__free(t);
		return NV_ENOMEM;
	}
	t->nbuckets = NV_SCHED_HASH0;
	pthread_mutex_init(&t->mu, NULL);
	t->next_id = 1;
	e->sched->schedules = t;
	return 0;
}

void
nv__schedules_free(nv_engine *e)
{
	struct nv_sched_table *t = e->sched->schedules;
	if (t == NULL)
		return;
	for (struct nv_sched *s = t->head, *n; s != NULL; s = n) {
		n = s->next;
		nv__free(s);
	}
	pthread_mutex_destroy(&t->mu);
	nv__free(t->hash);
	nv__free(t);
	e->sched->schedules = NULL;
}

void
nv__schedules_stop(nv_engine *e)
{
	struct nv_sched_table *t = e->sched->schedules;
	pthread_mutex_lock(&t->mu);
	for (struct nv_sched *s = t->head; s != NULL; s = s->next)
		if (s->armed) {
			nv_wheel_cancel(e->sched->wheel, &s->timer);
			s->armed = false;
		}
	pthread_mutex_unlock(&t->mu);
}

static inline struct nv_sched **
bucket(struct nv_sched_table *t, nv_schedule_id id)
{
	return &t->hash[id & (t->nbuckets - 1)]; /* ids are sequential */
}

/* Doubles the hash (mutex held); on no memory the chains just grow. */
static void
grow_locked(struct nv_sched_table *t)
{
	size_t nb = t->nbuckets * 2;
	struct nv_sched **h = nv__calloc(nb, sizeof(*h));
	if (h == NULL)
		return;
	for (size_t i = 0; i < t->nbuckets; i++)
		for (struct nv_sched *s = t->hash[i], *n; s != NULL; s = n) {
			n = s->hnext;
			s->hnext = h[s->id & (nb - 1)];
			h[s->id & (nb - 1)] = s;
		}
	nv__free(t->hash);
	t->hash = h;
	t->nbuckets = nb;
}

/* Inserts s in id order (mutex held): O(1) for the newest id. */
static void
link_locked(struct nv_sched_table *t, struct nv_sched *s)
{
	struct nv_sched *after = t->tail;
	while (after != NULL && after->id > s->id)
		after = after->prev;
	s->prev = after;
	s->next = after ? after->next : t->head;
	if (s->next != NULL)
		s->next->prev = s;
	else
		t->tail = s;
	if (after != NULL)
		after->next = s;
	else
		t->head = s;
	if (t->count >= t->nbuckets)
		grow_locked(t);
	struct nv_sched **b = bucket(t, s->id);
	s->hnext = *b;
	*b = s;
	t->count++;
}

/* Removes s from the table (mutex held). */
static void
unlink_locked(struct nv_sched_table *t, struct nv_sched *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		t->head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	else
		t->tail = s->prev;
	for (struct nv_sched **pp = bucket(t, s->id); *pp != NULL;
	     pp = &(*pp)->hnext)
		if (*pp == s) {
			*pp = s->hnext;
			break;
		}
	s->next = s->prev = s->hnext = NULL;
	t->count--;
}

/* The live schedule with that id, or NULL (mutex held). */
static struct nv_sched *
find_locked(struct nv_sched_table *t, nv_schedule_id id)
{
	struct nv_sched *s = *bucket(t, id);
	while (s != NULL && s->id != id)
		s = s->hnext;
	return s;
}

/* The schedule's spec as stored in SCHED_ADDED's aux. */
static int
spec_text(const struct nv_sched *s, char *buf, size_t len)
{
	switch (s->kind) {
	case NV_SCHED_INTERVAL:
		return snprintf(buf, len, "interval:%llu:%lld",
				(unsigned long long)s->interval_ms,
				(long long)s->start_ms);
	case NV_SCHED_CRON:
		return snprintf(buf, len, "cron:%s:%s", s->tz, s->cron_text);
	default:
		return snprintf(buf, len, "once");
	}
}

static void
persist(nv_engine *e, struct nv_sched *s, nv_rec_type type, int64_t time_ms)
{
	char spec[256];
	nv_rec r;
	if (e->persister == NULL)
		return;
	memset(&r, 0, sizeof(r));
	r.type = (uint8_t)type;
	r.id = s->id;
	r.time_ms = time_ms;
	if (type == NV_REC_SCHED_ADDED) {
		int n = spec_text(s, spec, sizeof(spec));
		r.task = s->task->name;
		r.task_len = (uint32_t)s->task->name_len;
		r.data = s->args;
		r.data_len = (uint32_t)s->len;
		r.aux = spec;
		r.aux_len = (uint32_t)(n < (int)sizeof(spec) ? n : 0);
	}
	if (nv__persister_submit(e->persister, &r, NULL) != 0)
		nv__warn("schedule %llu: event not persisted (store failed)",
			 (unsigned long long)s->id);
}

/* Next run strictly after `after` (epoch ms); false when none. */
static bool
next_run(struct nv_sched *s, int64_t after, int64_t *next)
{
	switch (s->kind) {
	case NV_SCHED_INTERVAL: {
		int64_t iv = (int64_t)s->interval_ms;
		int64_t k =
		    after < s->start_ms ? 0 : (after - s->start_ms) / iv + 1;
		*next = s->start_ms + k * iv;
		return true;
	}
	case NV_SCHED_CRON:
		return nv__cron_next(&s->cron, s->tz[0] ? s->tz : NULL, after,
				     next) == 0;
	default:
		return false;
	}
}

static void fire(nv_timer *tm, void *arg);

static int64_t
epoch_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Scheduler thread: arms s for its next run (s->next_ms, or s->at_ns for
 * an in_ms one-off). The epoch delay is converted at nanosecond precision
 * and the monotonic deadline rounded up to the wheel's tick, so a run is
 * never early (whole-ms reads of the two clocks made it up to 2 ms early
 * against add time + in_ms). */
static void
arm(nv_engine *e, struct nv_sched *s)
{
	uint64_t mono = nv__mono_ns(), due;
	int64_t now = epoch_ns();
	int64_t delta = s->next_ms - now / 1000000; /* ms */
	if (delta >= (int64_t)1 << 40) { /* decades: precision moot */
		due = mono / 1000000 + (uint64_t)delta + 1;
	} else {
		int64_t left = s->at_ns	   ? s->at_ns - now
			       : delta > 0 ? s->next_ms * 1000000 - now
					   : 0;
		due = left <= 0 ? mono / 1000000
				: (mono + (uint64_t)left + 999999) / 1000000;
	}
	nv_timer_init(&s->timer, fire, s);
	if (nv_wheel_add(e->sched->wheel, &s->timer, due) == 0)
		s->armed = true;
}

/* Creates and queues one job of s (scheduler thread). */
static void
dispatch(nv_engine *e, struct nv_sched *s)
{
	struct nv_taskdef *def = nv__task_def(s->task);
	bool tracked = !def->opts.discard_result;
	nv_job *j = nv__job_new(e, s->task, s->args, s->len, tracked,
				nv__id_alloc(e, 1));
	if (j == NULL) {
		nv__err("schedule %llu: no memory for its job; run skipped",
			(unsigned long long)s->id);
		return;
	}
	j->flags |= NV_JOB_SCHEDULED;
	if (tracked)
		nv__job_table_add(e, j);
	/* No time limit on a full backlog: the persister never waits on
	 * this thread, so the wait ends (see persister_room.c). */
	if (e->persister != NULL && nv__persist_enqueued_wait(e, j, -1) != 0)
		nv__warn("schedule %llu: job %llu not persisted",
			 (unsigned long long)s->id, (unsigned long long)j->id);
	nv__shard_add(e->enqueued, 1);
	if (e->has_observers)
		nv__emit(e, NV_EV_ENQUEUED, j->id, j->task, 0, 0, NULL);
	nv__job_requeue(e, j); /* priority ring; retried if full */
}

static void
fire(nv_timer *tm, void *arg)
{
	struct nv_sched *s = arg;
	nv_engine *e = s->engine;
	struct nv_sched_table *t = e->sched->schedules;
	int64_t next;
	bool again;

	(void)tm;
	s->armed = false;
	if (e->sched->draining)
		return; /* stopping: no dispatch, no re-arm (see above) */
	pthread_mutex_lock(&t->mu);
	if (s->cancelled) {
		pthread_mutex_unlock(&t->mu);
		return;
	}
	__atomic_store_n(&s->fired, s->fired + 1, __ATOMIC_RELAXED);
	persist(e, s, NV_REC_SCHED_FIRED, s->next_ms);
	/* Re-arm from the callback (interval/cron): the next run strictly
	 * after the later of now and the run just made. */
	int64_t now = nv__epoch_ms();
	again = next_run(s, now > s->next_ms ? now : s->next_ms, &next);
	if (again)
		__atomic_store_n(&s->next_ms, next, __ATOMIC_RELAXED);
	else
		unlink_locked(t, s);
	pthread_mutex_unlock(&t->mu);
	dispatch(e, s);
	if (again)
		arm(e, s);
	else
		nv__free(s);
}

void
nv__schedule_msg(nv_engine *e, struct nv_msg *m)
{
	struct nv_sched_table *t = e->sched->schedules;
	struct nv_sched *s = m->sched;

	if (m->kind == NV_MSG_SCHED_ADD) {
		bool skip = false;
		pthread_mutex_lock(&t->mu);
		/* Cancelled before we saw it: the CANCEL message (behind this
		 * one in the FIFO inbox) frees it. */
		bool cancelled = s->cancelled;
		/* Only a time already past when the schedule was added or
		 * restored is a misfire: an in_ms schedule whose add message
		 * we reach late (or before start) still runs. */
		if (!cancelled && s->past &&
		    e->cfg.misfire == NV_MISFIRE_SKIP) {
			unlink_locked(t, s);
			skip = true;
		}
		pthread_mutex_unlock(&t->mu);
		if (skip) {
			nv__info("schedule %llu: run time already past, "
				 "skipped (misfire policy skip)",
				 (unsigned long long)s->id);
			nv__free(s);
		} else if (!cancelled && !e->sched->draining) {
			/* Not while stopping: the final advance fires every
			 * armed timer, and an interval re-armed from its
			 * callback would fire again in that advance, forever.
			 * Left unarmed, it stays in the table (freed with it;
			 * with a store, recovered at the next start). */
			arm(e, s);
		}
	} else if (m->kind == NV_MSG_SCHED_CANCEL) {
		/* The table no longer holds s; only the wheel may. */
		if (s->armed)
			nv_wheel_cancel(e->sched->wheel, &s->timer);
		nv__free(s);
	}
	nv__free(m);
}

void
nv__schedule_msg_free(nv_engine *e, struct nv_msg *m)
{
	(void)e;
	/* An add never handled: the table still owns the schedule (freed
	 * with it), unless it was cancelled (then this message owns it). */
	if (m->kind == NV_MSG_SCHED_CANCEL)
		nv__free(m->sched);
	nv__free(m);
}

int
nv_schedule_add(nv_engine *e, const char *task, const void *args, size_t len,
		const nv_schedule *when, nv_schedule_id *out_id)
{
	struct nv_sched_table *t;
	struct nv_sched *s;
	struct nv_msg *m;
	nv_task *tk;
	int set, rc;
	char err[256];

	if (e == NULL || task == NULL || when == NULL ||
	    (args == NULL && len != 0))
		return NV_EINVAL;
	set = (when->at_ms != 0) + (when->in_ms != 0) +
	      (when->interval_ms != 0) + (when->cron != NULL);
	if (set != 1 || when->in_ms < 0 || when->in_ms > NV_SCHED_MAX_MS ||
	    when->at_ms > NV_SCHED_MAX_MS || when->at_ms < -NV_SCHED_MAX_MS)
		return NV_EINVAL; /* (beyond that, now + in_ms overflows) */
	if (when->timezone != NULL && when->cron == NULL)
		return NV_EINVAL;
	if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) >= NV_ENG_STOPPING)
		return NV_ESTOPPED;
	if (len > e->max_args)
		return NV_E2BIG;
	if ((tk = nv_task_lookup(e, task)) == NULL)
		return NV_ENOTASK;
	if ((s = nv__calloc(1, sizeof(*s) + len)) == NULL)
		return NV_ENOMEM;
	s->engine = e;
	s->task = tk;
	s->len = len;
	if (len)
		memcpy(s->args, args, len);
	int64_t now = nv__epoch_ms();
	if (when->cron != NULL) {
		const char *tz = when->timezone;
		if (strlen(when->cron) >= sizeof(s->cron_text) ||
		    (tz != NULL && strlen(tz) >= sizeof(s->tz))) {
			nv__free(s);
			return NV_EINVAL;
		}
		if ((rc = nv__cron_parse(&s->cron, when->cron, err,
					 sizeof(err))) != 0) {
			nv__warn("schedule: %s", err);
			nv__free(s);
			return rc;
		}
		s->kind = NV_SCHED_CRON;
		snprintf(s->cron_text, sizeof(s->cron_text), "%s", when->cron);
		snprintf(s->tz, sizeof(s->tz), "%s", tz ? tz : "");
		rc = nv__cron_next(&s->cron, tz, now, &s->next_ms);
		if (rc != 0) {
			nv__free(s);
			return rc == NV_ENOENT ? NV_ECRON : rc;
		}
	} else if (when->interval_ms != 0) {
		if (when->interval_ms > (uint64_t)INT64_MAX / 4) {
			nv__free(s);
			return NV_EINVAL;
		}
		s->kind = NV_SCHED_INTERVAL;
		s->interval_ms = when->interval_ms;
		s->start_ms = now + 1 + (int64_t)when->interval_ms;
		s->next_ms = s->start_ms;
	} else {
		s->kind = NV_SCHED_ONCE;
		if (when->in_ms != 0 && when->in_ms < (int64_t)1 << 40) {
			s->at_ns = epoch_ns() + when->in_ms * 1000000;
			s->next_ms = s->at_ns / 1000000;
		} else if (when->in_ms != 0) { /* decades: ns moot */
			s->next_ms = now + 1 + when->in_ms;
		} else {
			s->next_ms = when->at_ms;
		}
		s->past = when->at_ms != 0 && when->at_ms < now;
	}
	if ((m = nv__calloc(1, sizeof(*m))) == NULL) {
		nv__free(s);
		return NV_ENOMEM;
	}
	t = e->sched->schedules;
	pthread_mutex_lock(&t->mu);
	s->id = t->next_id++;
	link_locked(t, s); /* the newest id: appended */
	pthread_mutex_unlock(&t->mu);
	persist(e, s, NV_REC_SCHED_ADDED, s->next_ms);
	if (out_id != NULL)
		*out_id = s->id;
	m->kind = NV_MSG_SCHED_ADD;
	m->sched = s;
	nv__sched_post(e, m);
	return 0;
}

int
nv_schedule_cancel(nv_engine *e, nv_schedule_id id)
{
	struct nv_sched_table *t;
	struct nv_sched *s;
	struct nv_msg *m;

	if (e == NULL || id == 0)
		return NV_EINVAL;
	if ((m = nv__calloc(1, sizeof(*m))) == NULL)
		return NV_ENOMEM;
	t = e->sched->schedules;
	pthread_mutex_lock(&t->mu);
	if ((s = find_locked(t, id)) == NULL) {
		pthread_mutex_unlock(&t->mu);
		nv__free(m);
		return NV_ENOENT;
	}
	s->cancelled = true;
	unlink_locked(t, s);
	pthread_mutex_unlock(&t->mu);
	persist(e, s, NV_REC_SCHED_CANCELLED, nv__epoch_ms());
	/* The scheduler thread disarms and frees it (it may be firing it
	 * right now; fire() sees `cancelled` under the mutex). */
	m->kind = NV_MSG_SCHED_CANCEL;
	m->sched = s;
	nv__sched_post(e, m);
	return 0;
}

int
nv_schedule_list(nv_engine *e, nv_schedule_info *out, size_t cap, size_t *count)
{
	struct nv_sched_table *t;
	size_t i = 0;
	if (e == NULL || count == NULL || (out == NULL && cap != 0))
		return NV_EINVAL;
	t = e->sched->schedules;
	pthread_mutex_lock(&t->mu);
	for (struct nv_sched *s = t->head; s != NULL; s = s->next, i++) {
		if (i >= cap)
			continue;
		nv_schedule_info *o = &out[i];
		memset(o, 0, sizeof(*o));
		o->id = s->id;
		o->kind = s->kind;
		o->next_ms = __atomic_load_n(&s->next_ms, __ATOMIC_RELAXED);
		o->interval_ms = s->interval_ms;
		o->fired = __atomic_load_n(&s->fired, __ATOMIC_RELAXED);
		snprintf(o->task, sizeof(o->task), "%s", s->task->name);
		snprintf(o->cron, sizeof(o->cron), "%s", s->cron_text);
		snprintf(o->timezone, sizeof(o->timezone), "%s", s->tz);
	}
	*count = t->count;
	pthread_mutex_unlock(&t->mu);
	return 0;
}

void
nv__schedules_set_next_id(nv_engine *e, uint64_t next)
{
	struct nv_sched_table *t = e->sched->schedules;
	pthread_mutex_lock(&t->mu);
	if (next > t->next_id)
		t->next_id = next;
	pthread_mutex_unlock(&t->mu);
}

int
nv__schedule_restore(nv_engine *e, nv_schedule_id id, const char *task,
		     const void *args, size_t len, const char *spec,
		     int64_t next_ms, int64_t last_fired)
{
	struct nv_sched_table *t = e->sched->schedules;
	struct nv_sched *s;
	struct nv_msg *m;
	nv_task *tk = nv_task_lookup(e, task);
	int64_t now = nv__epoch_ms(), due;
	char err[256];

	if (tk == NULL)
		return NV_ENOTASK;
	if ((s = nv__calloc(1, sizeof(*s) + len)) == NULL)
		return NV_ENOMEM;
	s->engine = e;
	s->id = id;
	s->task = tk;
	s->len = len;
	if (len)
		memcpy(s->args, args, len);
	if (strncmp(spec, "interval:", 9) == 0) {
		unsigned long long iv;
		long long start;
		if (sscanf(spec + 9, "%llu:%lld", &iv, &start) != 2 || iv == 0)
			goto bad;
		s->kind = NV_SCHED_INTERVAL;
		s->interval_ms = iv;
		s->start_ms = start;
	} else if (strncmp(spec, "cron:", 5) == 0) {
		const char *tz = spec + 5, *colon = strchr(tz, ':');
		if (colon == NULL || (size_t)(colon - tz) >= sizeof(s->tz) ||
		    strlen(colon + 1) >= sizeof(s->cron_text))
			goto bad;
		memcpy(s->tz, tz, (size_t)(colon - tz));
		snprintf(s->cron_text, sizeof(s->cron_text), "%s", colon + 1);
		if (nv__cron_parse(&s->cron, s->cron_text, err, sizeof(err)) !=
		    0)
			goto bad;
		s->kind = NV_SCHED_CRON;
	} else if (strcmp(spec, "once") == 0) {
		s->kind = NV_SCHED_ONCE;
		if (last_fired != 0) { /* already ran */
			nv__free(s);
			return 0;
		}
	} else {
		goto bad;
	}
	/* The first run owed since the last one (or since the add). */
	if (s->kind == NV_SCHED_ONCE || last_fired == 0)
		due = next_ms;
	else if (!next_run(s, last_fired, &due))
		due = INT64_MAX;
	if (due == INT64_MAX) {
		nv__free(s);
		return 0;
	}
	if (due < now && s->kind != NV_SCHED_ONCE) {
		/* Missed while down: once now (policy ONCE), or skip to the
		 * next regular run. */
		if (e->cfg.misfire == NV_MISFIRE_ONCE)
			due = now;
		else if (!next_run(s, now, &due))
			due = INT64_MAX;
		if (due == INT64_MAX) {
			nv__free(s);
			return 0;
		}
	}
	s->next_ms = due;
	s->past = s->kind == NV_SCHED_ONCE && due < now;
	if ((m = nv__calloc(1, sizeof(*m))) == NULL) {
		nv__free(s);
		return NV_ENOMEM;
	}
	pthread_mutex_lock(&t->mu);
	link_locked(t, s);
	if (id >= t->next_id)
		t->next_id = id + 1;
	pthread_mutex_unlock(&t->mu);
	m->kind = NV_MSG_SCHED_ADD;
	m->sched = s;
	nv__sched_post(e, m);
	return 0;
bad:
	nv__warn("recovery: schedule %llu has an unreadable spec '%s'; not "
		 "restored",
		 (unsigned long long)id, spec);
	nv__free(s);
	return 0;
}
