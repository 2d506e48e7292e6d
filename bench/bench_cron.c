/*
 * bench/bench_cron.c - cost of a next-fire-time query (suite "cron").
 *
 * Three implementations behind one ops table, run interleaved on the same
 * expressions, medians of ctx->reps repetitions:
 *  - compiled: nv__cron_next on an expression parsed once (what the
 *    scheduler does on every fire);
 *  - public:   nv_cron_next, parsing the text on every call;
 *  - naive:    the baseline, stepping minute by minute in UTC and testing
 *    each minute against the same compiled sets (5-field UTC cases only).
 * Queries are chained like a scheduler's (after = previous fire time), so
 * they cross months, years and, in a zone, DST transitions; the zone cases
 * thus include the ICU lookups made when a new offset period starts.
 * A last case scatters unchained queries over 50 years to show the cost
 * of a zone-cache miss. Every case checks that the implementations agree
 * (a gate); each measurement is time-bounded (quick mode: ~25 ms).
 */
#include "bench.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/cron.h"
#include "nuvom.h"

struct cron_bcase {
	const char *name, *expr, *tz;
	int64_t start;
};

typedef int (*cron_op_fn)(const nv_cron *c, const struct cron_bcase *k,
			  int64_t after, int64_t *next);

static int
op_compiled(const nv_cron *c, const struct cron_bcase *k, int64_t after,
	    int64_t *next)
{
	return nv__cron_next(c, k->tz, after, next);
}

static int
op_public(const nv_cron *c, const struct cron_bcase *k, int64_t after,
	  int64_t *next)
{
	return nv_cron_next(k->expr, k->tz, after, next);
}

static bool
naive_match(const nv_cron *c, time_t s)
{
	struct tm tm;
	bool dom, dow;
	gmtime_r(&s, &tm);
	dom = c->dom >> tm.tm_mday & 1;
	dow = c->dow >> tm.tm_wday & 1;
	dom = (c->flags & (NV_CRON_DOM_STAR | NV_CRON_DOW_STAR)) ? dom && dow
								 : dom || dow;
	return (c->min >> tm.tm_min & 1) && (c->hour >> tm.tm_hour & 1) &&
	       (c->month >> (tm.tm_mon + 1) & 1) && dom;
}

static int
op_naive(const nv_cron *c, const struct cron_bcase *k, int64_t after,
	 int64_t *next)
{
	int64_t m = after / 60000 + 1; /* after >= 0 here */
	for (int64_t i = 0; i < 5LL * 366 * 1440; i++, m++)
		if (naive_match(c, (time_t)(m * 60))) {
			*next = m * 60000;
			return 0;
		}
	return NV_ENOENT;
}

static const struct {
	const char *name;
	cron_op_fn fn;
	bool utc_minutes_only;
} cron_ops[] = {
    {"compiled", op_compiled, false},
    {"public", op_public, false},
    {"naive", op_naive, true},
};
enum { NOPS = sizeof(cron_ops) / sizeof(*cron_ops) };

static const struct cron_bcase cron_cases[] = {
    {"*/5 * * * * UTC", "*/5 * * * *", NULL, 1704067200000},
    {"0 9 * * MON-FRI UTC", "0 9 * * MON-FRI", NULL, 1704067200000},
    {"*/10 * * * * * UTC (seconds)", "*/10 * * * * *", NULL, 1704067200000},
    {"0 0 1,15 * MON UTC", "0 0 1,15 * MON", NULL, 1704067200000},
    {"*/5 * * * * New_York", "*/5 * * * *", "America/New_York", 1704067200000},
    {"30 2 * * * New_York", "30 2 * * *", "America/New_York", 1704067200000},
    {"0 9 * * MON-FRI Berlin", "0 9 * * MON-FRI", "Europe/Berlin",
     1704067200000},
};
enum { NCASES = sizeof(cron_cases) / sizeof(*cron_cases) };

/* ns per call over up to n chained calls within budget_ns; *last gets the
 * final fire time and *done the number of calls made. */
static double
cron_measure(cron_op_fn fn, const nv_cron *c, const struct cron_bcase *k, int n,
	     uint64_t budget_ns, int64_t *last, int *done)
{
	int64_t t = k->start, next = 0;
	uint64_t t0 = nvb_now_ns(), el = 0;
	int i;
	for (i = 0; i < n; i++) {
		if (fn(c, k, t, &next) != 0) {
			fprintf(stderr, "bench_cron: %s failed\n", k->name);
			break;
		}
		t = next;
		if ((i & 15) == 15 && (el = nvb_now_ns() - t0) > budget_ns) {
			i++;
			break;
		}
	}
	el = nvb_now_ns() - t0;
	*last = t;
	*done = i;
	return i > 0 ? (double)el / i : 0;
}

static void
bench_cron(nvb_ctx *ctx)
{
	int reps = ctx->reps;
	uint64_t budget = ctx->quick ? 25000000u : 200000000u;
	int n = ctx->quick ? 20000 : 200000;
	double *v = calloc((size_t)reps, sizeof(double));

	nvb_section("cron: ns per next-fire-time query (chained)");
	for (int ci = 0; ci < NCASES; ci++) {
		const struct cron_bcase *k = &cron_cases[ci];
		double med[NOPS] = {0};
		double samples[NOPS][16];
		int64_t last[NOPS];
		int done[NOPS];
		bool ran[NOPS] = {false};
		nv_cron c;
		char what[96];

		if (nv__cron_parse(&c, k->expr, NULL, 0) != 0) {
			fprintf(stderr, "bench_cron: cannot parse %s\n",
				k->expr);
			continue;
		}
		/* warm the zone cache of this thread */
		op_compiled(&c, k, k->start, &last[0]);
		for (int r = 0; r < reps && r < 16; r++)
			for (int o = 0; o < NOPS; o++) {
				bool utc5 = k->tz == NULL &&
					    !(c.flags & NV_CRON_SECONDS);
				if (cron_ops[o].utc_minutes_only && !utc5)
					continue;
				ran[o] = true;
				samples[o][r] = cron_measure(
				    cron_ops[o].fn, &c, k, o == 2 ? n / 20 : n,
				    budget, &last[o], &done[o]);
			}
		for (int o = 0; o < NOPS; o++) {
			int m = reps < 16 ? reps : 16;
			if (!ran[o])
				continue;
			memcpy(v, samples[o], (size_t)m * sizeof(double));
			med[o] = nvb_median(v, m);
			nvb_report(ctx, "cron", k->name, cron_ops[o].name,
				   med[o], "ns/call");
		}
		/* same answers: replay the common prefix of the chains */
		{
			int64_t a = 0, b, t = k->start;
			int common = done[0];
			bool agree = true;
			for (int o = 1; o < NOPS; o++)
				if (ran[o] && done[o] < common)
					common = done[o];
			for (int i = 0; i < common && i < 2000 && agree; i++) {
				if (op_compiled(&c, k, t, &a) != 0)
					agree = false;
				for (int o = 1; o < NOPS && agree; o++)
					if (ran[o] && (cron_ops[o].fn(
							   &c, k, t, &b) != 0 ||
						       a != b))
						agree = false;
				t = a;
			}
			snprintf(what, sizeof(what), "cron %s: answers agree",
				 k->name);
			nvb_gate(ctx, what, agree ? 1 : 0, 1);
		}
		if (ran[2] && med[0] > 0) {
			nvb_report(ctx, "cron", k->name, "naive/compiled",
				   med[2] / med[0], "x");
			if (strstr(k->expr, "MON-FRI") != NULL) {
				snprintf(what, sizeof(what),
					 "cron %s naive/compiled", k->name);
				nvb_gate(ctx, what, med[2] / med[0], 10.0);
			}
		}
		if (med[0] > 0)
			nvb_report(ctx, "cron", k->name, "public/compiled",
				   med[1] / med[0], "x");
	}
	/* Unchained queries scattered over 50 years: nearly every call starts
	 * in an offset period this thread has not cached (ICU lookups). */
	{
		struct cron_bcase k = {"30 2 * * * New_York scattered",
				       "30 2 * * *", "America/New_York", 0};
		nv_cron c;
		int m = reps < 16 ? reps : 16;
		int calls = ctx->quick ? 2000 : 20000;
		nv__cron_parse(&c, k.expr, NULL, 0);
		for (int r = 0; r < m; r++) {
			uint64_t t0 = nvb_now_ns();
			int64_t nx;
			for (int i = 0; i < calls; i++)
				nv__cron_next(
				    &c, k.tz,
				    1262304000000 +
					(int64_t)(((uint32_t)i * 2654435761u) %
						  18262u) *
					    86400000,
				    &nx);
			v[r] = (double)(nvb_now_ns() - t0) / calls;
		}
		nvb_report(ctx, "cron", k.name, "compiled", nvb_median(v, m),
			   "ns/call");
	}
	free(v);
}

NVB_SUITE(cron, bench_cron, 40)
