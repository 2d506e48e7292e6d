/*
 * tests/fuzz/fuzz_cron.c - libFuzzer target for the cron parser and the
 * next-fire-time search.
 *
 * The input bytes are the expression. When it parses, nv__cron_next runs
 * from a few start times (around DST transitions, a leap day, before 1970)
 * in UTC and in one zone picked from the input, and the answers are checked:
 * strictly later than the start, whole seconds, the same through the public
 * nv_cron_next, stable when asked again from one millisecond earlier, and in
 * UTC the fire time's calendar fields must match the compiled sets (day rule
 * included) and a fire time must exist. Any violation traps. A hang would be a
 * bug too: the search is bounded, so libFuzzer's -timeout catches one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/cron.h"
#include "nuvom.h"

#define CHECK(x)                                                               \
	do {                                                                   \
		if (!(x))                                                      \
			__builtin_trap();                                      \
	} while (0)

static const char *const zones[] = {
    "America/New_York",	   "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata",
    "Australia/Lord_Howe", "Pacific/Apia",  "America/Santiago", "Europe/Dublin",
};

static const int64_t starts[] = {
    0,		   /* 1970-01-01 */
    -1,		   /* just before */
    1710053999123, /* NY spring forward - 1 s */
    1730613599123, /* NY fall back - 1 s */
    1711846799000, /* Berlin spring forward - 1 s */
    1709164800000, /* 2024-02-29 */
    4102444800000, /* 2100-01-01 */
    1325239200000, /* 2011-12-30 Apia skipped the day */
};

static bool
utc_matches(const nv_cron *c, int64_t ms)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	bool dom, dow;
	if (gmtime_r(&s, &tm) == NULL)
		return false;
	dom = c->dom >> tm.tm_mday & 1;
	dow = c->dow >> tm.tm_wday & 1;
	if (c->flags & (NV_CRON_DOM_STAR | NV_CRON_DOW_STAR))
		dom = dom && dow;
	else
		dom = dom || dow;
	return (c->sec >> tm.tm_sec & 1) && (c->min >> tm.tm_min & 1) &&
	       (c->hour >> tm.tm_hour & 1) &&
	       (c->month >> (tm.tm_mon + 1) & 1) && dom;
}

static void
check(const nv_cron *c, const char *expr, const char *tz, int64_t after)
{
	int64_t n = 0, m = 0, again = 0;
	int rc = nv__cron_next(c, tz, after, &n);
	/* In UTC every accepted expression fires within 400 years. In a zone
	 * a wall-clock job may never fire again when all its times fall in
	 * DST gaps (02:xx on the second Sunday of March in New York). */
	if (tz != NULL && rc == NV_ENOENT) {
		CHECK(nv_cron_next(expr, tz, after, &m) == NV_ENOENT);
		return;
	}
	CHECK(rc == 0);
	CHECK(n > after);
	CHECK(n % 1000 == 0);
	CHECK(nv_cron_next(expr, tz, after, &m) == 0 && m == n);
	if (n - 1 > after)
		CHECK(nv__cron_next(c, tz, n - 1, &again) == 0 && again == n);
	if (tz == NULL)
		CHECK(utc_matches(c, n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char expr[256], err[128];
	unsigned h = 0;
	nv_cron c;

	if (size >= sizeof(expr))
		size = sizeof(expr) - 1;
	memcpy(expr, data, size);
	expr[size] = '\0';
	if (nv__cron_parse(&c, expr, err, sizeof(err)) != 0) {
		/* rejected: always with a message, never half-written */
		CHECK(err[0] != '\0');
		return 0;
	}
	for (size_t i = 0; i < size; i++)
		h = h * 31 + data[i];
	for (size_t i = 0; i < sizeof(starts) / sizeof(*starts); i++) {
		check(&c, expr, NULL, starts[i]);
		check(&c, expr, zones[h % (sizeof(zones) / sizeof(*zones))],
		      starts[i]);
	}
	return 0;
}
