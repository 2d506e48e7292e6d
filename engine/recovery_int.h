/* engine/recovery_int.h - rebuilding state from a store (recovery.c) and
 * the pieces of other modules it uses. */
#ifndef NV_ENGINE_RECOVERY_INT_H
#define NV_ENGINE_RECOVERY_INT_H

#include "engine/engine_int.h"
#include "persistence/store.h"

/* Replays `store` into e (before workers start). requeue: put unfinished
 * jobs and schedules back; results: make finished jobs readable. */
int nv__recover(nv_engine *e, nv_store *store, bool requeue, bool results);

/* A task handle for records whose task is not registered (never run). */
struct nv_task *nv__orphan_task(nv_engine *e, const char *name);

/* Queues j behind the ring (it enters the ring as the ring drains). */
void nv__backlog_push(nv_engine *e, nv_job *j);

/* schedule.c */
int nv__schedule_restore(nv_engine *e, nv_schedule_id id, const char *task,
			 const void *args, size_t len, const char *spec,
			 int64_t next_ms, int64_t last_fired);
void nv__schedules_set_next_id(nv_engine *e, uint64_t next);

#endif
