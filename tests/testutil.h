/*
 * tests/testutil.h - helpers shared by the cmocka tests.
 *
 * cmocka needs these includes in this order; every test includes this
 * header first.
 */
#ifndef NV_TESTUTIL_H
#define NV_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <time.h>
#include <cmocka.h>

#include "nuvom.h"

/* Stress scale: NV_STRESS_SCALE=n (percent, default 100) lets slow builds
 * (TSan) run fewer items while keeping every check. */
uint64_t nv_test_scaled(uint64_t n);

/* True when built with a sanitizer (TSan/ASan) - for sizing only. */
bool nv_test_sanitized(void);

/* Nanoseconds on clock id (CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID). */
static inline uint64_t
nv_test_clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: a deterministic pseudo-random step for test data. */
static inline uint64_t
nv_test_rand(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 2685821657736338717ull;
}

/* Waits until pred(arg) is true or deadline_ms passes; returns the final
 * pred value. Polls with short sleeps: conditions, not fixed timing. */
bool nv_test_wait_until(bool (*pred)(void *), void *arg, unsigned deadline_ms);

/* Makes a fresh temporary directory (mkdtemp under $TMPDIR or /tmp) and
 * returns its path in a static per-call buffer the caller must copy, or
 * writes into buf. */
void nv_test_tmpdir(char *buf, size_t len, const char *tag);

/* rm -rf of a test directory (only below /tmp or $TMPDIR). */
void nv_test_rmrf(const char *path);

/* Unsets every environment variable whose name starts with prefix. */
void nv_test_clear_env(const char *prefix);

/* cmocka setup/teardown: clears the NUVOM_* environment. */
int nv_test_env_reset(void **state);

/* Pins the calling thread to cpu % ncpu (best effort). */
void nv_test_pin(unsigned cpu);

#endif
