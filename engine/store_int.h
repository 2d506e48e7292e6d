/* engine/store_int.h - queue/result backends of an engine (engine/store.c):
 * "memory" (nothing to do) or a persistent store behind the write-behind
 * persister. */
#ifndef NV_ENGINE_STORE_INT_H
#define NV_ENGINE_STORE_INT_H

#include "engine/engine_int.h"
#include "nuvom/backend.h"

int nv__store_open(nv_engine *e);  /* checks the backend names */
int nv__store_start(nv_engine *e); /* recovery, then the persister */
int nv__store_stop(nv_engine *e);  /* flush and stop the persister */
void nv__store_close(nv_engine *e);
int nv__store_error(nv_engine *e); /* 0 or the persister's NV_E* */

/* pump.c: plugin queue/result backends (e->qbe / e->rbe). */
int nv__pump_create(nv_engine *e);
int nv__pump_start(nv_engine *e);
void nv__pump_stop(nv_engine *e); /* after the workers left */
void nv__pump_destroy(nv_engine *e);
/* Hands jobs to the queue backend (dispatch); *pushed = how many went. */
int nv__pump_submit(nv_engine *e, nv_job *const *jobs, size_t n,
		    size_t *pushed);
bool nv__pump_idle(nv_engine *e); /* backend empty, nothing in hand */
void nv__pump_result(nv_engine *e, nv_job *j); /* tracked, final */
/* Fallbacks for ids not in the job table (job.c). */
int nv__pump_status(nv_engine *e, nv_job_id id, nv_status *out);

#endif
