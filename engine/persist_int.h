/* engine/persist_int.h - job events to the write-behind persister
 * (engine/persist.c). Called only when e->persister != NULL; none of them
 * waits for disk, only (parked) for room when the persister's backlog is
 * at its bound (persister.h). */
#ifndef NV_ENGINE_PERSIST_INT_H
#define NV_ENGINE_PERSIST_INT_H

#include "engine/engine_int.h"

/* The ENQUEUED record of j; waits for room in the persister's backlog at
 * most the engine's enqueue timeout. 0, NV_EFULL (nothing submitted),
 * NV_ESTOPPED, NV_ENOMEM, NV_EIO when failed. */
int nv__persist_enqueued(nv_engine *e, nv_job *j);
/* The same with its own limit (timeout_ms < 0: none; for the scheduler,
 * which must not drop a fired job's record). */
int nv__persist_enqueued_wait(nv_engine *e, nv_job *j, int timeout_ms);
void nv__persist_dropped(nv_engine *e, nv_job_id id);
void nv__persist_started(nv_engine *e, nv_job *j);
void nv__persist_succeeded(nv_engine *e, nv_job *j, const void *res,
			   size_t len);
void nv__persist_failed(nv_engine *e, nv_job *j, const char *error);
void nv__persist_retry(nv_engine *e, nv_job *j, const char *error,
		       uint32_t delay_ms);
int nv__persist_error(nv_engine *e);

#endif
