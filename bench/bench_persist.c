/*
 * bench_persist.c - the engine end to end with a persistent store attached,
 * against the memory-only engine in the same run (suite `persist`).
 *
 * Throughput: one producer thread (the caller) dispatches N no-op jobs
 * (16-byte args, results discarded) to an engine with 2 workers; the run
 * ends when every job has run AND nv_flush has returned, so the persistent
 * runs pay for their writes (ENQUEUED, STARTED, SUCCEEDED per job; the
 * persister leaves a STARTED out when its job's outcome is in the same
 * batch, and the SQLite store folds a job's records of one batch into one
 * row write) and for making them durable. N is sized per configuration so that
 * each run takes about the same time (from the rate of an uncounted first
 * repetition). Configurations, interleaved within each repetition: memory, file
 * (fsync batch), file (fsync always), sqlite (batch), sqlite (always); the
 * median of the repetitions and its ratio to memory are reported. After each
 * persistent run the store's own counters (read through the engine's internal
 * store pointer) give records, bytes and syncs per job, and the data
 * directory's size on disk gives disk bytes per job; the persister's counters
 * give the STARTED records coalesced away per job, the backlog's peak (records
 * submitted, not yet written; bounded, 256k by default) and how many submits
 * had to wait for room. "syncs" is the store's sync calls: one
 * fdatasync of the active segment each for the file store; for SQLite an fsync
 * of the WAL each (batch; synchronous=NORMAL) or a commit with
 * synchronous=FULL, which fsyncs the WAL (always); checkpoints add a few more
 * fsyncs.
 *
 * Flush latency: during more runs per persistent configuration a second
 * thread calls nv_flush(e, -1) back to back (50 us apart) and records each
 * call's latency (p50/p99): with the producer paced at half the
 * configuration's measured throughput (a sustainable load) and, for the
 * batch policy, flat out (more than the persister can write: the inbox
 * grows and a flush waits for the backlog).
 *
 * Recovery: a store holding R unfinished jobs (dispatched to an engine
 * that never started, written at close) is opened; the time of
 * nv_engine_open + nv_engine_start until start returns (every recovered
 * job queued: ring plus backlog) is reported, with ms per 1M jobs. The
 * recovered jobs then run untimed with the persister stopped (their
 * events are not written), so the suite stays short.
 *
 * Every run is time-bounded (dispatch stops after a time budget; waits are
 * bounded) and the counts are checked: a run where not every dispatched
 * job ran reports 0 and fails the count gate.
 */
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "engine/engine_int.h"
#include "nuvom.h"
#include "persistence/persister.h"
#include "persistence/store.h"

static uint64_t done; /* atomic: jobs run in this run */

static int
noop(nv_ctx *c, const void *args, size_t len)
{
	(void)c;
	(void)args;
	(void)len;
	__atomic_add_fetch(&done, 1, __ATOMIC_RELEASE);
	return 0;
}

struct pcfg {
	const char *name;
	const char *kind; /* NULL = memory */
	nv_fsync_policy fsync;
};

static const struct pcfg cfgs[] = {
    {"memory", NULL, NV_FSYNC_BATCH},
    {"file fsync=batch", "file", NV_FSYNC_BATCH},
    {"file fsync=always", "file", NV_FSYNC_ALWAYS},
    {"sqlite fsync=batch", "sqlite", NV_FSYNC_BATCH},
    {"sqlite fsync=always", "sqlite", NV_FSYNC_ALWAYS},
};
#define NCFG (sizeof(cfgs) / sizeof(cfgs[0]))

struct result {
	double jobs_s;
	double records, bytes, disk, syncs; /* per job */
	double coalesced;		    /* STARTED left out, per job */
	double peak, waits;		    /* backlog peak, full waits */
	int count_errors;
};

/* ---------------------------------------------------------------- files */

static void
tmpdir(char *buf, size_t len)
{
	const char *base = getenv("TMPDIR");
	snprintf(buf, len, "%s/nvbench-persist-XXXXXX",
		 base && *base ? base : "/tmp");
	if (mkdtemp(buf) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
}

/* Apparent size of every file below path. */
static uint64_t
du(const char *path)
{
	struct stat sb;
	uint64_t sum = 0;
	if (lstat(path, &sb) != 0)
		return 0;
	if (!S_ISDIR(sb.st_mode))
		return S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0;
	DIR *d = opendir(path);
	struct dirent *de;
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		char sub[4096];
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		sum += du(sub);
	}
	closedir(d);
	return sum;
}

static void
rmrf(const char *path)
{
	struct stat sb;
	if (lstat(path, &sb) != 0)
		return;
	if (S_ISDIR(sb.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *de;
		while (d && (de = readdir(d)) != NULL) {
			char sub[4096];
			if (!strcmp(de->d_name, ".") ||
			    !strcmp(de->d_name, ".."))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			rmrf(sub);
		}
		if (d)
			closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

/* ---------------------------------------------------------------- runs */

static nv_engine *
engine_new(const struct pcfg *c, const char *dir, size_t cap)
{
	nv_engine *e;
	nv_config cfg;
	nv_task_opts discard = {.discard_result = true};

	nv_config_init(&cfg);
	cfg.workers = 2;
	cfg.queue_capacity = cap;
	cfg.log_level = NV_LOG_ERROR;
	cfg.data_dir = dir;
	cfg.fsync = c->fsync;
	if (c->kind != NULL)
		cfg.queue_backend = cfg.result_backend = c->kind;
	if (nv_engine_open(&e, &cfg) != 0)
		return NULL;
	if (nv_task_register(e, "noop", noop, &discard, 0) != 0) {
		nv_engine_close(e);
		return NULL;
	}
	return e;
}

struct flusher {
	nv_engine *e;
	int stop; /* atomic */
	uint64_t *lat;
	size_t n, cap;
	pthread_t th;
};

static void *
flush_loop(void *arg)
{
	struct flusher *f = arg;
	while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE) && f->n < f->cap) {
		uint64_t t0 = nvb_now_ns();
		if (nv_flush(f->e, -1) != 0)
			break;
		f->lat[f->n++] = nvb_now_ns() - t0;
		struct timespec ts = {0, 50000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static bool
wait_done(uint64_t n, double max_s)
{
	uint64_t end = nvb_now_ns() + (uint64_t)(max_s * 1e9);
	while (__atomic_load_n(&done, __ATOMIC_ACQUIRE) < n) {
		if (nvb_now_ns() >= end)
			return false;
		struct timespec ts = {0, 50000};
		nanosleep(&ts, NULL);
	}
	return true;
}

/* One throughput run; with fl != NULL a flusher runs alongside; with
 * rate > 0 the producer is paced to `rate` jobs per second (bursts of 64,
 * sleeping when ahead). */
static struct result
run(const struct pcfg *c, uint64_t n, double budget_s, struct flusher *fl,
    double rate)
{
	struct result r = {0};
	char dir[256];
	nv_engine *e;
	nv_task *t;
	uint64_t sent = 0, t0, t1, end;
	nv_store_stats st;

	tmpdir(dir, sizeof(dir));
	__atomic_store_n(&done, 0, __ATOMIC_RELAXED);
	e = engine_new(c, dir, 65536);
	if (e == NULL || nv_engine_start(e) != 0) {
		fprintf(stderr, "persist bench: cannot start %s\n", c->name);
		r.count_errors = 1;
		if (e)
			nv_engine_close(e);
		rmrf(dir);
		return r;
	}
	t = nv_task_lookup(e, "noop");
	if (fl != NULL) {
		fl->e = e;
		fl->n = 0;
		fl->stop = 0;
		pthread_create(&fl->th, NULL, flush_loop, fl);
	}
	t0 = nvb_now_ns();
	end = t0 + (uint64_t)(budget_s * 1e9);
	while (sent < n) {
		uint64_t a[2] = {sent, 0};
		int rc = nv_task_delay(t, a, sizeof(a), NULL);
		if (rc == NV_EFULL)
			continue;
		if (rc != 0)
			break;
		if (++sent % 1024 == 0 && nvb_now_ns() > end)
			break; /* time-bounded: measure what was sent */
		if (rate > 0 && sent % 64 == 0) {
			uint64_t due =
			    t0 + (uint64_t)((double)sent / rate * 1e9);
			uint64_t now = nvb_now_ns();
			if (due > now) {
				struct timespec ts = {0, (long)(due - now)};
				if (due - now >= 1000000000ull)
					ts = (struct timespec){1, 0};
				nanosleep(&ts, NULL);
			}
		}
	}
	bool all = wait_done(sent, 30.0);
	int frc = nv_flush(e, 30000);
	t1 = nvb_now_ns();
	if (fl != NULL) {
		__atomic_store_n(&fl->stop, 1, __ATOMIC_RELEASE);
		pthread_join(fl->th, NULL);
	}
	nv_engine_stop(e, 5000);
	if (!all || frc != 0 ||
	    __atomic_load_n(&done, __ATOMIC_ACQUIRE) != sent) {
		fprintf(stderr,
			"persist bench %s: %llu of %llu jobs ran, flush %d\n",
			c->name,
			(unsigned long long)__atomic_load_n(&done,
							    __ATOMIC_ACQUIRE),
			(unsigned long long)sent, frc);
		r.count_errors = 1;
	} else {
		r.jobs_s = (double)sent / ((double)(t1 - t0) / 1e9);
	}
	if (e->store != NULL && sent > 0) {
		nv_persister_stats ps;
		nv__persister_stats(e->persister, &ps);
		r.coalesced = (double)ps.coalesced / (double)sent;
		r.peak = (double)ps.backlog_peak;
		r.waits = (double)ps.full_waits;
		e->store->ops->stats(e->store, &st);
		r.records = (double)st.records / (double)sent;
		r.bytes = (double)st.bytes / (double)sent;
		r.syncs = (double)st.syncs / (double)sent;
		r.disk = (double)du(dir) / (double)sent;
	}
	nv_engine_close(e);
	rmrf(dir);
	return r;
}

/* Open + start time of a store holding n unfinished jobs; 0 on error. */
static double
recovery_ms(const struct pcfg *c, uint64_t n, double *open_ms)
{
	char dir[256];
	nv_engine *e;
	nv_task *t;
	uint64_t t0, t1, t2;
	double ms = 0;

	tmpdir(dir, sizeof(dir));
	e = engine_new(c, dir, (size_t)n);
	if (e == NULL)
		goto out;
	t = nv_task_lookup(e, "noop");
	for (uint64_t i = 0; i < n; i++) {
		uint64_t a[2] = {i, 0};
		if (nv_task_delay(t, a, sizeof(a), NULL) != 0) {
			nv_engine_close(e);
			goto out;
		}
	}
	nv_engine_close(e); /* never started: the jobs are written here */

	__atomic_store_n(&done, 0, __ATOMIC_RELAXED);
	t0 = nvb_now_ns();
	e = engine_new(c, dir, 65536); /* ring << n: most wait in the
					  backlog */
	if (e == NULL)
		goto out;
	t1 = nvb_now_ns();
	if (nv_engine_start(e) != 0) {
		nv_engine_close(e);
		goto out;
	}
	t2 = nvb_now_ns();
	if (e->recovered_jobs == n) {
		ms = (double)(t2 - t0) / 1e6;
		*open_ms = (double)(t1 - t0) / 1e6;
	} else {
		fprintf(stderr, "persist bench: recovered %zu of %llu jobs\n",
			e->recovered_jobs, (unsigned long long)n);
	}
	/* The recovered jobs start running now; the measurement is done.
	 * Stop the persister first so that draining them costs no writes
	 * (their events are refused; the directory is thrown away). */
	nv__persister_stop(e->persister);
	wait_done(n, 60.0);
	nv_engine_stop(e, 5000);
	nv_engine_close(e);
out:
	rmrf(dir);
	return ms;
}

/* ---------------------------------------------------------------- suite */

static uint64_t
clamp_n(double v, uint64_t lo, uint64_t hi)
{
	return v < (double)lo ? lo : v > (double)hi ? hi : (uint64_t)v;
}

static void
suite_persist(nvb_ctx *ctx)
{
	uint64_t nmax = ctx->quick ? 600000 : 4000000;
	uint64_t rn = ctx->quick ? 100000 : 1000000;
	int reps = ctx->quick ? 3 : (ctx->reps > 15 ? 15 : ctx->reps);
	double target = ctx->quick ? 0.25 : 3.0; /* seconds per run */
	double v[NCFG][16], med[NCFG];
	uint64_t ncfg[NCFG];
	struct result last[NCFG];
	int errors = 0;
	char name[96];

	/* Sizes: every configuration runs about `target` seconds. A first,
	 * uncounted repetition measures the rates (from a small N). */
	for (size_t i = 0; i < NCFG; i++)
		ncfg[i] = i == 0 ? nmax : 50000;
	nvb_section("persist: no-op jobs end to end until all ran and "
		    "nv_flush returned; 1 producer, 2 workers (median)");
	for (int r = -1; r < reps; r++)
		for (size_t i = 0; i < NCFG; i++) {
			/* Rotate who goes first. */
			size_t k = (i + (size_t)(r + 1)) % NCFG;
			struct result x =
			    run(&cfgs[k], ncfg[k], 4 * target, NULL, 0);
			errors += x.count_errors;
			if (x.jobs_s > 0)
				ncfg[k] =
				    clamp_n(x.jobs_s * target, 20000, nmax);
			if (r < 0)
				continue;
			last[k] = x;
			v[k][r] = x.jobs_s;
		}
	for (size_t i = 0; i < NCFG; i++) {
		med[i] = nvb_median(v[i], reps);
		nvb_report(ctx, "persist", cfgs[i].name, "kjobs/s",
			   med[i] / 1e3, "k/s");
	}
	for (size_t i = 1; i < NCFG; i++) {
		snprintf(name, sizeof(name), "%s / memory", cfgs[i].name);
		nvb_report(ctx, "persist", name, "ratio",
			   med[0] > 0 ? med[i] / med[0] : 0, "x");
	}

	nvb_section("persist: per job (last repetition; store counters and "
		    "disk)");
	for (size_t i = 1; i < NCFG; i++) {
		nvb_report(ctx, "persist", cfgs[i].name, "records/job",
			   last[i].records, "");
		nvb_report(ctx, "persist", cfgs[i].name, "store bytes/job",
			   last[i].bytes, "B");
		nvb_report(ctx, "persist", cfgs[i].name, "disk bytes/job",
			   last[i].disk, "B");
		nvb_report(ctx, "persist", cfgs[i].name, "syncs/job",
			   last[i].syncs, "");
		nvb_report(ctx, "persist", cfgs[i].name, "coalesced/job",
			   last[i].coalesced, "");
		nvb_report(ctx, "persist", cfgs[i].name, "backlog peak",
			   last[i].peak, "rec");
		nvb_report(ctx, "persist", cfgs[i].name, "full waits",
			   last[i].waits, "");
	}

	/* Flush latency: a flusher thread calls nv_flush back to back while
	 * the producer is paced at half of the configuration's measured
	 * throughput (a sustainable load), and, for the batch policy, while
	 * it runs flat out (more than the persister writes: the inbox grows
	 * and a flush waits for the backlog). */
	nvb_section("persist: nv_flush latency under load (back to back "
		    "flushes while dispatching)");
	struct flusher fl = {.cap = 200000};
	fl.lat = calloc(fl.cap, sizeof(*fl.lat));
	for (size_t i = 1; fl.lat != NULL && i < NCFG; i++) {
		for (int flat = 0; flat < 2; flat++) {
			if (flat && cfgs[i].fsync != NV_FSYNC_BATCH)
				continue;
			double rate = flat ? 0 : med[i] / 2;
			struct result r =
			    run(&cfgs[i], ncfg[i], 4 * target, &fl, rate);
			const char *how = flat ? "flat out" : "paced 50%";
			errors += r.count_errors;
			snprintf(name, sizeof(name), "%s, %s p50", cfgs[i].name,
				 how);
			nvb_report(ctx, "persist", name, "flush latency",
				   nvb_percentile(fl.lat, fl.n, 50) / 1e3,
				   "us");
			snprintf(name, sizeof(name), "%s, %s p99", cfgs[i].name,
				 how);
			nvb_report(ctx, "persist", name, "flush latency",
				   nvb_percentile(fl.lat, fl.n, 99) / 1e3,
				   "us");
			snprintf(name, sizeof(name), "%s, %s flushes",
				 cfgs[i].name, how);
			nvb_report(ctx, "persist", name, "count", (double)fl.n,
				   "");
			snprintf(name, sizeof(name), "%s, %s", cfgs[i].name,
				 how);
			nvb_report(ctx, "persist", name, "syncs/job", r.syncs,
				   "");
		}
	}
	free(fl.lat);

	nvb_section("persist: recovery (open + start until every stored "
		    "unfinished job is queued; fsync=batch)");
	for (size_t i = 1; i < NCFG; i += 2) {
		double open_ms = 0, ms = recovery_ms(&cfgs[i], rn, &open_ms);
		if (ms == 0)
			errors++;
		snprintf(name, sizeof(name), "%s %lluk jobs", cfgs[i].kind,
			 (unsigned long long)(rn / 1000));
		nvb_report(ctx, "persist", name, "open+start", ms, "ms");
		nvb_report(ctx, "persist", name, "of which open", open_ms,
			   "ms");
		snprintf(name, sizeof(name), "%s per 1M jobs", cfgs[i].kind);
		nvb_report(ctx, "persist", name, "open+start",
			   ms * 1e6 / (double)rn, "ms");
	}
	nvb_gate_max(ctx, "persist bench count errors", errors, 0);
}

NVB_SUITE(persist, suite_persist, 50)
