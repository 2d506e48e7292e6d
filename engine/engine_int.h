/*
 * engine/engine_int.h - the engine's internal structures (not installed).
 *
 * Threads and what they own:
 *  - callers: dispatch (nv_delay/nv_map) - allocate a job, push it on the
 *    ring, notify a parked worker;
 *  - workers (N, optionally pinned): pop batches from the ring (the
 *    priority ring first), run tasks, record outcomes;
 *  - the scheduler (one): owns the timer wheel: delayed retries, schedules,
 *    timeout sampling of the worker slots, retention eviction;
 *  - the persister (one per store, with a persistent backend).
 *
 * A job's outcome is decided exactly once: a worker finishing it and the
 * scheduler timing it out race on the worker slot's `word` (seq | state)
 * with a CAS; the winner records the outcome (see worker.c).
 */
#ifndef NV_ENGINE_INT_H
#define NV_ENGINE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define _LGPL_SOURCE
#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>
#include <urcu/wfcqueue.h>

#include "lockfree/park.h"
#include "nuvom.h"

/* ThreadSanitizer cannot see the orderings inside liburcu (inline asm,
 * not instrumented): a node published by cds_lfht_add and found by a
 * lookup looks like a race. In TSan builds these annotations restate the
 * publication (release before add, acquire in the match callback); in
 * release builds they are nothing. */
#ifdef NUVOM_TSAN
#include <sanitizer/tsan_interface.h>
#define NV_TSAN_PUBLISH(p) __tsan_release((void *)(p))
#define NV_TSAN_CONSUME(p) __tsan_acquire((void *)(p))
#else
#define NV_TSAN_PUBLISH(p) ((void)0)
#define NV_TSAN_CONSUME(p) ((void)0)
#endif

#define NV_CL 64
#define NV_MAX_OBSERVERS 16
#define NV_MAX_LANES 8
#define NV_INLINE_ARGS 80 /* args up to this size live in the job record */

struct nv_persister;
struct nv_queue;
struct nv_results;
struct nv_pump;
struct nv_sched_state;

/* ---------------------------------------------------------------- tasks */

/* Immutable definition; a forced re-registration swaps in a new one. */
struct nv_taskdef {
	nv_task_fn fn;
	nv_task_opts opts; /* strings point into this block */
	struct nv_taskdef *older; /* retired definitions, freed at close */
};

struct nv_task {
	struct cds_lfht_node node;
	nv_engine *engine;
	struct nv_taskdef *def; /* atomic pointer (acquire on read) */
	struct nv_task *all_next; /* list of all tasks, for close */
	size_t name_len;
	char name[]; /* NUL-terminated */
};

/* ---------------------------------------------------------------- jobs */

enum {
	NV_JOB_TRACKED = 0x1,   /* in the job table; result kept */
	NV_JOB_ARGS_HEAP = 0x2, /* args allocated separately */
	NV_JOB_SCHEDULED = 0x4, /* dispatched by a schedule (priority) */
};

/*
 * The part every job has (two cache lines, line-aligned). Tracked jobs are
 * a struct nv_jobx. Line 0 holds everything a dispatch writes and a worker
 * reads or writes for a job with up to 24 bytes of args, so handing a
 * small job from one core to another moves one line each way (the record
 * goes back to a dispatcher through the recycle ring). The retry delay's
 * timer is not here: it lives in the scheduler's message (scheduler.c).
 */
typedef struct nv_job {
	nv_job_id id;
	struct nv_task *task;
	uint32_t status;     /* nv_status, atomic */
	uint32_t attempt;    /* attempts started so far */
	uint32_t args_len;
	uint32_t flags;
	uint32_t hold;       /* abandoned executions * 2 | free-pending */
	uint32_t pad_;
	union {
		void *heap;     /* NV_JOB_ARGS_HEAP: nv__malloc'd args */
		unsigned char bytes[NV_INLINE_ARGS];
	} args;
	/* Written only when the engine has observers (nv__job_new). */
	uint64_t enq_ns;     /* mono time of creation or requeue, for latency */
} __attribute__((aligned(NV_CL))) nv_job;

_Static_assert(sizeof(nv_job) == 2 * NV_CL, "nv_job: two cache lines");

static inline void *
nv__job_args(nv_job *j)
{
	return (j->flags & NV_JOB_ARGS_HEAP) ? j->args.heap
					     : (void *)j->args.bytes;
}

typedef struct nv_jobx {
	nv_job core;
	struct cds_lfht_node node; /* job table: id -> job */
	struct rcu_head rcu;
	struct cds_wfcq_node fifo; /* finished-jobs FIFO (retention) */
	uint32_t refs;    /* table + waiters, atomic */
	uint32_t waiters; /* threads in nv_job_wait, atomic */
	int64_t created_ms, started_ms, finished_ms;
	void *result;     /* nv__malloc'd, or NULL */
	size_t result_len;
	char *error;      /* last error text, nv__malloc'd, or NULL */
} nv_jobx;

static inline nv_jobx *
nv__jobx(nv_job *j)
{
	return (nv_jobx *)j; /* core is the first member */
}

/* ---------------------------------------------------------------- workers */

/* Slot word: seq << 2 | state. */
enum { NV_SLOT_IDLE = 0, NV_SLOT_RUNNING = 1, NV_SLOT_TIMEDOUT = 2 };

struct nv_worker {
	/* Written by the worker per job. */
	uint64_t word __attribute__((aligned(NV_CL))); /* atomic */
	nv_job *job;     /* current job (valid while word is RUNNING) */
	uint32_t tmo_ms; /* atomic: the current execution's timeout */
	/* The batch popped last, shared: the owner and idle workers each
	 * claim an entry with an exchange, so jobs popped together with a
	 * long or stuck one are not held by it (see worker.c). */
	nv_job **batch;	  /* e->batch entries (atomic pointers) */
	uint32_t batch_n; /* atomic: entries of the latest batch */
	uint32_t holding; /* atomic: 1 unless parked with nothing in hand
			     (stop's drained() test) */
	/* Owner / lifecycle. */
	nv_engine *engine __attribute__((aligned(NV_CL)));
	unsigned index;
	pthread_t thread;
	int state;  /* atomic: 0 unused, 1 live, 2 exited (joinable) */
	/* Per-worker statistics (written by the worker only). */
	uint64_t started __attribute__((aligned(NV_CL)));
	uint64_t succeeded, failed, retried, timed_out;
};

/* One execution of one job (lives on the worker's stack). */
struct nv_ctx {
	nv_engine *engine;
	struct nv_worker *worker;
	nv_job *job;
	struct nv_taskdef *def;
	uint64_t seq; /* slot word of this execution, without state */
	unsigned attempt; /* this execution's attempt: after a timeout the
			     job's own counter moves on under a stuck fn */
	void *result;
	size_t result_len;
	char *error;
	bool hook_phase; /* inside a hook: errors are hook errors */
	bool hook_failed;
};

/* Single-writer statistics counter: plain load/store (no locked op), but
 * atomic so that readers (nv_engine_stats) do not race. */
#define NV_STAT_ADD(x, n)                                                      \
	__atomic_store_n(&(x), __atomic_load_n(&(x), __ATOMIC_RELAXED) + (n),  \
			 __ATOMIC_RELAXED)

/* ---------------------------------------------------------------- engine */

enum { NV_ENG_OPEN = 0, NV_ENG_RUNNING, NV_ENG_STOPPING, NV_ENG_STOPPED };

/* A counter sharded over cache lines, for hot statistics. */
#define NV_SHARDS 16
struct nv_shard {
	uint64_t v __attribute__((aligned(NV_CL)));
};

struct nv_engine {
	/* Hot, read-mostly. */
	/* The queue: nlanes MPMC rings (a power of two, one per worker up
	 * to NV_MAX_LANES). A dispatching thread pushes to its own lane
	 * (assigned round-robin at its first dispatch), falling over to the
	 * others when it is full; worker i pops lane i % nlanes first, then
	 * the others. So two producers do not fight over one tail index,
	 * yet every lane is drained by every worker. */
	nv_ring *lane[NV_MAX_LANES] __attribute__((aligned(NV_CL)));
	unsigned nlanes;
	nv_ring *prio; /* scheduled jobs, popped first */
	int state;     /* atomic */
	uint32_t max_args;
	uint32_t enqueue_timeout_ms;
	unsigned nworkers; /* configured */
	unsigned batch;
	bool has_observers;
	struct nv_persister *persister; /* NULL with memory backends */
	struct nv_queue *qbe; /* plugin queue backend (pump.c), else NULL */

	nv_ec not_empty __attribute__((aligned(NV_CL))); /* workers park */
	nv_ec not_full __attribute__((aligned(NV_CL)));  /* producers park */
	nv_ec done __attribute__((aligned(NV_CL)));      /* stop() waits */
	uint64_t next_id __attribute__((aligned(NV_CL))); /* atomic */
	uint64_t running __attribute__((aligned(NV_CL))); /* atomic */
	/* 1 while the scheduler does not sample the worker slots for
	 * timeouts (every worker idle): a worker starting a job clears it
	 * and pokes the scheduler (see scheduler.c, "Timeouts"). Read per
	 * job, written rarely: its own line. */
	uint32_t watch_off __attribute__((aligned(NV_CL))); /* atomic */
	unsigned lane_rr; /* atomic: next lane handed to a dispatcher */
	struct nv_shard enqueued[NV_SHARDS];

	nv_config cfg;
	uint64_t gen; /* distinguishes engines in per-thread id caches */
	unsigned stuck; /* atomic: workers inside a timed-out execution */
	int quit;       /* atomic: workers and scheduler exit */

	/* Registry. */
	struct cds_lfht *tasks;
	pthread_mutex_t reg_mu; /* serializes writers */
	struct nv_task *all_tasks;

	nv_ring *recycle[2]; /* free job records: untracked, tracked */

	/* Job table and retention. */
	struct cds_lfht *jobs;
	struct cds_wfcq_head fin_head;
	struct cds_wfcq_tail fin_tail;
	uint64_t nfinished; /* atomic: tracked jobs finished and kept */

	/* Workers. */
	struct nv_worker *workers; /* nworkers + max_extra slots */
	unsigned nslots;
	unsigned live; /* atomic: workers running their loop */

	/* Scheduler. */
	struct nv_sched_state *sched;

	/* Outcomes recorded by the scheduler (timeouts): scheduler-only
	 * writers. */
	uint64_t t_succeeded, t_failed, t_retried, t_timed_out;

	/* Observers. */
	nv_observer_fn obs_fn[NV_MAX_OBSERVERS];
	void *obs_arg[NV_MAX_OBSERVERS];
	unsigned nobs;

	pthread_mutex_t life_mu; /* start/stop/close */

	/* Jobs waiting behind a full ring (recovery, requeue on full). */
	pthread_mutex_t backlog_mu;
	nv_job **backlog;
	size_t back_head, back_n, back_cap;
	uint64_t backlog_n; /* atomic mirror of back_n for a cheap check */

	struct nv_task *orphans; /* recovered records of unknown tasks */
	size_t recovered_jobs, recovered_results;
	struct nv_store *store;  /* with a persistent backend */
	struct nv_results *rbe;  /* plugin result backend, else NULL */
	struct nv_pump *pump;    /* with a plugin queue backend */
	bool requeue_stored, keep_results, persister_started;
	/* start_in_slot holds it from publishing a slot's state = 1 until
	 * pthread_create has written w->thread; joiners read w->thread
	 * under it (nv__worker_thread), never a half-started slot's. */
	pthread_mutex_t spawn_mu;
};

/* backlog (engine.c): moves backlog jobs into the ring; returns how many. */
size_t nv__backlog_refill(nv_engine *e);

/* registry.c */
int nv__registry_init(nv_engine *e);
void nv__registry_fini(nv_engine *e);
static inline struct nv_taskdef *
nv__task_def(struct nv_task *t)
{
	/* Acquire pairs with the release publishing a new definition. */
	return __atomic_load_n(&t->def, __ATOMIC_ACQUIRE);
}

/* job.c */
int nv__jobs_init(nv_engine *e);
void nv__jobs_fini(nv_engine *e);
void nv__jobs_pool_fini(nv_engine *e);
nv_job *nv__job_new(nv_engine *e, struct nv_task *t, const void *args,
		    size_t len, bool tracked, nv_job_id id);
void nv__job_free(nv_job *j); /* untracked jobs and abandoned ones */
void nv__job_release(nv_job *j); /* final: free now or when unstuck */
int nv__job_table_add(nv_engine *e, nv_job *j);
void nv__job_table_reserve(nv_engine *e, size_t n); /* before n adds */
void nv__job_finished(nv_engine *e, nv_job *j); /* status final: wake,
						    retention */
void nv__jobs_evict(nv_engine *e); /* scheduler: enforce retention */
nv_job_id nv__id_alloc(nv_engine *e, size_t n);
void nv__rcu_thread_online(void); /* registers the calling thread once */

/* dispatch.c */
/* Pushes n jobs on the caller's lane (others when it is full), waiting
 * for room up to the enqueue timeout: 0, NV_EFULL, NV_ESTOPPED; *pushed
 * says how many went in (in order). */
int nv__queue_push_wait(nv_engine *e, nv_job *const *jobs, size_t n,
			size_t *pushed);
/* One job on any lane without waiting; false when every lane is full. */
bool nv__queue_try_push(nv_engine *e, nv_job *j);
size_t nv__queued(nv_engine *e); /* jobs in the lanes (approximate) */
void nv__notify_workers(nv_engine *e, size_t n);

/* worker.c */
int nv__workers_start(nv_engine *e);
int nv__worker_spawn(nv_engine *e); /* a replacement for a stuck one */
pthread_t nv__worker_thread(nv_engine *e, struct nv_worker *w); /* to join */
void nv__worker_timeout(nv_engine *e, struct nv_worker *w, uint64_t word);
void nv__job_requeue(nv_engine *e, nv_job *j); /* scheduler: retry due */

/* scheduler.c */
int nv__sched_init(nv_engine *e); /* at open: wheel, inbox */
int nv__sched_start(nv_engine *e);
void nv__sched_stop(nv_engine *e);
void nv__sched_free(nv_engine *e);
void nv__sched_retry(nv_engine *e, nv_job *j, uint64_t due_mono_ms);
void nv__sched_watch(nv_engine *e); /* a worker found sampling off */

/* engine.c */
void nv__emit(nv_engine *e, nv_event_type type, nv_job_id id,
	      struct nv_task *t, unsigned attempt, uint64_t latency_ns,
	      const char *error);
static inline void
nv__shard_add(struct nv_shard *s, uint64_t n)
{
	static __thread unsigned idx = UINT32_MAX;
	static unsigned next;
	if (idx == UINT32_MAX)
		idx = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) %
		      NV_SHARDS;
	__atomic_fetch_add(&s[idx].v, n, __ATOMIC_RELAXED);
}

#endif /* NV_ENGINE_INT_H */
