/*
 * persistence/record.h - job event records, the unit every store persists.
 *
 * persistence/ knows records (typed bytes keyed by a job or schedule id),
 * never the engine. The engine turns job events into records, hands them
 * to a persister (persister.h), and on start folds the replayed records back
 * into jobs (engine/recovery.c).
 *
 * Meaning of the fields per type (unused fields are 0 / NULL):
 *
 *   type            id        attempt        time_ms          task  data          aux
 *   JOB_ENQUEUED    job id    attempts done  created (epoch)  name  args          -
 *   JOB_STARTED     job id    this attempt   started          -     -             -
 *   JOB_SUCCEEDED   job id    this attempt   finished         -     result bytes  -
 *   JOB_FAILED      job id    this attempt   finished         -     error text    -   (final failure)
 *   JOB_RETRY       job id    failed attempt due (epoch)      -     error text    -
 *   SCHED_ADDED     sched id  -              next fire        name  args          encoded schedule
 *   SCHED_CANCELLED sched id  -              cancelled        -     -             -
 *   SCHED_FIRED     sched id  -              fire time        -     -             -
 *
 * `seq` is assigned by the persister (strictly increasing per store).
 */
#ifndef NV_PERSIST_RECORD_H
#define NV_PERSIST_RECORD_H

#include <stddef.h>
#include <stdint.h>

typedef enum nv_rec_type {
	NV_REC_JOB_ENQUEUED = 1,
	NV_REC_JOB_STARTED = 2,
	NV_REC_JOB_SUCCEEDED = 3,
	NV_REC_JOB_FAILED = 4,
	NV_REC_JOB_RETRY = 5,
	NV_REC_SCHED_ADDED = 6,
	NV_REC_SCHED_CANCELLED = 7,
	NV_REC_SCHED_FIRED = 8,
	NV_REC_TYPE_MAX = 8
} nv_rec_type;

/* A record as the engine and the stores see it. Pointers borrow memory
 * owned by whoever built the record (the persister's node, or the store's
 * read buffer during a replay callback). */
typedef struct nv_rec {
	uint64_t seq;
	uint64_t id;
	int64_t time_ms;
	uint32_t attempt;
	uint8_t type; /* nv_rec_type */
	const char *task;
	uint32_t task_len;
	const void *data;
	uint32_t data_len;
	const void *aux;
	uint32_t aux_len;
} nv_rec;

/* Replay callback: return 0 to go on, non-zero to stop (that value is
 * returned by the replay). */
typedef int (*nv_rec_fn)(const nv_rec *r, void *arg);

#endif
