/*
 * bench_engine.c - the engine end to end against a mutex+condvar pool.
 *
 * Throughput: N no-op jobs (8-byte args) dispatched from P producer
 * threads (nv_task_delay), or in nv_map batches of 256, until every job
 * ran; results discarded (untracked jobs) or stored (tracked). The pool
 * (bench/baseline_pool.c) does the same work: a malloc'd job with a
 * function pointer and copied args, 2 workers. Runs are interleaved and
 * the median of the repetitions is reported with the ratio to the pool.
 * Each run first pushes 100k untimed warm-up jobs through the fresh
 * engine or pool (page faults, allocator growth), then times N.
 *
 * Latency (delay-to-start): the job's args carry the monotonic time of the
 * dispatch and the task records now - then. "spinning": the next job is
 * dispatched as soon as the previous one finished (a worker is still in
 * its spin phase); "parked": 2 ms of idleness between jobs (workers
 * asleep on their futex; "raw futex wake" is the floor under both: a bare
 * FUTEX_WAKE to a thread in FUTEX_WAIT after the same idle time);
 * "saturated": every job of a 2-producer
 * throughput run (queueing included).
 *
 * Memory: bytes of RSS per queued job with N jobs queued before the engine
 * starts (nothing runs), small args.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "baseline_pool.h"
#include "bench.h"
#include "nuvom.h"

struct jarg {
	uint64_t index;
	uint64_t enq_ns;
};

static struct {
	uint64_t v;
	char pad[56];
} done_ctr[64] __attribute__((aligned(64)));
static __thread int my_slot = -1;
static int next_slot;
static uint64_t *lat; /* per-job latency, or NULL */

static inline void
count_done(void)
{
	if (my_slot < 0)
		my_slot = __atomic_fetch_add(&next_slot, 1, __ATOMIC_RELAXED) % 64;
	__atomic_fetch_add(&done_ctr[my_slot].v, 1, __ATOMIC_RELEASE);
}

static uint64_t
done_total(void)
{
	uint64_t s = 0;
	for (int i = 0; i < 64; i++)
		s += __atomic_load_n(&done_ctr[i].v, __ATOMIC_ACQUIRE);
	return s;
}

static void
done_reset(void)
{
	for (int i = 0; i < 64; i++)
		__atomic_store_n(&done_ctr[i].v, 0, __ATOMIC_RELAXED);
}

static inline void
record(const void *args, size_t len)
{
	if (lat != NULL && len == sizeof(struct jarg)) {
		struct jarg a;
		memcpy(&a, args, sizeof(a));
		lat[a.index] = nvb_now_ns() - a.enq_ns;
	}
	count_done();
}

static int
noop_task(nv_ctx *c, const void *args, size_t len)
{
	(void)c;
	record(args, len);
	return 0;
}

static int
store_task(nv_ctx *c, const void *args, size_t len)
{
	record(args, len);
	return nv_ctx_set_result(c, args, 8);
}

static void
noop_pool(const void *args, size_t len)
{
	record(args, len);
}

/* ---------------------------------------------------------------- runs */

enum mode { M_DELAY, M_MAP, M_POOL };

struct prod {
	enum mode mode;
	nv_task *task;
	nv_engine *e;
	struct nvb_pool *pool;
	uint64_t first, count;
	bool stamp;
	int *go;
	pthread_t th;
};

static void *
producer(void *arg)
{
	struct prod *p = arg;
	while (!__atomic_load_n(p->go, __ATOMIC_ACQUIRE))
		sched_yield();
	if (p->mode == M_MAP) {
		static __thread struct jarg a[256];
		nv_args av[256];
		for (uint64_t i = 0; i < p->count; i += 256) {
			size_t n = p->count - i < 256 ? p->count - i : 256;
			for (size_t k = 0; k < n; k++) {
				a[k].index = p->first + i + k;
				a[k].enq_ns = p->stamp ? nvb_now_ns() : 0;
				av[k].data = &a[k];
				av[k].len = sizeof(a[k]);
			}
			while (nv_map(p->e, nv_task_name(p->task), av, n, NULL) !=
			       0)
				sched_yield();
		}
		return NULL;
	}
	for (uint64_t i = 0; i < p->count; i++) {
		struct jarg a = { p->first + i, p->stamp ? nvb_now_ns() : 0 };
		if (p->mode == M_POOL)
			nvb_pool_submit(p->pool, noop_pool, &a, sizeof(a));
		else
			while (nv_task_delay(p->task, &a, sizeof(a), NULL) != 0)
				sched_yield();
	}
	return NULL;
}

static void
wait_done(uint64_t n, double max_s)
{
	uint64_t end = nvb_now_ns() + (uint64_t)(max_s * 1e9);
	while (done_total() < n && nvb_now_ns() < end) {
		struct timespec ts = { 0, 50000 };
		nanosleep(&ts, NULL);
	}
}

static nv_engine *
engine_new(nv_task **noop, nv_task **store, size_t cap)
{
	nv_engine *e;
	nv_config cfg;
	nv_task_opts discard = { .discard_result = true };
	nv_config_init(&cfg);
	cfg.workers = 2;
	cfg.queue_capacity = cap;
	cfg.result_retention = 4000000;
	if (nv_engine_open(&e, &cfg) != 0)
		return NULL;
	nv_task_register(e, "noop", noop_task, &discard, 0);
	nv_task_register(e, "store", store_task, NULL, 0);
	*noop = nv_task_lookup(e, "noop");
	*store = nv_task_lookup(e, "store");
	return e;
}

#define NVB_WARMUP 100000

/* Jobs per second of one run; 0 when not every job ran. */
static double
run(enum mode mode, bool stored, unsigned np, uint64_t n, bool stamp)
{
	nv_engine *e = NULL;
	nv_task *noop = NULL, *store = NULL;
	struct nvb_pool *pool = NULL;
	struct prod p[8];
	int go = 0;
	uint64_t t0, t1;

	done_reset();
	if (mode == M_POOL) {
		pool = nvb_pool_create(2);
	} else {
		e = engine_new(&noop, &store, 65536);
		if (e == NULL || nv_engine_start(e) != 0)
			return 0;
	}
	/* Warm-up (untimed, same for the pool): the first jobs of a fresh
	 * engine or pool pay for page faults and allocator growth that a
	 * long-running service pays once. */
	uint64_t *saved_lat = lat;
	lat = NULL;
	for (uint64_t i = 0; i < NVB_WARMUP; i++) {
		struct jarg a = { i, 0 };
		if (pool)
			nvb_pool_submit(pool, noop_pool, &a, sizeof(a));
		else
			while (nv_task_delay(stored ? store : noop, &a,
					     sizeof(a), NULL) != 0)
				sched_yield();
	}
	wait_done(NVB_WARMUP, 20.0);
	done_reset();
	lat = saved_lat;
	for (unsigned i = 0; i < np; i++) {
		p[i].mode = mode;
		p[i].task = stored ? store : noop;
		p[i].e = e;
		p[i].pool = pool;
		p[i].first = n / np * i;
		p[i].count = n / np;
		p[i].stamp = stamp;
		p[i].go = &go;
		pthread_create(&p[i].th, NULL, producer, &p[i]);
	}
	t0 = nvb_now_ns();
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < np; i++)
		pthread_join(p[i].th, NULL);
	wait_done(n / np * np, 20.0);
	t1 = nvb_now_ns();
	uint64_t got = done_total();
	if (pool)
		nvb_pool_destroy(pool);
	if (e) {
		nv_engine_stop(e, 1000);
		nv_engine_close(e);
	}
	if (got != n / np * np) {
		fprintf(stderr, "engine bench: %lu of %lu jobs ran\n",
			(unsigned long)got, (unsigned long)(n / np * np));
		return 0;
	}
	return (double)got / ((double)(t1 - t0) / 1e9);
}

/* The floor of any wake-up from parked: a thread asleep in FUTEX_WAIT is
 * woken by FUTEX_WAKE after idle_us; latency = its first instruction
 * after the syscall minus the time just before the wake. */
struct fx {
	uint32_t word;   /* futex word: the round number */
	uint64_t t_wake; /* atomic */
	uint64_t *out;
	uint64_t k;
};

static void *
futex_sleeper(void *arg)
{
	struct fx *f = arg;
	for (uint64_t i = 0; i < f->k; i++) {
		while (__atomic_load_n(&f->word, __ATOMIC_ACQUIRE) == i)
			syscall(SYS_futex, &f->word, FUTEX_WAIT_PRIVATE,
				(uint32_t)i, NULL, NULL, 0);
		f->out[i] = nvb_now_ns() -
			    __atomic_load_n(&f->t_wake, __ATOMIC_ACQUIRE);
	}
	return NULL;
}

static void
futex_floor(uint64_t k, unsigned idle_us, uint64_t *out)
{
	struct fx f = { 0, 0, out, k };
	pthread_t th;
	pthread_create(&th, NULL, futex_sleeper, &f);
	for (uint64_t i = 0; i < k; i++) {
		struct timespec ts = { 0, (long)idle_us * 1000 };
		nanosleep(&ts, NULL);
		__atomic_store_n(&f.t_wake, nvb_now_ns(), __ATOMIC_RELEASE);
		__atomic_store_n(&f.word, (uint32_t)(i + 1), __ATOMIC_RELEASE);
		syscall(SYS_futex, &f.word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL,
			0);
	}
	pthread_join(th, NULL);
}

/* Ping-pong latency: one job at a time, idle_us between them. */
static void
pingpong(bool pool_mode, uint64_t k, unsigned idle_us, uint64_t *out)
{
	nv_engine *e = NULL;
	nv_task *noop, *store;
	struct nvb_pool *pool = NULL;

	done_reset();
	lat = out;
	if (pool_mode) {
		pool = nvb_pool_create(2);
	} else {
		e = engine_new(&noop, &store, 1024);
		nv_engine_start(e);
	}
	for (uint64_t i = 0; i < k; i++) {
		if (idle_us) {
			struct timespec ts = { 0, (long)idle_us * 1000 };
			nanosleep(&ts, NULL);
		}
		struct jarg a = { i, nvb_now_ns() };
		if (pool)
			nvb_pool_submit(pool, noop_pool, &a, sizeof(a));
		else
			nv_task_delay(noop, &a, sizeof(a), NULL);
		uint64_t end = nvb_now_ns() + 1000000000ull;
		while (done_total() < i + 1 && nvb_now_ns() < end)
			;
	}
	lat = NULL;
	if (pool)
		nvb_pool_destroy(pool);
	if (e) {
		nv_engine_stop(e, 1000);
		nv_engine_close(e);
	}
}

static void
report_lat(nvb_ctx *ctx, const char *name, uint64_t *v, size_t n)
{
	char b[96];
	snprintf(b, sizeof(b), "%s p50", name);
	nvb_report(ctx, "engine", b, "latency", nvb_percentile(v, n, 50) / 1e3,
		   "us");
	snprintf(b, sizeof(b), "%s p99", name);
	nvb_report(ctx, "engine", b, "latency", nvb_percentile(v, n, 99) / 1e3,
		   "us");
	snprintf(b, sizeof(b), "%s p99.9", name);
	nvb_report(ctx, "engine", b, "latency",
		   nvb_percentile(v, n, 99.9) / 1e3, "us");
}

static long
rss_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * sysconf(_SC_PAGESIZE);
}

static void
memory(nvb_ctx *ctx, uint64_t n)
{
	nv_engine *e;
	nv_task *noop, *store;
	char name[64];
	long before, after;
	uint64_t ok = 0;

	before = rss_bytes();
	e = engine_new(&noop, &store, n);
	if (e == NULL)
		return;
	for (uint64_t i = 0; i < n; i++) {
		struct jarg a = { i, 0 };
		if (nv_task_delay(noop, &a, sizeof(a), NULL) == 0)
			ok++;
	}
	after = rss_bytes();
	snprintf(name, sizeof(name), "%luM queued, 16-byte args",
		 (unsigned long)(n / 1000000));
	nvb_report(ctx, "engine", name, "bytes/job",
		   ok ? (double)(after - before) / (double)ok : 0, "B");
	nv_engine_close(e);
}

enum { R_D1, R_D2, R_MAP, R_STORED, R_P1, R_P2, R_N };

static void
suite_engine(nvb_ctx *ctx)
{
	static const char *names[R_N] = {
		"nv_delay 1 producer (discard)", "nv_delay 2 producers (discard)",
		"nv_map x256 1 producer (discard)",
		"nv_delay 2 producers (stored)", "pool 1 producer",
		"pool 2 producers"
	};
	uint64_t n = ctx->quick ? 500000 : 4000000;
	double v[R_N][32], med[R_N];
	int reps = ctx->reps > 32 ? 32 : ctx->reps;
	if (ctx->quick && reps > 5)
		reps = 5; /* quick mode stays under a minute overall */

	nvb_section("engine: no-op jobs end to end, 2 workers (median of reps)");
	for (int r = 0; r < reps; r++) {
		v[R_D1][r] = run(M_DELAY, false, 1, n, false);
		v[R_P1][r] = run(M_POOL, false, 1, n, false);
		v[R_D2][r] = run(M_DELAY, false, 2, n, false);
		v[R_P2][r] = run(M_POOL, false, 2, n, false);
		v[R_MAP][r] = run(M_MAP, false, 1, n, false);
		v[R_STORED][r] = run(M_DELAY, true, 2, n, false);
	}
	/* The gated pair (2 producers vs the pool) gets more repetitions
	 * than the rest: a median of more pairs moves less with the
	 * machine's moods. */
	int reps2 = reps < 9 ? 9 : reps;
	for (int r = reps; r < reps2; r++) {
		v[R_D2][r] = run(M_DELAY, false, 2, n, false);
		v[R_P2][r] = run(M_POOL, false, 2, n, false);
	}
	for (int i = 0; i < R_N; i++) {
		double tmp[32];
		int k = i == R_D2 || i == R_P2 ? reps2 : reps;
		memcpy(tmp, v[i], sizeof(double) * (size_t)k);
		med[i] = nvb_median(tmp, k);
		nvb_report(ctx, "engine", names[i], "Mjobs/s", med[i] / 1e6,
			   "M/s");
	}
	/* Ratios: the median of per-repetition pairs (each engine run and
	 * its pool run back to back), steadier than a ratio of medians on
	 * a shared machine. */
	double r_d1 = nvb_paired_ratio(v[R_D1], v[R_P1], reps);
	double r_d2 = nvb_paired_ratio(v[R_D2], v[R_P2], reps2);
	double r_map = nvb_paired_ratio(v[R_MAP], v[R_P1], reps);
	nvb_report(ctx, "engine", "nv_delay 1P / pool 1P", "ratio", r_d1, "x");
	nvb_report(ctx, "engine", "nv_delay 2P / pool 2P", "ratio", r_d2, "x");
	nvb_report(ctx, "engine", "nv_map / pool 1P", "ratio", r_map, "x");

	nvb_section("engine: delay-to-start latency");
	uint64_t k = ctx->quick ? 5000 : 100000;
	uint64_t kp = ctx->quick ? 200 : 2000;
	uint64_t *buf = calloc(n > k ? n : k, sizeof(uint64_t));
	pingpong(false, k, 0, buf);
	report_lat(ctx, "nuvom spinning", buf, k);
	pingpong(true, k, 0, buf);
	report_lat(ctx, "pool  spinning", buf, k);
	pingpong(false, kp, 2000, buf);
	report_lat(ctx, "nuvom parked", buf, kp);
	pingpong(true, kp, 2000, buf);
	report_lat(ctx, "pool  parked", buf, kp);
	futex_floor(kp, 2000, buf);
	report_lat(ctx, "raw futex wake (floor)", buf, kp);
	lat = buf;
	run(M_DELAY, false, 2, n, true);
	lat = NULL;
	report_lat(ctx, "nuvom saturated 2P", buf, n);
	lat = buf;
	run(M_POOL, false, 2, n, true);
	lat = NULL;
	report_lat(ctx, "pool  saturated 2P", buf, n);
	free(buf);

	nvb_section("engine: memory per queued job (workers not started)");
	memory(ctx, ctx->quick ? 1000000 : 10000000);

	/* The engine issue's gate, 3x the pool at 2 producers (paired
	 * median). Since the two-line job record and the fence-free
	 * dispatch: 3.65-4.42 over 16 runs, median 3.99 (four of them full
	 * CI runs right after the builds: 4.06, 3.96, 3.87, 3.72); --gate
	 * re-measures once on a miss. */
	nvb_gate(ctx, "engine nv_delay 2P vs mutex+condvar pool 2P", r_d2,
		 3.0);
	nvb_gate(ctx, "engine nv_map vs mutex+condvar pool 1P (floor)", r_map,
		 1.0);
}

NVB_SUITE(engine, suite_engine, 30)
