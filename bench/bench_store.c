/*
 * bench_store.c - persistence benchmarks (suite "store").
 *
 * Every store in `stores` below runs the same cases (add a row for the
 * SQLite store, or a plugin, when it exists):
 *
 *   <store>/batch      records/s through the persister, fsync=batch, the
 *                      producer calling flush every 1000 records (100-byte
 *                      payloads); bytes written per record and fsyncs per
 *                      1000 records;
 *   <store>/always     the same with fsync=always;
 *   <store>/burst      fsync=batch, one flush at the end (group commit
 *                      under a backlog);
 *   <store>/flush      latency of submit + flush of one record, p50/p99,
 *                      batch and always;
 *   <store>/recovery   open + replay of N records (warm page cache).
 *
 * The baseline, measured in the same run and interleaved with the store
 * cases, is a raw append: 1000 records of 100 bytes per write(), one
 * fdatasync per write (the disk's own cost of the same durability). The
 * gate compares <store>/batch with it (a ratio, never absolute times).
 *
 * Files go to $NV_BENCH_DIR, else the current directory (run it from a
 * disk-backed directory: on tmpfs fsync is free and the numbers lie).
 */
#include "bench.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "persistence/persister.h"
#include "persistence/store.h"

#define PAYLOAD 100
#define FLUSH_EVERY 1000

static const struct bstore {
	const char *name;
	const nv_store_ops *ops;
} stores[] = {
    {"file", &nv__file_store_ops},
    /* { "sqlite", &nv__sqlite_store_ops }, once it is in */
};

static void
mkdir_bench(char *buf, size_t len)
{
	const char *base = getenv("NV_BENCH_DIR");
	snprintf(buf, len, "%s/nvbench-store-XXXXXX",
		 base && *base ? base : ".");
	if (mkdtemp(buf) == NULL) {
		perror(buf);
		exit(1);
	}
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	return remove(path);
}

/* rm -rf of a benchmark directory (it holds the store's directory). */
static void
rm_bench(const char *dir)
{
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static nv_store *
open_store(const struct bstore *b, const char *dir, nv_fsync_policy pol)
{
	char path[4200];
	nv_store_conf c = {.fsync = pol};
	nv_store *s;
	snprintf(path, sizeof(path), "%s/store", dir);
	c.path = path;
	if (b->ops->open(&s, &c) != 0) {
		fprintf(stderr, "bench store: cannot open %s\n", path);
		exit(1);
	}
	return s;
}

static nv_rec
bench_rec(uint64_t id, const uint8_t *payload)
{
	nv_rec r = {.id = id,
		    .type = NV_REC_JOB_ENQUEUED,
		    .task = "bench",
		    .task_len = 5,
		    .data = payload,
		    .data_len = PAYLOAD,
		    .time_ms = 1700000000000};
	return r;
}

struct tput {
	double rps, bytes_per, syncs_per;
};

/* A started persister over a fresh store of kind b in a new dir (the
 * caller removes dir after nv__persister_destroy); *sp: the store. */
static nv_persister *
persister_in(const struct bstore *b, char *dir, size_t dirlen,
	     nv_fsync_policy pol, const nv_persister_conf *pc, nv_store **sp)
{
	nv_persister *p;

	mkdir_bench(dir, dirlen);
	*sp = open_store(b, dir, pol);
	if (nv__persister_create(&p, *sp, pc) != 0 ||
	    nv__persister_start(p) != 0)
		exit(1);
	return p;
}

/* n records through a persister; flush every `every` (0: at the end). */
static struct tput
run_persister(const struct bstore *b, nv_fsync_policy pol, uint64_t n,
	      uint64_t every)
{
	char dir[4096];
	uint8_t payload[PAYLOAD];
	nv_persister_conf pc = {
	    .fsync = pol, .interval_ms = 2, .max_batch = 1024};
	nv_persister *p;
	nv_store_stats st;
	nv_store *s;
	uint64_t t0, t1;
	struct tput r;

	memset(payload, 0x5a, sizeof(payload));
	p = persister_in(b, dir, sizeof(dir), pol, &pc, &s);
	t0 = nvb_now_ns();
	for (uint64_t i = 1; i <= n; i++) {
		nv_rec rec = bench_rec(i, payload);
		if (nv__persister_submit(p, &rec, NULL) != 0)
			exit(1);
		if (every && i % every == 0 && nv__persister_flush(p, -1) != 0)
			exit(1);
	}
	if (nv__persister_flush(p, -1) != 0)
		exit(1);
	t1 = nvb_now_ns();
	s->ops->stats(s, &st);
	r.rps = (double)n / ((double)(t1 - t0) / 1e9);
	r.bytes_per = (double)st.bytes / (double)st.records;
	r.syncs_per = 1000.0 * (double)st.syncs / (double)st.records;
	nv__persister_destroy(p);
	rm_bench(dir);
	return r;
}

/* The baseline: 1000 x 100-byte records per write, fdatasync each. */
static double
run_raw(uint64_t n)
{
	char dir[4096], path[4200];
	uint8_t *buf = malloc(FLUSH_EVERY * PAYLOAD);
	uint64_t t0, t1;
	int fd;

	memset(buf, 0x5a, FLUSH_EVERY * PAYLOAD);
	mkdir_bench(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/raw.log", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	t0 = nvb_now_ns();
	for (uint64_t i = 0; i < n; i += FLUSH_EVERY) {
		if (write(fd, buf, FLUSH_EVERY * PAYLOAD) < 0 ||
		    fdatasync(fd) != 0)
			exit(1);
	}
	t1 = nvb_now_ns();
	close(fd);
	free(buf);
	rm_bench(dir);
	return (double)n / ((double)(t1 - t0) / 1e9);
}

static void
flush_latency(nvb_ctx *ctx, const struct bstore *b, nv_fsync_policy pol,
	      const char *bcase)
{
	char dir[4096];
	uint8_t payload[PAYLOAD];
	nv_persister_conf pc = {.fsync = pol, .interval_ms = 2};
	int n = ctx->quick ? 200 : 2000;
	uint64_t *lat = malloc((size_t)n * sizeof(*lat));
	nv_persister *p;
	nv_store *s;

	memset(payload, 0x5a, sizeof(payload));
	p = persister_in(b, dir, sizeof(dir), pol, &pc, &s);
	for (int i = 0; i < n; i++) {
		nv_rec rec = bench_rec((uint64_t)i + 1, payload);
		uint64_t t0 = nvb_now_ns();
		if (nv__persister_submit(p, &rec, NULL) != 0 ||
		    nv__persister_flush(p, -1) != 0)
			exit(1);
		lat[i] = nvb_now_ns() - t0;
	}
	nv__persister_destroy(p);
	rm_bench(dir);
	nvb_report(ctx, "store", bcase, "flush_p50",
		   nvb_percentile(lat, (size_t)n, 50) / 1e3, "us");
	nvb_report(ctx, "store", bcase, "flush_p99",
		   nvb_percentile(lat, (size_t)n, 99) / 1e3, "us");
	free(lat);
}

static int
count_cb(const nv_rec *r, void *arg)
{
	(*(uint64_t *)arg)++;
	return 0;
}

static void
recovery(nvb_ctx *ctx, const struct bstore *b, const char *bcase)
{
	uint64_t n = ctx->quick ? 100000 : 1000000, got = 0;
	char dir[4096];
	uint8_t payload[PAYLOAD];
	nv_rec *batch = malloc(1000 * sizeof(*batch));
	double ms[3];
	nv_store *s;
	int reps = 3;

	memset(payload, 0x5a, sizeof(payload));
	mkdir_bench(dir, sizeof(dir));
	s = open_store(b, dir, NV_FSYNC_OFF);
	for (uint64_t i = 0; i < n; i += 1000) {
		for (int k = 0; k < 1000; k++) {
			batch[k] = bench_rec(i + (uint64_t)k + 1, payload);
			batch[k].seq = i + (uint64_t)k + 1;
		}
		if (s->ops->write(s, batch, 1000) != 0)
			exit(1);
	}
	s->ops->sync(s);
	s->ops->close(s);
	for (int r = 0; r < reps; r++) {
		uint64_t t0 = nvb_now_ns();
		got = 0;
		s = open_store(b, dir, NV_FSYNC_OFF);
		if (s->ops->replay(s, count_cb, &got) != 0 || got != n) {
			fprintf(stderr,
				"bench store: replay gave %llu of %llu\n",
				(unsigned long long)got, (unsigned long long)n);
			exit(1);
		}
		s->ops->close(s);
		ms[r] = (double)(nvb_now_ns() - t0) / 1e6;
	}
	rm_bench(dir);
	free(batch);
	{
		double med = nvb_median(ms, reps);
		char what[64];
		snprintf(what, sizeof(what), "open_replay_%lluk",
			 (unsigned long long)(n / 1000));
		nvb_report(ctx, "store", bcase, what, med, "ms");
		nvb_report(ctx, "store", bcase, "recovery_rate",
			   (double)n / (med / 1e3), "rec/s");
	}
}

static void
suite_store(nvb_ctx *ctx)
{
	uint64_t n = ctx->quick ? 100000 : 1000000;
	int reps = ctx->reps;

	nv__log_set_level(NV__LOG_ERROR);
	nvb_section("store: persister + store, 100-byte records");
	for (size_t si = 0; si < sizeof(stores) / sizeof(stores[0]); si++) {
		const struct bstore *b = &stores[si];
		double raw[16], bat[16], alw[16], bur[16];
		struct tput tb = {0}, ta = {0}, tu = {0};
		char c[64];

		if (reps > 16)
			reps = 16;
		/* Interleaved: each repetition runs every case once. */
		for (int r = 0; r < reps; r++) {
			raw[r] = run_raw(n);
			tb = run_persister(b, NV_FSYNC_BATCH, n, FLUSH_EVERY);
			bat[r] = tb.rps;
			ta = run_persister(b, NV_FSYNC_ALWAYS, n, FLUSH_EVERY);
			alw[r] = ta.rps;
			tu = run_persister(b, NV_FSYNC_BATCH, n, 0);
			bur[r] = tu.rps;
		}
		double mraw = nvb_median(raw, reps), mb = nvb_median(bat, reps);
		nvb_report(ctx, "store", "raw-append(fsync/1000)", "records/s",
			   mraw, "rec/s");
		snprintf(c, sizeof(c), "%s/batch(flush/1000)", b->name);
		nvb_report(ctx, "store", c, "records/s", mb, "rec/s");
		nvb_report(ctx, "store", c, "bytes/record", tb.bytes_per, "B");
		nvb_report(ctx, "store", c, "fsyncs/1k_recs", tb.syncs_per, "");
		nvb_report(ctx, "store", c, "vs_raw", mb / mraw, "x");
		snprintf(c, sizeof(c), "%s/always(flush/1000)", b->name);
		nvb_report(ctx, "store", c, "records/s", nvb_median(alw, reps),
			   "rec/s");
		nvb_report(ctx, "store", c, "fsyncs/1k_recs", ta.syncs_per, "");
		snprintf(c, sizeof(c), "%s/batch-burst", b->name);
		nvb_report(ctx, "store", c, "records/s", nvb_median(bur, reps),
			   "rec/s");
		nvb_report(ctx, "store", c, "fsyncs/1k_recs", tu.syncs_per, "");
		snprintf(c, sizeof(c), "%s/flush(batch)", b->name);
		flush_latency(ctx, b, NV_FSYNC_BATCH, c);
		snprintf(c, sizeof(c), "%s/flush(always)", b->name);
		flush_latency(ctx, b, NV_FSYNC_ALWAYS, c);
		snprintf(c, sizeof(c), "%s/recovery", b->name);
		recovery(ctx, b, c);
		snprintf(c, sizeof(c), "store %s/batch vs raw append", b->name);
		nvb_gate(ctx, c, mb / mraw, 0.15);
	}
	nv__log_set_level(NV__LOG_WARN);
}

NVB_SUITE(store, suite_store, 50)
