/* engine/persist_int.h - job events to the write-behind persister
 * (engine/persist.c). Called only when e->persister != NULL; none of them
 * waits for disk. */
#ifndef NV_ENGINE_PERSIST_INT_H
#define NV_ENGINE_PERSIST_INT_H

#include "engine/engine_int.h"

int nv__persist_enqueued(nv_engine *e, nv_job *j); /* NV_EIO when failed */
void nv__persist_dropped(nv_engine *e, nv_job_id id);
void nv__persist_started(nv_engine *e, nv_job *j);
void nv__persist_succeeded(nv_engine *e, nv_job *j, const void *res,
			   size_t len);
void nv__persist_failed(nv_engine *e, nv_job *j, const char *error);
void nv__persist_retry(nv_engine *e, nv_job *j, const char *error,
		       uint32_t delay_ms);
int nv__persist_error(nv_engine *e);

#endif
