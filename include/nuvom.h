/*
 * nuvom.h - the whole public API of nuvom, an in-process job engine.
 *
 * A task is a C function registered under a name. nv_delay/nv_map turn a
 * task name plus argument bytes into jobs; jobs travel through a bounded
 * lock-free ring to worker threads; a scheduler thread owns a timer wheel
 * for retries, timeouts and schedules; results land in a result store.
 *
 * Conventions:
 *  - Every function that can fail returns int: 0, or a negative NV_E* code
 *    (nuvom/error.h); nv_strerror(rc) gives a static message.
 *  - Handles are opaque. The caller owns nothing it did not allocate,
 *    except buffers returned through void ** / char **, which it frees with
 *    nv_free().
 *  - Arguments are copied at dispatch; the caller keeps its buffer.
 *  - Unless stated otherwise every function is thread-safe.
 */
#ifndef NUVOM_H
#define NUVOM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nuvom/error.h"
#include "nuvom/ring.h"
#include "nuvom/wheel.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NV_VERSION_MAJOR 0
#define NV_VERSION_MINOR 1
#define NV_VERSION_PATCH 0
#define NV_VERSION_STRING "0.1.0"

typedef struct nv_engine nv_engine;
typedef struct nv_ctx nv_ctx;   /* one execution of one job */
typedef struct nv_task nv_task; /* registered task handle */
typedef uint64_t nv_job_id;     /* unique across restarts of one store */
typedef uint64_t nv_schedule_id;

typedef enum { NV_PENDING, NV_RUNNING, NV_SUCCESS, NV_FAILED } nv_status;

typedef enum {
	NV_TIMEOUT_DEFAULT = 0, /* use the engine's policy */
	NV_TIMEOUT_RETRY,       /* retry if attempts are left, else FAILED */
	NV_TIMEOUT_FAIL,        /* FAILED at once */
	NV_TIMEOUT_IGNORE       /* SUCCESS with no result */
} nv_timeout_policy;

/* Static name of a status ("PENDING", ...); "UNKNOWN" when out of range. */
const char *nv_status_name(nv_status s);

/* A task: return 0 for success, non-zero for failure. Runs on a worker
 * thread; args stays valid until the function returns. */
typedef int (*nv_task_fn)(nv_ctx *ctx, const void *args, size_t len);

typedef struct nv_task_opts { /* zero-initialised = defaults */
	unsigned retries;        /* extra attempts after a failure */
	uint32_t retry_delay_ms; /* 0 = engine default */
	uint32_t timeout_ms;     /* 0 = engine default */
	nv_timeout_policy timeout_policy;
	bool discard_result; /* Nuvom's store_result=False */
	void (*before_job)(nv_ctx *);
	void (*after_job)(nv_ctx *); /* after success */
	void (*on_error)(nv_ctx *, const char *error);
	const char *description, *category;
	/* Additions beyond the spec. */
	bool retry_backoff; /* exponential backoff with jitter on retries */
} nv_task_opts;

typedef enum {
	NV_FSYNC_BATCH = 0, /* group commit: fsync every few ms / N events */
	NV_FSYNC_ALWAYS,    /* fsync each batch before acknowledging it */
	NV_FSYNC_OFF        /* leave it to the OS (data safe from a process
			       crash, not from power loss) */
} nv_fsync_policy;

typedef enum {
	NV_MISFIRE_ONCE = 0, /* a run missed while down fires once at start */
	NV_MISFIRE_SKIP      /* missed runs are skipped */
} nv_misfire_policy;

typedef enum {
	NV_LOG_ERROR = 0,
	NV_LOG_WARN,
	NV_LOG_INFO,
	NV_LOG_DEBUG
} nv_log_level;

#define NV_CONFIG_STR 256

typedef struct nv_config {     /* see nv_config_init for defaults */
	unsigned workers;          /* 0 = online CPUs */
	bool pin_workers;          /* pin worker i to CPU i mod ncpu */
	size_t queue_capacity;     /* ring slots, rounded up to 2^k; 65536 */
	const char *queue_backend; /* "memory" | "file" | "sqlite" | plugin */
	const char *result_backend; /* "memory" | "file" | "sqlite" | plugin */
	const char *data_dir;       /* default ".nuvom" */
	uint32_t job_timeout_ms;    /* default 30000 */
	uint32_t retry_delay_ms;    /* default retry delay: 1000 */
	nv_timeout_policy timeout_policy; /* default NV_TIMEOUT_RETRY */
	/* Additions beyond the spec (defaults in nv_config_init). */
	unsigned batch_size;         /* jobs a worker pops at once: 32 */
	uint32_t enqueue_timeout_ms; /* nv_delay wait on a full ring: 1000 */
	size_t max_args;             /* bytes of args per job: 1 MiB */
	size_t result_retention;     /* finished jobs kept: 1,000,000 */
	unsigned max_extra_workers;  /* replacements for stuck workers: =workers */
	nv_fsync_policy fsync;       /* NUVOM_FSYNC */
	uint32_t fsync_interval_ms;  /* group commit window: 2 */
	size_t persist_backlog;      /* job events waiting for the disk at
					most (then nv_delay waits, NV_EFULL
					after enqueue_timeout_ms): 262144 */
	nv_misfire_policy misfire;   /* NUVOM_MISFIRE_POLICY */
	nv_log_level log_level;      /* NUVOM_LOG_LEVEL: WARN */
	const char *manifest_path;   /* NUVOM_MANIFEST_PATH */
	const char *sqlite_queue_path;  /* NUVOM_SQLITE_QUEUE_PATH */
	const char *sqlite_result_path; /* NUVOM_SQLITE_RESULT_PATH */
	const char *environment;        /* NUVOM_ENVIRONMENT: "dev" */
	/* Storage for strings read by nv_config_from_env (the const char *
	 * fields above point here when set from the environment). */
	char nv__strbuf[8][NV_CONFIG_STR];
} nv_config;

/* Fills cfg with the defaults. */
void nv_config_init(nv_config *cfg);

/* Overrides cfg fields from NUVOM_* variables of the process environment
 * and, when dotenv_path is not NULL, from that .env file (the process
 * environment wins over the file). An unknown NUVOM_* name or a bad value
 * returns NV_ECONFIG and leaves a message naming the variable in
 * nv_config_error(). A missing dotenv file is NV_ENOENT. */
int nv_config_from_env(nv_config *cfg, const char *dotenv_path);

/* Message about the last nv_config_from_env failure on this thread. */
const char *nv_config_error(void);

/* Creates an engine (nothing runs yet). cfg may be NULL for defaults; it is
 * copied. Returns 0, NV_EINVAL, NV_ENOMEM. */
int nv_engine_open(nv_engine **out, const nv_config *cfg);

/* Starts workers, scheduler and persisters; recovers stored jobs. */
int nv_engine_start(nv_engine *e);

/* Stops intake (later dispatches get NV_ESTOPPED), lets queued and running
 * jobs finish for up to grace_ms, flushes persisters, joins the threads it
 * can. nv_ctx_cancelled() is true for running jobs from the start of the
 * stop. Returns 0, or NV_ETIMEDOUT when jobs were still running or still
 * queued at the end of the grace period (running ones are abandoned and
 * their results discarded; queued ones stay queued: with a persistent
 * queue backend they run after the next start). Retries and schedules
 * waiting on the timer wheel do not delay a stop. */
int nv_engine_stop(nv_engine *e, uint32_t grace_ms);

/* Stops (grace 0) if needed and frees everything. */
void nv_engine_close(nv_engine *e);

/* Registration flags. */
#define NV_REG_FORCE 0x1u  /* replace an existing task of that name */
#define NV_REG_SILENT 0x2u /* existing name: keep the old one, return 0 */

/* Registers fn under name (copied). opts may be NULL (defaults) and its
 * strings are copied. Returns 0, NV_EINVAL, NV_EEXIST, NV_ENOMEM. */
int nv_task_register(nv_engine *e, const char *name, nv_task_fn fn,
		     const nv_task_opts *opts, unsigned flags);

/* Lock-free lookup; the handle stays valid until nv_engine_close (a forced
 * re-registration makes later dispatches through it use the new function).
 * NULL when unknown. */
nv_task *nv_task_lookup(nv_engine *e, const char *name);

/* Name of a task handle (valid as long as the handle). */
const char *nv_task_name(const nv_task *t);

/* Dispatch one job. Args are copied. Returns 0, NV_ENOTASK, NV_E2BIG,
 * NV_EFULL (ring still full after the enqueue timeout), NV_ESTOPPED,
 * NV_EINVAL, NV_ENOMEM, NV_EIO (persistent store in a failed state). */
int nv_delay(nv_engine *e, const char *task, const void *args, size_t len,
	     nv_job_id *out_id);
int nv_task_delay(nv_task *t, const void *args, size_t len,
		  nv_job_id *out_id);

typedef struct nv_args {
	const void *data;
	size_t len;
} nv_args;

/* Dispatch n jobs of one task with bulk ring operations. On failure no job
 * of the call was dispatched except those whose ids were written, and the
 * return code says why; with out_ids, ids of jobs not dispatched are 0. */
int nv_map(nv_engine *e, const char *task, const nv_args *argv, size_t n,
	   nv_job_id *out_ids);

/* Scheduling: exactly one of at_ms / in_ms / interval_ms / cron is set. */
typedef struct nv_schedule {
	int64_t at_ms;        /* absolute, Unix epoch milliseconds, UTC */
	int64_t in_ms;        /* one-off, relative to now */
	uint64_t interval_ms; /* recurring */
	const char *cron;     /* 5 or 6 fields, names, @daily ... */
	const char *timezone; /* IANA zone for cron, NULL = "UTC" */
} nv_schedule;

/* Adds a schedule of `task` with args (copied). Returns 0, NV_EINVAL (not
 * exactly one of at/in/interval/cron set, bad zone), NV_ECRON (bad cron;
 * see nv_cron_next), NV_ENOTASK, NV_E2BIG, NV_ESTOPPED, NV_ENOMEM. Jobs
 * of a schedule go on the priority ring, ahead of ordinary work. An at_ms
 * in the past fires once at start (misfire policy ONCE) or is dropped
 * (SKIP). Interval schedules run at a fixed rate from the time they were
 * added (runs missed while late are skipped, not bunched) and keep running
 * whether or not a run failed. May be called before nv_engine_start. */
int nv_schedule_add(nv_engine *e, const char *task, const void *args,
		    size_t len, const nv_schedule *when,
		    nv_schedule_id *out_id);
/* Cancels a schedule (no further runs; a job already dispatched runs).
 * Safe from any thread, including a task of that schedule. NV_ENOENT when
 * unknown or already finished. */
int nv_schedule_cancel(nv_engine *e, nv_schedule_id id);

typedef enum {
	NV_SCHED_ONCE,
	NV_SCHED_INTERVAL,
	NV_SCHED_CRON
} nv_schedule_kind;

typedef struct nv_schedule_info {
	nv_schedule_id id;
	nv_schedule_kind kind;
	int64_t next_ms;      /* next fire, epoch ms UTC */
	uint64_t interval_ms; /* NV_SCHED_INTERVAL */
	uint64_t fired;       /* jobs dispatched so far */
	char task[256];
	char cron[128];    /* NV_SCHED_CRON, truncated if longer */
	char timezone[64]; /* NV_SCHED_CRON */
} nv_schedule_info;

/* Copies up to cap live schedules (ordered by id) into out and sets *count
 * to how many there are (may exceed cap). out may be NULL when cap is 0. */
int nv_schedule_list(nv_engine *e, nv_schedule_info *out, size_t cap,
		     size_t *count);

/* Next fire time strictly after after_ms (UTC epoch ms) of a cron
 * expression evaluated in an IANA zone (NULL = "UTC"); NV_ECRON / NV_EINVAL
 * on bad input, NV_ENOENT when the expression never fires again. */
int nv_cron_next(const char *cron, const char *timezone, int64_t after_ms,
		 int64_t *next_ms);

/* Returns once every job event issued before the call is durable (a no-op
 * with the memory backends). NV_ETIMEDOUT, NV_EIO. timeout_ms < 0 waits
 * forever. */
int nv_flush(nv_engine *e, int timeout_ms);

/* Results. nv_job_wait blocks (no polling) until the job is SUCCESS or
 * FAILED; timeout_ms < 0 waits forever. NV_ENOENT for an unknown id (or one
 * evicted by retention), NV_ETIMEDOUT. */
int nv_job_wait(nv_engine *e, nv_job_id id, int timeout_ms, nv_status *out);
int nv_job_status(nv_engine *e, nv_job_id id, nv_status *out);
/* *buf (free with nv_free) holds the result; NV_ENORESULT when the job has
 * not succeeded or stored nothing (*buf = NULL, *len = 0). */
int nv_job_result(nv_engine *e, nv_job_id id, void **buf, size_t *len);
/* *msg (free with nv_free) is the last error text; NV_ENORESULT if none. */
int nv_job_error(nv_engine *e, nv_job_id id, char **msg);
void nv_free(void *p);

/* Inside a task (the ctx is valid only during the call). */
int nv_ctx_set_result(nv_ctx *c, const void *buf, size_t len);
int nv_ctx_set_error(nv_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
bool nv_ctx_cancelled(const nv_ctx *c); /* timeout or shutdown: stop soon */
nv_job_id nv_ctx_job_id(const nv_ctx *c);
unsigned nv_ctx_attempt(const nv_ctx *c); /* 1 on the first run */
const char *nv_ctx_task_name(const nv_ctx *c);
nv_engine *nv_ctx_engine(const nv_ctx *c);

/* Engine-wide observers: every job event, on the thread where it happens
 * (caller, worker or scheduler). Keep them short and non-blocking. */
typedef enum {
	NV_EV_ENQUEUED,
	NV_EV_STARTED,
	NV_EV_SUCCEEDED,
	NV_EV_FAILED,  /* final failure */
	NV_EV_RETRY,   /* failed attempt, another one scheduled */
	NV_EV_TIMEOUT, /* attempt ran past its timeout */
	NV_EV_HOOK_FAILED
} nv_event_type;

typedef struct nv_event {
	nv_event_type type;
	nv_job_id id;
	const char *task;
	unsigned attempt;
	int64_t time_ms;     /* epoch ms */
	uint64_t latency_ns; /* STARTED: enqueue-to-start; final: run time */
	const char *error;   /* FAILED/RETRY/TIMEOUT/HOOK_FAILED, else NULL */
} nv_event;

typedef void (*nv_observer_fn)(const nv_event *ev, void *arg);

/* Adds an observer (at most 16). Call before nv_engine_start. */
int nv_engine_observe(nv_engine *e, nv_observer_fn fn, void *arg);

typedef struct nv_stats {
	uint64_t enqueued, started, succeeded, failed, retried, timed_out;
	uint64_t queued;   /* approximate ring depth */
	uint64_t running;  /* jobs in a task function now */
	unsigned workers;  /* live worker threads, replacements included */
	uint64_t results;  /* finished jobs held by the result store */
	int store_error;   /* 0, or the NV_E* code of a failed persister */
} nv_stats;

int nv_engine_stats(nv_engine *e, nv_stats *out);

#ifdef __cplusplus
}
#endif

/* Queue and result backends as method tables (plugins, standalone use). */
#include "nuvom/backend.h"

#endif /* NUVOM_H */
