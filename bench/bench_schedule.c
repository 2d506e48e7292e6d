/*
 * bench_schedule.c - schedules on the engine against a heap scheduler.
 *
 * Two implementations behind one ops table:
 *  - engine: nv_schedule_add / nv_schedule_cancel on a started engine
 *    (2 workers). A schedule's job goes through the scheduler thread's
 *    timer wheel and the priority ring to a worker.
 *  - heap: the classic design: a binary heap of deadlines
 *    (bench/baseline_heap.c) under a mutex, one driver thread sleeping on
 *    a condvar until the earliest deadline; due timers are collected under
 *    the lock and handed, after it, to a mutex+condvar pool of 2 threads
 *    (bench/baseline_pool.c). Cancel is by pointer (no id lookup).
 * Both copy 16 bytes of args per schedule and run the same job function.
 *
 * Cases (details and measured numbers in bench/README.md (schedule section)):
 *  - add / cancel with N live far-future schedules (N = 1k, 100k; 1M with
 *    --full): M adds then M cancels, caller-side ns each, and ns per
 *    add+cancel pair "settled": until a barrier (a schedule due now) has
 *    run, so work queued for the scheduler thread is counted;
 *  - fire: N one-offs due at the same moment: (last job done - due) / N;
 *  - lateness: 500 in_ms schedules spread over 1 s: job start - due,
 *    p50 / p99.
 * Repetitions alternate which implementation goes first; medians are
 * reported with heap/engine ratios (> 1: the engine is faster).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "baseline_heap.h"
#include "baseline_pool.h"
#include "bench.h"
#include "nuvom.h"

/* ---------------------------------------------------------------- jobs */

struct sarg {
	uint64_t idx;
	uint64_t tag; /* 0: counted job, 1: barrier */
};

static uint64_t done;	    /* atomic: counted jobs run */
static uint64_t target;	    /* done value that stamps done_ns */
static uint64_t done_ns;    /* atomic: mono ns when done reached target */
static uint64_t barrier_ok; /* atomic */
static uint64_t *start_ns;  /* per idx, or NULL */
static uint64_t started;    /* atomic: counted jobs started */
static uint64_t first_ns;   /* atomic: mono ns of the first start */

static void
job_body(const void *args, size_t len)
{
	struct sarg a;
	if (len != sizeof(a))
		return;
	memcpy(&a, args, sizeof(a));
	if (a.tag == 1) {
		__atomic_store_n(&barrier_ok, 1, __ATOMIC_RELEASE);
		return;
	}
	uint64_t now = nvb_now_ns();
	if (start_ns != NULL)
		start_ns[a.idx] = now;
	if (__atomic_fetch_add(&started, 1, __ATOMIC_ACQ_REL) == 0)
		__atomic_store_n(&first_ns, now, __ATOMIC_RELEASE);
	if (__atomic_add_fetch(&done, 1, __ATOMIC_ACQ_REL) == target)
		__atomic_store_n(&done_ns, nvb_now_ns(), __ATOMIC_RELEASE);
}

static int
engine_job(nv_ctx *c, const void *args, size_t len)
{
	(void)c;
	job_body(args, len);
	return 0;
}

static void
reset(uint64_t want)
{
	__atomic_store_n(&done, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&target, want, __ATOMIC_RELEASE);
	__atomic_store_n(&done_ns, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&barrier_ok, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&started, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&first_ns, 0, __ATOMIC_RELEASE);
}

static bool
wait_flag(uint64_t *flag, double max_s)
{
	uint64_t end = nvb_now_ns() + (uint64_t)(max_s * 1e9);
	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
		if (nvb_now_ns() > end)
			return false;
		struct timespec ts = {0, 50000};
		nanosleep(&ts, NULL);
	}
	return true;
}

static uint64_t
mono_us(void)
{
	return nvb_now_ns() / 1000u;
}

/* ------------------------------------------------ heap scheduler baseline */

struct hsched {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	nvb_heap *heap;
	pthread_t th;
	bool quit;
	struct nvb_pool *pool;
	struct hent **due; /* collected by the advance callback */
	size_t ndue, capdue;
};

struct hent {
	nvb_htimer t;
	struct hsched *hs;
	size_t len;
	unsigned char args[16];
};

static void
hent_due(nvb_htimer *t, void *arg)
{
	struct hent *h = arg;
	struct hsched *hs = h->hs;
	(void)t;
	if (hs->ndue == hs->capdue) {
		hs->capdue = hs->capdue ? hs->capdue * 2 : 1024;
		hs->due = realloc(hs->due, hs->capdue * sizeof(*hs->due));
	}
	hs->due[hs->ndue++] = h;
}

static void
pool_job(const void *args, size_t len)
{
	job_body(args, len);
}

static void *
hsched_main(void *arg)
{
	struct hsched *hs = arg;
	pthread_mutex_lock(&hs->mu);
	while (!hs->quit) {
		hs->ndue = 0;
		nvb_heap_advance(hs->heap, mono_us());
		if (hs->ndue > 0) {
			/* Hand the due ones to the pool outside the lock. */
			struct hent **due = hs->due;
			size_t n = hs->ndue;
			hs->due = NULL;
			hs->ndue = hs->capdue = 0;
			pthread_mutex_unlock(&hs->mu);
			for (size_t i = 0; i < n; i++) {
				nvb_pool_submit(hs->pool, pool_job,
						due[i]->args, due[i]->len);
				free(due[i]);
			}
			free(due);
			pthread_mutex_lock(&hs->mu);
			continue;
		}
		uint64_t next = nvb_heap_next_deadline(hs->heap);
		if (next == UINT64_MAX) {
			pthread_cond_wait(&hs->cv, &hs->mu);
		} else {
			struct timespec ts = {(time_t)(next / 1000000),
					      (long)(next % 1000000) * 1000L};
			pthread_cond_timedwait(&hs->cv, &hs->mu, &ts);
		}
	}
	pthread_mutex_unlock(&hs->mu);
	return NULL;
}

static struct hsched *
hsched_new(void)
{
	struct hsched *hs = calloc(1, sizeof(*hs));
	pthread_condattr_t ca;
	pthread_mutex_init(&hs->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&hs->cv, &ca);
	pthread_condattr_destroy(&ca);
	nvb_heap_create(&hs->heap, mono_us(), 1024);
	hs->pool = nvb_pool_create(2);
	pthread_create(&hs->th, NULL, hsched_main, hs);
	return hs;
}

static void
hsched_free(struct hsched *hs)
{
	pthread_mutex_lock(&hs->mu);
	hs->quit = true;
	pthread_cond_signal(&hs->cv);
	pthread_mutex_unlock(&hs->mu);
	pthread_join(hs->th, NULL);
	nvb_pool_destroy(hs->pool);
	/* Timers still pending: cancel and free them. */
	while (nvb_heap_count(hs->heap) > 0) {
		hs->ndue = 0;
		nvb_heap_advance(hs->heap, UINT64_MAX - 1);
		for (size_t i = 0; i < hs->ndue; i++)
			free(hs->due[i]);
	}
	free(hs->due);
	nvb_heap_destroy(hs->heap);
	pthread_cond_destroy(&hs->cv);
	pthread_mutex_destroy(&hs->mu);
	free(hs);
}

static struct hent *
hsched_add(struct hsched *hs, const void *args, size_t len, uint64_t due_us)
{
	struct hent *h = malloc(sizeof(*h));
	h->hs = hs;
	h->len = len;
	memcpy(h->args, args, len);
	nvb_htimer_init(&h->t, hent_due, h);
	pthread_mutex_lock(&hs->mu);
	nvb_heap_add(hs->heap, &h->t, due_us);
	if (nvb_heap_next_deadline(hs->heap) == due_us)
		pthread_cond_signal(&hs->cv); /* new earliest */
	pthread_mutex_unlock(&hs->mu);
	return h;
}

static void
hsched_cancel(struct hsched *hs, struct hent *h)
{
	pthread_mutex_lock(&hs->mu);
	bool was = nvb_heap_cancel(hs->heap, &h->t);
	pthread_mutex_unlock(&hs->mu);
	if (was)
		free(h);
}

/* ------------------------------------------------------------ ops table */

struct impl {
	nv_engine *e;
	struct hsched *hs;
};

struct sched_ops {
	const char *name;
	bool (*open)(struct impl *im);
	void (*close)(struct impl *im);
	/* in_ms from now (mono); returns a handle for cancel. */
	uint64_t (*add_in)(struct impl *im, const struct sarg *a,
			   uint64_t in_ms);
	/* all due at the same moment: mono ns `due_ns` */
	uint64_t (*add_at)(struct impl *im, const struct sarg *a,
			   uint64_t due_ns);
	void (*cancel)(struct impl *im, uint64_t h);
};

static bool
eng_open(struct impl *im)
{
	nv_config cfg;
	nv_task_opts o = {.discard_result = true};
	nv_config_init(&cfg);
	cfg.workers = 2;
	cfg.log_level = NV_LOG_ERROR;
	if (nv_engine_open(&im->e, &cfg) != 0)
		return false;
	if (nv_task_register(im->e, "job", engine_job, &o, 0) != 0 ||
	    nv_engine_start(im->e) != 0) {
		nv_engine_close(im->e);
		return false;
	}
	return true;
}

static void
eng_close(struct impl *im)
{
	nv_engine_stop(im->e, 1000);
	nv_engine_close(im->e);
}

static uint64_t
eng_add_in(struct impl *im, const struct sarg *a, uint64_t in_ms)
{
	nv_schedule_id id = 0;
	nv_schedule w = {.in_ms = (int64_t)in_ms};
	if (in_ms == 0)
		w.in_ms = 1;
	if (nv_schedule_add(im->e, "job", a, sizeof(*a), &w, &id) != 0)
		abort();
	return id;
}

/* Epoch ms at mono ns t (the engine speaks epoch time). */
static int64_t
epoch_of(uint64_t t)
{
	struct timespec rt;
	uint64_t m = nvb_now_ns();
	clock_gettime(CLOCK_REALTIME, &rt);
	int64_t rt_ns = (int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec;
	/* Rounded up: the engine's deadline is not before t (it still
	 * rounds again to its 1 ms tick when it arms). */
	return (rt_ns + ((int64_t)t - (int64_t)m) + 999999) / 1000000;
}

static uint64_t
eng_add_at(struct impl *im, const struct sarg *a, uint64_t due_ns)
{
	static int64_t at;
	static uint64_t for_ns;
	nv_schedule_id id = 0;
	if (for_ns != due_ns) { /* one conversion per batch: same at_ms */
		at = epoch_of(due_ns);
		for_ns = due_ns;
	}
	nv_schedule w = {.at_ms = at};
	if (nv_schedule_add(im->e, "job", a, sizeof(*a), &w, &id) != 0)
		abort();
	return id;
}

static void
eng_cancel(struct impl *im, uint64_t h)
{
	if (nv_schedule_cancel(im->e, h) != 0)
		abort();
}

static bool
heap_open(struct impl *im)
{
	im->hs = hsched_new();
	return im->hs != NULL;
}

static void
heap_close(struct impl *im)
{
	hsched_free(im->hs);
}

static uint64_t
heap_add_in(struct impl *im, const struct sarg *a, uint64_t in_ms)
{
	return (uint64_t)(uintptr_t)hsched_add(im->hs, a, sizeof(*a),
					       mono_us() + in_ms * 1000u);
}

static uint64_t
heap_add_at(struct impl *im, const struct sarg *a, uint64_t due_ns)
{
	return (uint64_t)(uintptr_t)hsched_add(im->hs, a, sizeof(*a),
					       due_ns / 1000u);
}

static void
heap_cancel(struct impl *im, uint64_t h)
{
	hsched_cancel(im->hs, (struct hent *)(uintptr_t)h);
}

static const struct sched_ops impls[2] = {
    {"engine", eng_open, eng_close, eng_add_in, eng_add_at, eng_cancel},
    {"heap", heap_open, heap_close, heap_add_in, heap_add_at, heap_cancel},
};

/* A schedule due now has run: everything posted before it was handled
 * (the engine's scheduler inbox is FIFO). */
static bool
barrier(const struct sched_ops *ops, struct impl *im)
{
	struct sarg b = {0, 1};
	__atomic_store_n(&barrier_ok, 0, __ATOMIC_RELEASE);
	ops->add_in(im, &b, 0);
	return wait_flag(&barrier_ok, 30);
}

/* ----------------------------------------------------------- add/cancel */

struct addcancel {
	double add_ns, cancel_ns, settled_ns;
};

/* With im holding n live far-future schedules: m adds, m cancels. */
static bool
add_cancel_round(const struct sched_ops *ops, struct impl *im, size_t m,
		 uint64_t *h, struct addcancel *out)
{
	struct sarg a = {0, 0};
	uint64_t t0 = nvb_now_ns();
	for (size_t i = 0; i < m; i++) {
		a.idx = i;
		h[i] = ops->add_in(im, &a, 3600000 + i % 60000);
	}
	uint64_t t1 = nvb_now_ns();
	for (size_t i = 0; i < m; i++)
		ops->cancel(im, h[i]);
	uint64_t t2 = nvb_now_ns();
	if (!barrier(ops, im))
		return false;
	uint64_t t3 = nvb_now_ns();
	/* The barrier's own latency (up to a tick for the engine) is not
	 * add/cancel work: take off one idle barrier. */
	if (!barrier(ops, im))
		return false;
	uint64_t tb = nvb_now_ns() - t3;
	out->add_ns = (double)(t1 - t0) / (double)m;
	out->cancel_ns = (double)(t2 - t1) / (double)m;
	out->settled_ns =
	    (double)(t3 - t0 - (tb < t3 - t2 ? tb : 0)) / (double)m;
	return true;
}

static void
fill(const struct sched_ops *ops, struct impl *im, size_t n)
{
	struct sarg a = {0, 0};
	for (size_t i = 0; i < n; i++) {
		a.idx = i;
		ops->add_in(im, &a, 3600000 + (i * 7919) % 3600000);
	}
}

static void
bench_add_cancel(nvb_ctx *ctx, size_t n, int reps, int *errors)
{
	size_t m = n < 10000 ? 10000 : 20000;
	uint64_t *h = malloc(m * sizeof(*h));
	struct impl im[2];
	double v[2][3][16];
	char bcase[64];

	for (int k = 0; k < 2; k++) {
		if (!impls[k].open(&im[k]))
			abort();
		fill(&impls[k], &im[k], n);
		barrier(&impls[k], &im[k]);
	}
	for (int r = 0; r < reps; r++)
		for (int kk = 0; kk < 2; kk++) {
			int k = (kk + r) % 2;
			struct addcancel ac = {0, 0, 0};
			if (!add_cancel_round(&impls[k], &im[k], m, h, &ac))
				(*errors)++;
			v[k][0][r] = ac.add_ns;
			v[k][1][r] = ac.cancel_ns;
			v[k][2][r] = ac.settled_ns;
		}
	size_t cnt = 0; /* the engine still holds exactly the n */
	if (nv_schedule_list(im[0].e, NULL, 0, &cnt) != 0 || cnt != n)
		(*errors)++;
	for (int k = 0; k < 2; k++)
		impls[k].close(&im[k]);
	static const char *what[3] = {"add", "cancel", "add+cancel settled"};
	for (int w = 0; w < 3; w++) {
		double me = nvb_median(v[0][w], reps);
		double mh = nvb_median(v[1][w], reps);
		snprintf(bcase, sizeof(bcase), "%s, %zuk live", what[w],
			 n / 1000);
		nvb_report(ctx, "schedule", bcase, "engine", me, "ns/sched");
		nvb_report(ctx, "schedule", bcase, "heap", mh, "ns/sched");
		nvb_report(ctx, "schedule", bcase, "heap/engine", mh / me, "x");
	}
	free(h);
}

/* ----------------------------------------------------------------- fire */

/* n one-offs due at one moment. out[0]: ns per schedule from the due
 * time to the last job done; out[1]: from the first job's start to the
 * last job done (without the wake-up, which at 1k is most of out[0] and
 * is where the engine's 1 ms tick shows). false when the adds did not
 * finish before the due time (the caller retries with more lead). */
static bool
fire_round(const struct sched_ops *ops, size_t n, uint64_t lead_ms,
	   double out[2], int *errors)
{
	struct impl im;
	struct sarg a = {0, 0};
	bool ok = true;
	if (!ops->open(&im))
		abort();
	reset(n);
	uint64_t due = (nvb_now_ns() / 1000000u + lead_ms) * 1000000u;
	for (size_t i = 0; i < n; i++) {
		a.idx = i;
		ops->add_at(&im, &a, due);
	}
	if (nvb_now_ns() + 1000000u >= due)
		ok = false;
	if (!wait_flag(&done_ns, 60))
		(*errors)++;
	if (__atomic_load_n(&done, __ATOMIC_ACQUIRE) != n)
		(*errors)++;
	uint64_t end = __atomic_load_n(&done_ns, __ATOMIC_ACQUIRE);
	uint64_t first = __atomic_load_n(&first_ns, __ATOMIC_ACQUIRE);
	out[0] = (double)((int64_t)end - (int64_t)due) / (double)n;
	out[1] = (double)(end - first) / (double)n;
	ops->close(&im);
	return ok;
}

static void
bench_fire(nvb_ctx *ctx, size_t n, int reps, int *errors)
{
	double v[2][2][16];
	char bcase[64];
	uint64_t lead = 50 + n / 200; /* adds run at well under 5 us */
	for (int r = 0; r < reps; r++)
		for (int kk = 0; kk < 2; kk++) {
			int k = (kk + r) % 2;
			double per[2];
			uint64_t l = lead;
			while (!fire_round(&impls[k], n, l, per, errors))
				l *= 2;
			v[k][0][r] = per[0];
			v[k][1][r] = per[1];
		}
	static const char *what[2] = {"fire due->done", "fire first->done"};
	for (int w = 0; w < 2; w++) {
		double me = nvb_median(v[0][w], reps);
		double mh = nvb_median(v[1][w], reps);
		snprintf(bcase, sizeof(bcase), "%s, %zuk at once", what[w],
			 n / 1000);
		nvb_report(ctx, "schedule", bcase, "engine", me, "ns/sched");
		nvb_report(ctx, "schedule", bcase, "heap", mh, "ns/sched");
		nvb_report(ctx, "schedule", bcase, "heap/engine", mh / me, "x");
	}
}

/* ------------------------------------------------------------- lateness */

#define LATE_BIAS 1000000000ll /* keeps early (negative) samples sortable */

/* n in_ms schedules spread over span_ms; lateness = job start - (time of
 * the add + in_ms), signed (an early run would show negative). The engine
 * rounds each deadline up to its 1 ms tick; the heap keys are in us. */
static void
bench_lateness(nvb_ctx *ctx, unsigned n, unsigned span_ms, int reps,
	       int *errors)
{
	uint64_t *due = malloc(n * sizeof(*due));
	uint64_t *late[2];
	size_t nl[2] = {0, 0};
	start_ns = malloc(n * sizeof(*start_ns));
	for (int k = 0; k < 2; k++)
		late[k] = malloc((size_t)reps * n * sizeof(uint64_t));
	for (int r = 0; r < reps; r++)
		for (int kk = 0; kk < 2; kk++) {
			int k = (kk + r) % 2;
			struct impl im;
			if (!impls[k].open(&im))
				abort();
			reset(n);
			for (unsigned i = 0; i < n; i++) {
				struct sarg a = {i, 0};
				uint64_t in = 10 + (uint64_t)i * span_ms / n;
				due[i] = nvb_now_ns() + in * 1000000u;
				impls[k].add_in(&im, &a, in);
			}
			if (!wait_flag(&done_ns, 30))
				(*errors)++;
			for (unsigned i = 0; i < n; i++) {
				int64_t l = (int64_t)start_ns[i] -
					    (int64_t)due[i] + LATE_BIAS;
				late[k][nl[k]++] = l > 0 ? (uint64_t)l : 0;
			}
			impls[k].close(&im);
		}
	static const double pct[3] = {50, 99, 100};
	static const char *pname[3] = {"p50", "p99", "max"};
	for (int p = 0; p < 3; p++) {
		char bcase[64];
		snprintf(bcase, sizeof(bcase), "lateness %s, %u over %u ms",
			 pname[p], n, span_ms);
		for (int k = 0; k < 2; k++)
			nvb_report(ctx, "schedule", bcase, impls[k].name,
				   (nvb_percentile(late[k], nl[k], pct[p]) -
				    (double)LATE_BIAS) /
				       1e3,
				   "us");
	}
	free(start_ns);
	start_ns = NULL;
	free(due);
	for (int k = 0; k < 2; k++)
		free(late[k]);
}

/* ---------------------------------------------------------------- suite */

static void
suite_schedule(nvb_ctx *ctx)
{
	int errors = 0;
	int reps = ctx->reps > 16 ? 16 : ctx->reps;
	int heavy = ctx->quick ? 3 : reps;
	size_t sizes[3] = {1000, 100000, 1000000};
	int nsizes = ctx->quick ? 2 : 3;

	nvb_section("schedule: engine schedules vs heap+mutex+condvar "
		    "scheduler (median of reps)");
	for (int i = 0; i < nsizes; i++)
		bench_add_cancel(ctx, sizes[i], i == 0 ? reps : heavy, &errors);
	for (int i = 0; i < nsizes; i++)
		bench_fire(ctx, sizes[i], i == 0 ? reps : heavy, &errors);
	bench_lateness(ctx, 500, 1000, ctx->quick ? 1 : 3, &errors);
	nvb_gate_max(ctx, "schedule bench count errors", (double)errors, 0);
}

NVB_SUITE(schedule, suite_schedule, 45)
