/* engine/sched_int.h - the scheduler thread's state and messages
 * (scheduler.c, schedule.c). */
#ifndef NV_ENGINE_SCHED_INT_H
#define NV_ENGINE_SCHED_INT_H

#include "engine/engine_int.h"

enum {
	NV_MSG_RETRY = 1,    /* job, due */
	NV_MSG_SCHED_ADD,    /* sched */
	NV_MSG_SCHED_CANCEL, /* id */
};

struct nv_sched;

struct nv_msg {
	struct cds_wfcq_node node;
	int kind;
	nv_timer timer; /* NV_MSG_RETRY: the delay, on the wheel */
	nv_job *job;
	uint64_t due; /* mono ms */
	struct nv_sched *sched;
	nv_schedule_id id;
};

struct nv_sched_state {
	nv_wheel *wheel;
	pthread_t thread;
	bool started;
	bool draining; /* stopping: due jobs go to the leftovers */
	int quit;      /* atomic */
	uint32_t poke; /* atomic: a worker found sampling off */
	/* Timeout sampling (scheduler thread only). */
	nv_timer watch;     /* the sampler's periodic timer */
	bool watching;      /* the watch timer is armed */
	unsigned idle_samples; /* consecutive samples with every slot idle */
	uint64_t *seen;     /* per slot: the word of the execution last seen
			       running (0: none) */
	uint64_t *due;      /* per slot: mono ms its timeout expires */
	nv_ec ec __attribute__((aligned(NV_CL)));
	struct cds_wfcq_head head;
	struct cds_wfcq_tail tail;
	nv_job **left; /* delayed jobs still pending at stop */
	size_t nleft, capleft;
	struct nv_sched_table *schedules; /* schedule.c */
};

void nv__sched_post(nv_engine *e, struct nv_msg *m);
void nv__sched_leftover(nv_engine *e, nv_job *j);

/* schedule.c (runs on the scheduler thread unless noted) */
int nv__schedules_init(nv_engine *e);   /* at open */
void nv__schedules_stop(nv_engine *e);  /* cancels every timer */
void nv__schedules_free(nv_engine *e);  /* after the thread is gone */
void nv__schedule_msg(nv_engine *e, struct nv_msg *m);
void nv__schedule_msg_free(nv_engine *e, struct nv_msg *m); /* unhandled */

#endif
