/*
 * engine/backend_int.h - the built-in queue/result backends and the pieces
 * they share (engine/backend*.c).
 */
#ifndef NV_ENGINE_BACKEND_INT_H
#define NV_ENGINE_BACKEND_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nuvom.h"
#include "nuvom/backend.h"

extern const nv_queue_ops nv__memory_queue_ops;
extern const nv_queue_ops nv__file_queue_ops;
extern const nv_queue_ops nv__sqlite_queue_ops;
extern const nv_results_ops nv__memory_results_ops;
extern const nv_results_ops nv__file_results_ops;
extern const nv_results_ops nv__sqlite_results_ops;

/*
 * A job index (backend_index.c): id -> nv_job_info, with a retention cap
 * on finished entries (oldest finished evicted first; unfinished entries
 * are not counted). Not thread-safe: the owner locks.
 */
struct nv__jent;
typedef struct nv__jidx {
	struct nv__jent **b; /* hash buckets (chains) */
	size_t nb, n;
	struct nv__jent *fhead, *ftail; /* finished, oldest first */
	size_t nfin, retain;		/* retain 0 = keep all */
} nv__jidx;

int nv__jidx_init(nv__jidx *x, size_t retain);
void nv__jidx_fini(nv__jidx *x);
/* The entry of id (owned by the index, valid until the next change) or
 * NULL. */
const nv_job_info *nv__jidx_get(nv__jidx *x, nv_job_id id);
/* Inserts or replaces the entry of src->id with a copy of *src. A final
 * status enters the retention FIFO (evicting the oldest beyond retain).
 * NV_ENOMEM leaves the index as it was. */
int nv__jidx_put(nv__jidx *x, const nv_job_info *src);
/* The result backend getters over an index (see nuvom/backend.h). */
int nv__jidx_result(nv__jidx *x, nv_job_id id, void **buf, size_t *len);
int nv__jidx_error(nv__jidx *x, nv_job_id id, char **msg);
int nv__jidx_full(nv__jidx *x, nv_job_id id, nv_job_info **out);
int nv__jidx_list(nv__jidx *x, const nv_job_filter *f, nv_job_info ***out,
		  size_t *n);

/* store.c: the durable boot counter beside a store (ids of each opener
 * start at boot << NV__BOOT_SHIFT), and where a persistent backend kind
 * ("file", "sqlite") lives for cfg: file -> <data_dir>/log (data_dir is
 * created); sqlite -> the queue db when queue_side or when cfg's queue
 * backend is sqlite (one store per engine), else the result db. */
#define NV__BOOT_SHIFT 40
int nv__store_next_boot(const char *store_path, uint64_t *boot);
int nv__store_location(const nv_config *cfg, const char *kind, bool queue_side,
		       char *path, size_t len);

/* Effective config of a backend open (conf->cfg or defaults). */
const nv_config *nv__backend_cfg(const nv_backend_conf *conf, nv_config *tmp);

#endif
