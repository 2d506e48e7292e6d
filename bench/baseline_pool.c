/*
 * baseline_pool.c - the classic thread pool nuvom's engine is measured
 * against: a mutex + condition variable protecting a linked list of
 * malloc'd jobs (function pointer + copied args), N worker threads that
 * sleep on the condvar when the list is empty. Same work as a nuvom job:
 * the args are copied at submit and freed after the run.
 */
#include "baseline_pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct pjob {
	struct pjob *next;
	nvb_pool_fn fn;
	size_t len;
	unsigned char args[];
};

struct nvb_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pjob *head, *tail;
	int waiting;
	int stop;
	unsigned n;
	pthread_t th[64];
};

static void *
pool_main(void *arg)
{
	struct nvb_pool *p = arg;
	for (;;) {
		struct pjob *j;
		pthread_mutex_lock(&p->mu);
		while (p->head == NULL && !p->stop) {
			p->waiting++;
			pthread_cond_wait(&p->cv, &p->mu);
			p->waiting--;
		}
		if (p->head == NULL) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		j = p->head;
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mu);
		j->fn(j->args, j->len);
		free(j);
	}
}

struct nvb_pool *
nvb_pool_create(unsigned nthreads)
{
	struct nvb_pool *p = calloc(1, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->n = nthreads > 64 ? 64 : nthreads;
	for (unsigned i = 0; i < p->n; i++)
		pthread_create(&p->th[i], NULL, pool_main, p);
	return p;
}

void
nvb_pool_submit(struct nvb_pool *p, nvb_pool_fn fn, const void *args,
		size_t len)
{
	struct pjob *j = malloc(sizeof(*j) + len);
	j->next = NULL;
	j->fn = fn;
	j->len = len;
	memcpy(j->args, args, len);
	pthread_mutex_lock(&p->mu);
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	int wake = p->waiting > 0;
	pthread_mutex_unlock(&p->mu);
	if (wake)
		pthread_cond_signal(&p->cv);
}

void
nvb_pool_destroy(struct nvb_pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->n; i++)
		pthread_join(p->th[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}
