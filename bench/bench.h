/*
 * bench/bench.h - the nuvom benchmark harness.
 *
 * Each bench_<module>.c registers one suite with NVB_SUITE. A suite runs
 * competing implementations behind one ops table, interleaved, several
 * repetitions, and reports medians and ratios against the baseline measured
 * in the same process. Every result is one human table row on stdout and
 * one JSON object per line in the --json file. Gate checks compare ratios
 * (never absolute times: the machines are shared and noisy).
 *
 * Every benchmark is time-bounded: a suite must finish in its budget
 * (quick mode < 60 s for the whole harness) and must never leave a thread
 * spinning when it returns.
 */
#ifndef NV_BENCH_H
#define NV_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct nvb_ctx {
	bool quick;    /* quick mode: smaller sizes, fewer reps */
	int reps;      /* repetitions per case (median taken) */
	FILE *json;    /* JSON lines, or NULL */
	int gate_fail; /* gate checks failed so far */
	int gate_run;  /* gate checks run */
	int target_run, target_miss; /* targets: reported, never fatal */
	bool confirming; /* this process re-measures a missed gate */
} nvb_ctx;

typedef void (*nvb_suite_fn)(nvb_ctx *ctx);

/* Registers a suite (called from constructors); lower order runs first. */
void nvb_register(const char *name, nvb_suite_fn fn, int order);
#define NVB_SUITE(name, fn, order)                                             \
	static void __attribute__((constructor)) nvb_reg_##name(void)          \
	{                                                                      \
		nvb_register(#name, fn, order);                                \
	}

/* One measured value: printed as a table row and written as JSON. */
void nvb_report(nvb_ctx *ctx, const char *suite, const char *bcase,
		const char *metric, double value, const char *unit);

/* A gate check: passes when value >= min. Printed either way. */
void nvb_gate(nvb_ctx *ctx, const char *what, double value, double min);

/* A target: an aim of an open issue that this machine does not reach
 * reliably yet. Reported like a gate (and in the JSON) but a miss does
 * not fail --gate. bench/README.md lists which checks are targets. */
void nvb_target(nvb_ctx *ctx, const char *what, double value, double min);

/* A gate check that passes when value <= max. */
void nvb_gate_max(nvb_ctx *ctx, const char *what, double value, double max);

double nvb_median(double *v, int n); /* sorts v */
/* Median of the paired ratios a[i] / b[i] (a and b measured back to back
 * in repetition i): slow drifts of a shared machine cancel within a pair.
 * Pairs with b[i] <= 0 are skipped; 0 when none is left. a, b untouched. */
double nvb_paired_ratio(const double *a, const double *b, int n);
uint64_t nvb_now_ns(void);
void nvb_pin(unsigned cpu); /* pin calling thread to cpu % ncpu */
int nvb_ncpu(void);
void nvb_section(const char *title); /* prints a table heading */

/* Percentile (0..100) of n samples (sorts v). */
double nvb_percentile(uint64_t *v, size_t n, double pct);

#endif
