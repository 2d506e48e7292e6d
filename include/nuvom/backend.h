/*
 * nuvom/backend.h - queue and result backends as method tables.
 *
 * A queue backend holds jobs waiting to run (enqueue, dequeue with a
 * timeout, pop_batch, qsize, clear); a result backend holds what became of
 * them (set_result, set_error, get_result, get_error, get_full, list_jobs).
 * Like sqlite3_vfs, each backend is a versioned table of methods registered
 * under a name; an open instance is a struct that begins with a pointer to
 * its table (struct nv_queue / struct nv_results below, embedded first in
 * the backend's own struct). The core - and any user - calls a backend only
 * through the nv_queue_* / nv_results_* wrappers declared here: they check
 * arguments, count calls and errors per backend (nv_backend_stats) and are
 * the one place for tracing and fault injection.
 *
 * Built-in backends, registered under these names for both kinds:
 *   "memory"  queue: the lock-free ring (bounded: NV_EFULL at capacity);
 *             results: a hash with a retention cap, oldest evicted first.
 *   "file"    the append-only file log (persistence/) in <data_dir>/log.
 *   "sqlite"  the SQLite store (NUVOM_SQLITE_QUEUE_PATH / _RESULT_PATH).
 * file and sqlite write the same records the engine does, so an engine
 * configured with that backend and data_dir sees what a standalone
 * instance wrote, and the other way round. The file store holds an
 * exclusive lock (flock): one opener at a time, engine included.
 *
 * Threads: every wrapper is thread-safe; every built-in backend may be
 * called from several threads at once, and a plugin backend must be too.
 * open and close are not concurrent with other calls on the same instance.
 *
 * Ownership: enqueue and set_* copy what they are given. Everything a
 * backend hands out (nv_job_msg, nv_job_info, result bytes, error text)
 * is one allocation that the caller frees with nv_free (lists with
 * nv_job_info_list_free).
 *
 * Writing a plugin backend: docs/backends.md.
 */
#ifndef NUVOM_BACKEND_H
#define NUVOM_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "nuvom.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- records */

/* A job as a queue backend stores it. */
typedef struct nv_job_msg {
	nv_job_id id;	    /* 0 on enqueue: the backend assigns one */
	uint32_t attempt;   /* attempts already made */
	int64_t created_ms; /* epoch ms; 0 on enqueue: now */
	const char *task;   /* NUL-terminated */
	const void *args;
	size_t args_len;
} nv_job_msg;

/* One allocation holding the message and copies of task and args; free
 * with nv_free. NULL when out of memory or task is NULL. */
nv_job_msg *nv_job_msg_new(nv_job_id id, const char *task, const void *args,
			   size_t len, uint32_t attempt, int64_t created_ms);

/* What a result backend knows of one job. */
typedef struct nv_job_info {
	nv_job_id id;
	const char *task; /* "" when unknown */
	nv_status status;
	uint32_t attempts;			     /* attempts made */
	int64_t created_ms, started_ms, finished_ms; /* epoch ms, 0 unknown */
	const void *result; /* NV_SUCCESS: result bytes (may be NULL) */
	size_t result_len;
	const char *error; /* NV_FAILED: error text, else NULL */
} nv_job_info;

/* Packs a copy of *src (task, result, error included) into one
 * allocation; free with nv_free. NULL when out of memory. */
nv_job_info *nv_job_info_dup(const nv_job_info *src);

/* Frees a list from list_jobs (each entry, then the array). */
void nv_job_info_list_free(nv_job_info **list, size_t n);

typedef struct nv_job_filter {
	size_t limit; /* at most this many; 0 = all */
	int status;   /* an nv_status, or -1 = any */
} nv_job_filter;

/* Where a backend instance lives. */
typedef struct nv_backend_conf {
	const nv_config *cfg; /* NULL = defaults (nv_config_init) */
	const char *path;     /* overrides the location derived from cfg:
				 file -> a directory, sqlite -> a db file */
} nv_backend_conf;

/* ---------------------------------------------------------------- queues */

typedef struct nv_queue nv_queue;

#define NV_QUEUE_OPS_VERSION 1

/* Every method returns 0 or a negative NV_E*. Methods may be called from
 * several threads at once (not open/close). */
typedef struct nv_queue_ops {
	unsigned version; /* NV_QUEUE_OPS_VERSION; the methods below are v1 */
	const char *name; /* registry key; the string must outlive the
			     registration (a literal) */
	int (*open)(nv_queue **out, const nv_backend_conf *conf);
	void (*close)(nv_queue *q);
	/* Copies m. m->id == 0: assigns a fresh id (written back only via
	 * the message a dequeue returns). NV_EFULL when bounded and full. */
	int (*enqueue)(nv_queue *q, const nv_job_msg *m);
	/* Oldest message into *out (caller frees with nv_free).
	 * timeout_ms: 0 = try, < 0 = forever; NV_ETIMEDOUT when none came. */
	int (*dequeue)(nv_queue *q, nv_job_msg **out, int timeout_ms);
	/* Up to n oldest messages into out[0..*got); never waits (*got = 0
	 * and 0 when empty). */
	int (*pop_batch)(nv_queue *q, nv_job_msg **out, size_t n, size_t *got);
	int (*qsize)(nv_queue *q, uint64_t *n);
	/* Drops every waiting message; *removed (may be NULL) counts them. */
	int (*clear)(nv_queue *q, uint64_t *removed);
} nv_queue_ops;

struct nv_queue {
	const nv_queue_ops *ops; /* first member of every instance */
};

/* ---------------------------------------------------------------- results */

typedef struct nv_results nv_results;

#define NV_RESULTS_OPS_VERSION 1

/* Error contract of the getters: NV_ENOENT unknown id, NV_ENORESULT known
 * but no result (get_result) / no error (get_error), NV_EINVAL bad
 * arguments, NV_EIO store failure. */
typedef struct nv_results_ops {
	unsigned version; /* NV_RESULTS_OPS_VERSION; methods below are v1 */
	const char *name;
	int (*open)(nv_results **out, const nv_backend_conf *conf);
	void (*close)(nv_results *r);
	/* Records a success: info->id, task, attempts, times, result (copied;
	 * info->status and error are ignored). */
	int (*set_result)(nv_results *r, const nv_job_info *info);
	/* Records a final failure: like set_result with info->error. */
	int (*set_error)(nv_results *r, const nv_job_info *info);
	int (*get_result)(nv_results *r, nv_job_id id, void **buf, size_t *len);
	int (*get_error)(nv_results *r, nv_job_id id, char **msg);
	int (*get_full)(nv_results *r, nv_job_id id, nv_job_info **out);
	/* Newest first (created_ms, then id, descending). *out = NULL when
	 * *n == 0; free with nv_job_info_list_free. */
	int (*list_jobs)(nv_results *r, const nv_job_filter *f,
			 nv_job_info ***out, size_t *n);
} nv_results_ops;

struct nv_results {
	const nv_results_ops *ops; /* first member of every instance */
};

/* ---------------------------------------------------------------- registry */

/* Registers a backend under ops->name (the table is not copied: it must
 * outlive the process's use of it). Thread-safe. Returns 0, NV_EEXIST (the
 * name is taken), NV_EINVAL (NULL, no name, wrong version, a method
 * missing). There is no unregistration. */
int nv_queue_backend_register(const nv_queue_ops *ops);
int nv_results_backend_register(const nv_results_ops *ops);

/* The table registered under name, or NULL. Lock-free. */
const nv_queue_ops *nv_queue_backend_find(const char *name);
const nv_results_ops *nv_results_backend_find(const char *name);

/* Writes the registered names, comma-separated, into buf (truncated to
 * len). Returns the length the full list needs (like snprintf). */
size_t nv_queue_backend_names(char *buf, size_t len);
size_t nv_results_backend_names(char *buf, size_t len);

/* ---------------------------------------------------------------- wrappers */

/* Opens an instance of the backend registered under name. conf may be
 * NULL (defaults). NV_EINVAL unknown name; else what the backend says. */
int nv_queue_open(const char *name, const nv_backend_conf *conf,
		  nv_queue **out);
void nv_queue_close(nv_queue *q); /* NULL is a no-op */
int nv_queue_enqueue(nv_queue *q, const nv_job_msg *m);
int nv_queue_dequeue(nv_queue *q, nv_job_msg **out, int timeout_ms);
int nv_queue_pop_batch(nv_queue *q, nv_job_msg **out, size_t n, size_t *got);
int nv_queue_qsize(nv_queue *q, uint64_t *n);
int nv_queue_clear(nv_queue *q, uint64_t *removed);

int nv_results_open(const char *name, const nv_backend_conf *conf,
		    nv_results **out);
void nv_results_close(nv_results *r);
int nv_results_set_result(nv_results *r, const nv_job_info *info);
int nv_results_set_error(nv_results *r, const nv_job_info *info);
int nv_results_get_result(nv_results *r, nv_job_id id, void **buf, size_t *len);
int nv_results_get_error(nv_results *r, nv_job_id id, char **msg);
int nv_results_get_full(nv_results *r, nv_job_id id, nv_job_info **out);
int nv_results_list_jobs(nv_results *r, const nv_job_filter *f,
			 nv_job_info ***out, size_t *n);

/* Calls through the wrappers per backend, all instances together, since
 * registration. `errors` counts calls that returned an error other than
 * NV_ETIMEDOUT / NV_ENOENT / NV_ENORESULT (expected outcomes). */
enum {
	NV_BOP_OPEN = 0,
	NV_BOP_ENQUEUE, /* queue */
	NV_BOP_DEQUEUE,
	NV_BOP_POP_BATCH,
	NV_BOP_QSIZE,
	NV_BOP_CLEAR,
	NV_BOP_SET_RESULT = 1, /* results (same slots, other kind) */
	NV_BOP_SET_ERROR,
	NV_BOP_GET_RESULT,
	NV_BOP_GET_ERROR,
	NV_BOP_GET_FULL,
	NV_BOP_LIST_JOBS,
	NV_BOP_MAX = 7
};

typedef struct nv_backend_stats {
	uint64_t calls[NV_BOP_MAX]; /* indexed by NV_BOP_* */
	uint64_t errors;
	uint64_t items; /* queue: messages handed out; results: records set */
} nv_backend_stats;

/* NV_EINVAL unknown name or NULL out. */
int nv_queue_stats(const char *name, nv_backend_stats *out);
int nv_results_stats(const char *name, nv_backend_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* NUVOM_BACKEND_H */
