/* ctest: labels=unit;concurrency timeout=120 */
/*
 * tests/test_cron.c - cron parser and next-fire-time calculator.
 *
 * The expected fire times come from tests/data/cron_cases.tsv, written by
 * tests/data/gen_cron_cases.py: an independent brute-force model (its own
 * parser, Python's zoneinfo, instant-by-instant stepping), never from the
 * code under test. The hand-written constants below were computed with
 * Python's datetime/zoneinfo as well (noted beside each).
 */
#include "testutil.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cron.h"
#include "engine/tz.h"

/* ------------------------------------------------------------ helpers */

static nv_cron
parse_ok(const char *expr)
{
	nv_cron c;
	char err[256];
	int rc = nv__cron_parse(&c, expr, err, sizeof(err));
	if (rc != 0)
		fail_msg("'%s' rejected: %s", expr, err);
	return c;
}

static uint64_t
bits(int lo, int hi, int step)
{
	uint64_t b = 0;
	for (int v = lo; v <= hi; v += step)
		b |= 1ull << v;
	return b;
}

static uint64_t
list(const int *v, int n)
{
	uint64_t b = 0;
	for (int i = 0; i < n; i++)
		b |= 1ull << v[i];
	return b;
}
#define LIST(...)                                                              \
	list((const int[]){__VA_ARGS__},                                       \
	     (int)(sizeof((const int[]){__VA_ARGS__}) / sizeof(int)))

static int64_t
next_of(const char *expr, const char *tz, int64_t after)
{
	int64_t n = 0;
	int rc = nv_cron_next(expr, tz, after, &n);
	if (rc != 0)
		fail_msg("nv_cron_next('%s', %s, %" PRId64 ") = %s", expr,
			 tz ? tz : "NULL", after, nv_err_name(rc));
	return n;
}

/* -------------------------------------------------------- syntax forms */

static void
test_cron_syntax_fields(void **state)
{
	nv_cron c;

	c = parse_ok("* * * * *");
	assert_int_equal(c.sec, 1);
	assert_int_equal(c.min, bits(0, 59, 1));
	assert_int_equal(c.hour, bits(0, 23, 1));
	assert_int_equal(c.dom, bits(1, 31, 1));
	assert_int_equal(c.month, bits(1, 12, 1));
	assert_int_equal(c.dow, 0x7f);
	assert_int_equal(c.flags, NV_CRON_DOM_STAR | NV_CRON_DOW_STAR);

	c = parse_ok("1,2,59 0-5 10-20/5 */3 1-5/2");
	assert_int_equal(c.min, LIST(1, 2, 59));
	assert_int_equal(c.hour, bits(0, 5, 1));
	assert_int_equal(c.dom, LIST(10, 15, 20));
	assert_int_equal(c.month, LIST(1, 4, 7, 10));
	assert_int_equal(c.dow, LIST(1, 3, 5));
	assert_int_equal(c.flags, NV_CRON_FIXED); /* OR day rule */

	c = parse_ok("*/5 * * * *");
	assert_int_equal(c.min, bits(0, 55, 5));
	assert_int_equal(c.hour, bits(0, 23, 1));
}

static void
test_cron_syntax_steps(void **state)
{
	nv_cron c = parse_ok("10-50/10 5/6 5/15 */5 MON/2");
	assert_int_equal(c.min, LIST(10, 20, 30, 40, 50));
	assert_int_equal(c.hour, LIST(5, 11, 17, 23));
	assert_int_equal(c.dom, LIST(5, 20));
	assert_int_equal(c.month, LIST(1, 6, 11));
	assert_int_equal(c.dow, LIST(1, 3, 5, 0)); /* 1-7/2 = 1,3,5,7 */
	c = parse_ok("*/60 */24 */31 */12 */7");
	assert_int_equal(c.min, 1);
	assert_int_equal(c.hour, 1);
	assert_int_equal(c.dom, 2);
	assert_int_equal(c.month, 2);
	assert_int_equal(c.dow, 1);    /* 0 and 7: Sunday */
	c = parse_ok("5-5/2 * * * *"); /* a range of one, not 5-max */
	assert_int_equal(c.min, LIST(5));
	c = parse_ok("0 0 * * 5/1");
	assert_int_equal(c.dow, LIST(5, 6, 0));
}

static void
test_cron_syntax_names(void **state)
{
	nv_cron a = parse_ok("0 0 * JAN,feb,Mar,dec SUN,mon,TuE");
	assert_int_equal(a.month, LIST(1, 2, 3, 12));
	assert_int_equal(a.dow, LIST(0, 1, 2));
	a = parse_ok("0 0 * jul-SEP mon-fri");
	assert_int_equal(a.month, LIST(7, 8, 9));
	assert_int_equal(a.dow, LIST(1, 2, 3, 4, 5));
	a = parse_ok("0 0 * * MON-SUN"); /* SUN ends a range as 7 */
	assert_int_equal(a.dow, 0x7f);
	a = parse_ok("0 0 * * SUN-SAT");
	assert_int_equal(a.dow, 0x7f);
	a = parse_ok("0 0 * * 7");
	assert_int_equal(a.dow, LIST(0));
	a = parse_ok("0 0 * * 0");
	assert_int_equal(a.dow, LIST(0));
	a = parse_ok("0 0 * * 5-7");
	assert_int_equal(a.dow, LIST(5, 6, 0));
	a = parse_ok("0 0 * JAN-DEC/3 *");
	assert_int_equal(a.month, LIST(1, 4, 7, 10));
}

static void
test_cron_syntax_seconds_and_flags(void **state)
{
	nv_cron c = parse_ok("15,45 30 9 * * MON");
	assert_int_equal(c.sec, LIST(15, 45));
	assert_int_equal(c.min, LIST(30));
	assert_int_equal(c.hour, LIST(9));
	assert_int_equal(c.flags,
			 NV_CRON_SECONDS | NV_CRON_DOM_STAR | NV_CRON_FIXED);
	c = parse_ok("*/10 * * * * *");
	assert_int_equal(c.sec, bits(0, 50, 10));
	assert_int_equal(c.flags & NV_CRON_FIXED, 0);
	/* fixed-time: no '*' and no '/' in second, minute, hour */
	assert_true(parse_ok("30 2 * * *").flags & NV_CRON_FIXED);
	assert_true(parse_ok("0,30 1-3 * * *").flags & NV_CRON_FIXED);
	assert_false(parse_ok("*/15 2 * * *").flags & NV_CRON_FIXED);
	assert_false(parse_ok("0 */2 * * *").flags & NV_CRON_FIXED);
	assert_false(parse_ok("0 0/2 * * *").flags & NV_CRON_FIXED);
	assert_false(parse_ok("0 * * * *").flags & NV_CRON_FIXED);
	assert_false(parse_ok("* 30 2 * * *").flags & NV_CRON_FIXED);
	/* Vixie: a field starting with '*' turns the day rule into AND */
	assert_int_equal(parse_ok("0 0 1 * MON").flags & 3, 0);
	assert_int_equal(parse_ok("0 0 */2 * MON").flags & 3, NV_CRON_DOM_STAR);
	assert_int_equal(parse_ok("0 0 1 * */2").flags & 3, NV_CRON_DOW_STAR);
	/* blanks: tabs, several, leading and trailing */
	c = parse_ok(" \t0\t\t12  *  * *\n");
	assert_int_equal(c.hour, LIST(12));
}

static void
test_cron_syntax_macros(void **state)
{
	static const char *const m[][2] = {
	    {"@yearly", "0 0 1 1 *"},	  {"@annually", "0 0 1 1 *"},
	    {"@monthly", "0 0 1 * *"},	  {"@weekly", "0 0 * * 0"},
	    {"@daily", "0 0 * * *"},	  {"@midnight", "0 0 * * *"},
	    {"@hourly", "0 * * * *"},	  {"@DAILY", "0 0 * * *"},
	    {"  @Hourly  ", "0 * * * *"},
	};
	for (size_t i = 0; i < sizeof(m) / sizeof(*m); i++) {
		nv_cron a = parse_ok(m[i][0]), b = parse_ok(m[i][1]);
		if (memcmp(&a, &b, sizeof(a)) != 0)
			fail_msg("%s differs from '%s'", m[i][0], m[i][1]);
	}
}

/* ------------------------------------------------------- bad expressions */

static void
test_cron_invalid_messages(void **state)
{
	static const struct {
		const char *expr, *msg;
	} bad[] = {
	    {"", "empty expression"},
	    {" \t ", "empty expression"},
	    {"* * * *", "expected 5 fields"},
	    {"* * * *", "got 4"},
	    {"* * * * * * *", "got 7"},
	    {"60 * * * *",
	     "field 1 (minute) at position 1: value 60 out of range 0-59"},
	    {"0 24 * * *",
	     "field 2 (hour) at position 3: value 24 out of range 0-23"},
	    {"*/5 24 * * *",
	     "field 2 (hour) at position 5: value 24 out of range 0-23"},
	    {"0 0 0 * *", "field 3 (day-of-month) at position 5: value 0 "
			  "out of range 1-31"},
	    {"0 0 32 * *", "field 3 (day-of-month) at position 5: value 32"},
	    {"0 0 * 13 *", "field 4 (month) at position 7: value 13 out of "
			   "range 1-12"},
	    {"0 0 * 0 *", "field 4 (month) at position 7: value 0"},
	    {"0 0 * * 8", "field 5 (day-of-week) at position 9: value 8 out "
			  "of range 0-7"},
	    {"0 0 * * 0-8", "field 5 (day-of-week) at position 11: value 8"},
	    {"0 0 * FOO *",
	     "field 4 (month) at position 7: unknown month name 'FOO'"},
	    {"0 0 * JAN-FOO *", "field 4 (month) at position 11: unknown "
				"month name 'FOO'"},
	    {"0 0 * * FUN", "field 5 (day-of-week) at position 9: unknown "
			    "day name 'FUN'"},
	    {"0 0 * * MONDAY", "field 5 (day-of-week) at position 9: unknown "
			       "day name 'MONDAY'"},
	    {"0 MON * * *",
	     "field 2 (hour) at position 3: unexpected name 'MON'"},
	    {"0 0 L * *",
	     "field 3 (day-of-month) at position 5: unexpected name 'L'"},
	    {"5-3 * * * *", "field 1 (minute) at position 3: range start 5 "
			    "is greater than end 3"},
	    {"0 0 * DEC-JAN *", "field 4 (month) at position 11: range "
				"start 12 is greater than end 1"},
	    {"*/0 * * * *",
	     "field 1 (minute) at position 3: step 0 out of range 1-60"},
	    {"*/61 * * * *", "field 1 (minute) at position 3: step 61"},
	    {"0 */25 * * *",
	     "field 2 (hour) at position 5: step 25 out of range 1-24"},
	    {"*/ * * * *", "field 1 (minute) at position 3: expected a step "
			   "after '/', found end of field"},
	    {"*/5/2 * * * *",
	     "field 1 (minute) at position 4: unexpected character '/'"},
	    {"1,,2 * * * *", "field 1 (minute) at position 3: empty list item"},
	    {"1, * * * *", "field 1 (minute) at position 3: empty list item"},
	    {",1 * * * *", "field 1 (minute) at position 1: empty list item"},
	    {"1- * * * *", "field 1 (minute) at position 3: expected a "
			   "value, found end of field"},
	    {"*-5 * * * *",
	     "field 1 (minute) at position 2: unexpected character '-'"},
	    {"5x * * * *",
	     "field 1 (minute) at position 2: unexpected character 'x'"},
	    {"? * * * *",
	     "field 1 (minute) at position 1: expected a value, found '?'"},
	    {"0 0 * * 1#2", "field 5 (day-of-week) at position 10: "
			    "unexpected character '#'"},
	    {"0 0 * * 1\x01", "field 5 (day-of-week) at position 10: "
			      "unexpected character 0x01"},
	    {"99999999999999999999 * * * *",
	     "field 1 (minute) at position 1: value 99999999999999999999 "
	     "out of range"},
	    {"60 0 0 * * *",
	     "field 1 (second) at position 1: value 60 out of range 0-59"},
	    {"0 60 0 * * *", "field 2 (minute) at position 3: value 60"},
	    {"0 0 0 * * 9", "field 6 (day-of-week) at position 11: value 9"},
	    {"0 0 30 2 *", "field 3 (day-of-month) at position 5: no "
			   "selected day exists in the selected months"},
	    {"0 0 31 4,6,9,11 *", "field 3 (day-of-month) at position 5: "
				  "no selected day"},
	    {"0 0 30-31 FEB *", "would never fire"},
	    {"0 0 0 31 APR */2", "field 4 (day-of-month) at position 7"},
	    {"@reboot", "unknown macro '@reboot' at position 1"},
	    {"@", "unknown macro '@'"},
	    {"@daily 5", "unexpected text at position 8 after @daily"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		nv_cron c;
		char err[256];
		int64_t n;
		int rc = nv__cron_parse(&c, bad[i].expr, err, sizeof(err));
		if (rc != NV_ECRON)
			fail_msg("'%s' -> %s, want ECRON", bad[i].expr,
				 nv_err_name(rc));
		if (strstr(err, bad[i].msg) == NULL)
			fail_msg("'%s': message \"%s\" lacks \"%s\"",
				 bad[i].expr, err, bad[i].msg);
		assert_int_equal(nv_cron_next(bad[i].expr, NULL, 0, &n),
				 NV_ECRON);
		assert_int_equal(
		    nv_cron_next(bad[i].expr, "Europe/Berlin", 0, &n),
		    NV_ECRON);
	}
	assert_true(sizeof(bad) / sizeof(*bad) >= 30);
}

static void
test_cron_invalid_err_buffer(void **state)
{
	nv_cron c;
	char tiny[8];
	/* NULL or tiny buffers are fine; the message is cut, terminated */
	assert_int_equal(nv__cron_parse(&c, "0 24 * * *", NULL, 0), NV_ECRON);
	assert_int_equal(nv__cron_parse(&c, "0 24 * * *", tiny, 0), NV_ECRON);
	memset(tiny, 'x', sizeof(tiny));
	assert_int_equal(nv__cron_parse(&c, "0 24 * * *", tiny, sizeof(tiny)),
			 NV_ECRON);
	assert_string_equal(tiny, "field 2");
	assert_int_equal(nv__cron_parse(NULL, "* * * * *", NULL, 0), NV_EINVAL);
	assert_int_equal(nv__cron_parse(&c, NULL, tiny, sizeof(tiny)),
			 NV_EINVAL);
	/* rare but possible: Feb 29 and OR-rule days are accepted */
	parse_ok("0 0 29 2 *");
	parse_ok("0 0 31 4 MON");
	parse_ok("0 0 29 2 */7");
}

static void
test_cron_bad_args(void **state)
{
	int64_t n = 42;
	nv_cron c = parse_ok("* * * * *");
	assert_int_equal(nv_cron_next(NULL, NULL, 0, &n), NV_EINVAL);
	assert_int_equal(nv_cron_next("* * * * *", NULL, 0, NULL), NV_EINVAL);
	assert_int_equal(nv_cron_next("", NULL, 0, &n), NV_ECRON);
	assert_int_equal(nv_cron_next("* * * *", NULL, 0, &n), NV_ECRON);
	assert_int_equal(nv_cron_next("* * * * * * *", NULL, 0, &n), NV_ECRON);
	static const char *const zones[] = {
	    "Mars/Olympus_Mons",
	    "Etc/Unknown",
	    "GMT+05:30",
	    "utc",
	    "",
	    "America/New_York ",
	    "../../etc/passwd",
	    "America\\New_York",
	    "Europe/Berlin\n",
	    "Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "/Zzzz",
	};
	for (size_t i = 0; i < sizeof(zones) / sizeof(*zones); i++) {
		if (nv_cron_next("* * * * *", zones[i], 0, &n) != NV_EINVAL)
			fail_msg("zone '%s' accepted", zones[i]);
		assert_int_equal(nv__cron_next(&c, zones[i], 0, &n), NV_EINVAL);
		assert_int_equal(nv__tz_check(zones[i]), NV_EINVAL);
	}
	assert_int_equal(n, 42); /* untouched by failures */
	assert_int_equal(nv__cron_next(NULL, NULL, 0, &n), NV_EINVAL);
	assert_int_equal(nv__cron_next(&c, NULL, 0, NULL), NV_EINVAL);
	/* aliases ICU knows as system ids are fine */
	assert_int_equal(nv__tz_check("US/Eastern"), 0);
	assert_int_equal(nv__tz_check("Etc/UTC"), 0);
	assert_int_equal(nv__tz_check(NULL), 0);
}

/* ------------------------------------------------------- fire times */

static void
test_cron_next_examples(void **state)
{
	/* Values from Python datetime/zoneinfo. */
	const char *ny = "America/New_York";
	/* 2024-01-01T00:00Z -> Kolkata midnight is 18:30Z */
	assert_int_equal(next_of("0 0 * * *", "Asia/Kolkata", 1704067200000),
			 1704133800000);
	/* spring forward: 02:30 does not exist on 2024-03-10, fires 03:00
	 * EDT (the instant the gap ends) */
	assert_int_equal(next_of("30 2 * * *", ny, 1710046800000),
			 1710054000000);
	/* ... and a wall-clock job goes from 01:45 EST to 03:00 EDT */
	assert_int_equal(next_of("*/15 * * * *", ny, 1710053100000),
			 1710054000000);
	/* fall back: 01:30 fires at its first occurrence (EDT) only */
	assert_int_equal(next_of("30 1 * * *", ny, 1730606400000),
			 1730611800000);
	assert_int_equal(next_of("30 1 * * *", ny, 1730611800000),
			 1730701800000);
	/* ... while a wall-clock job fires in both passes: 01:45 EDT, then
	 * 01:00 EST */
	assert_int_equal(next_of("*/15 * * * *", ny, 1730612700000),
			 1730613600000);
	/* strictly after: a fire time as `after` gives the next one */
	assert_int_equal(next_of("0 0 * * *", NULL, 1704067200000),
			 1704067200000 + 86400000);
	assert_int_equal(next_of("0 0 * * *", "UTC", 1704067199999),
			 1704067200000);
}

static void
test_cron_next_range_limits(void **state)
{
	int64_t n;
	/* before year 1: searched from 0001-01-01T00:00Z (-62135596800 s) */
	assert_int_equal(next_of("0 0 1 1 *", NULL, INT64_MIN),
			 -62135596800000);
	/* 9999-12-31T23:59Z is the last minute (253402300740 s) */
	assert_int_equal(next_of("59 23 31 12 *", NULL, 253402214400000),
			 253402300740000);
	assert_int_equal(
	    nv_cron_next("59 23 31 12 *", NULL, 253402300740000, &n),
	    NV_ENOENT);
	assert_int_equal(
	    nv_cron_next("* * * * *", "Europe/Berlin", INT64_MAX, &n),
	    NV_ENOENT);
	assert_int_equal(
	    nv_cron_next("0 0 29 2 *", "Asia/Kolkata", 253402214400000, &n),
	    NV_ENOENT);
	/* 02:xx on the second Sunday of March: in New York a wall-clock job
	 * still fired in 1970 (DST began in April), but never since 2007,
	 * when that Sunday became the spring-forward day (Python finds none
	 * within 41 years). */
	assert_int_equal(next_of("*/5 2 8-14 3 */7", "America/New_York", 0),
			 5727600000);
	assert_int_equal(nv_cron_next("*/5 2 8-14 3 */7", "America/New_York",
				      1167609600000, &n),
			 NV_ENOENT);
	/* a hand-built expression that never fires: bounded, ENOENT */
	nv_cron c = parse_ok("0 0 1 1 *");
	c.dom = 1u << 31;
	c.month = 1u << 2;
	assert_int_equal(nv__cron_next(&c, NULL, 0, &n), NV_ENOENT);
	assert_int_equal(nv__cron_next(&c, "America/New_York", 0, &n),
			 NV_ENOENT);
}

static void
test_cron_tz_periods(void **state)
{
	nv_tz_period p;
	/* US rules: 2024-03-10T07:00Z .. 2024-11-03T06:00Z is EDT */
	assert_int_equal(nv__tz_period("America/New_York", 1719792000000, &p),
			 0);
	assert_int_equal(p.start_ms, 1710054000000);
	assert_int_equal(p.end_ms, 1730613600000);
	assert_int_equal(p.off_ms, -4 * 3600000);
	assert_int_equal(p.prev_off_ms, -5 * 3600000);
	assert_int_equal(p.next_off_ms, -5 * 3600000);
	/* the transition instant belongs to the new period */
	assert_int_equal(nv__tz_period("America/New_York", 1730613600000, &p),
			 0);
	assert_int_equal(p.start_ms, 1730613600000);
	assert_int_equal(p.off_ms, -5 * 3600000);
	assert_int_equal(nv__tz_period("Asia/Kolkata", 1719792000000, &p), 0);
	assert_int_equal(p.off_ms, 19800000);
	assert_int_equal(p.end_ms, INT64_MAX);
	assert_int_equal(nv__tz_period("Etc/UTC", 0, &p), 0);
	assert_int_equal(p.off_ms, 0);
	assert_int_equal(nv__tz_period("Nowhere/Town", 0, &p), NV_EINVAL);
	assert_int_equal(nv__tz_period("Europe/Berlin", 0, NULL), NV_EINVAL);
}

/* ------------------------------------------------------- the case table */

struct cron_case {
	char expr[64], tz[40];
	int64_t after, expect;
};

static struct cron_case *cases;
static size_t ncases;

static void
load_cases(void)
{
	const char *dir = getenv("NV_TEST_SRCDIR");
	char path[1024], line[512];
	size_t cap = 0;
	FILE *f;

	if (cases != NULL)
		return;
	if (dir != NULL) {
		snprintf(path, sizeof(path), "%s/data/cron_cases.tsv", dir);
	} else { /* run by hand: the folder this file was compiled from */
		const char *slash = strrchr(__FILE__, '/');
		int n = slash ? (int)(slash - __FILE__) : 1;
		snprintf(path, sizeof(path), "%.*s/data/cron_cases.tsv", n,
			 slash ? __FILE__ : ".");
	}
	f = fopen(path, "r");
	if (f == NULL)
		fail_msg("cannot open %s (set NV_TEST_SRCDIR)", path);
	while (fgets(line, sizeof(line), f) != NULL) {
		struct cron_case *k;
		char *expr, *tz, *a, *e;
		if (line[0] == '#')
			continue;
		expr = strtok(line, "\t");
		tz = strtok(NULL, "\t");
		a = strtok(NULL, "\t");
		e = strtok(NULL, "\t\n");
		assert_non_null(e);
		if (ncases == cap) {
			cap = cap ? cap * 2 : 256;
			cases = realloc(cases, cap * sizeof(*cases));
			assert_non_null(cases);
		}
		k = &cases[ncases++];
		assert_true(strlen(expr) < sizeof(k->expr));
		assert_true(strlen(tz) < sizeof(k->tz));
		strcpy(k->expr, expr);
		strcpy(k->tz, tz);
		k->after = strtoll(a, NULL, 10);
		k->expect = strtoll(e, NULL, 10);
	}
	fclose(f);
}

static const char *
case_tz(const struct cron_case *k)
{
	return strcmp(k->tz, "NULL") == 0 ? NULL : k->tz;
}

/* Runs cases [0, n) starting at `first`; returns the mismatches. */
static size_t
run_cases(size_t first, bool report)
{
	size_t bad = 0;
	for (size_t j = 0; j < ncases; j++) {
		const struct cron_case *k = &cases[(first + j) % ncases];
		nv_cron c;
		int64_t a = 0, b = 0;
		int rc1 = nv_cron_next(k->expr, case_tz(k), k->after, &a);
		int rc2 = nv__cron_parse(&c, k->expr, NULL, 0);
		if (rc2 == 0)
			rc2 = nv__cron_next(&c, case_tz(k), k->after, &b);
		if (rc1 == 0 && rc2 == 0 && a == k->expect && b == k->expect)
			continue;
		if (report && bad < 20)
			print_message("MISMATCH '%s' %s after %" PRId64
				      ": want %" PRId64 ", got %" PRId64
				      "/%" PRId64 " (%s/%s)\n",
				      k->expr, k->tz, k->after, k->expect, a, b,
				      nv_err_name(rc1), nv_err_name(rc2));
		bad++;
	}
	return bad;
}

static void
test_cron_table(void **state)
{
	static const char *const zones[] = {"NULL",
					    "UTC",
					    "America/New_York",
					    "Europe/Berlin",
					    "Australia/Sydney",
					    "Asia/Kolkata"};
	load_cases();
	assert_true(ncases >= 1000);
	for (size_t z = 0; z < sizeof(zones) / sizeof(*zones); z++) {
		size_t n = 0;
		for (size_t i = 0; i < ncases; i++)
			n += strcmp(cases[i].tz, zones[z]) == 0;
		if (n < 20)
			fail_msg("only %zu cases for %s", n, zones[z]);
	}
	assert_int_equal(run_cases(0, true), 0);
}

struct runner {
	size_t first, bad;
};

static void *
runner_main(void *arg)
{
	struct runner *r = arg;
	r->bad = run_cases(r->first, false);
	return NULL;
}

/* Several threads share nothing but the compiled data; each has its own
 * zone cache, started at a different row so the caches differ. */
static void
test_cron_table_threads(void **state)
{
	enum { T = 4 };
	pthread_t th[T];
	struct runner r[T];
	load_cases();
	for (int i = 0; i < T; i++) {
		r[i].first = ncases * (size_t)i / T;
		assert_int_equal(
		    pthread_create(&th[i], NULL, runner_main, &r[i]), 0);
	}
	for (int i = 0; i < T; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(r[i].bad, 0);
	}
}

struct zone_job {
	const char *tz;
	int64_t next;
};

static void *
one_zone(void *arg)
{
	struct zone_job *j = arg;
	if (nv_cron_next("30 2 * * *", j->tz, 1710000000000, &j->next) != 0)
		j->next = -1;
	return NULL;
}

/* More zones than one thread caches: evictions must not change answers. */

static void
test_cron_zone_cache_eviction(void **state)
{
	static const char *const zones[] = {
	    "America/New_York",	   "Europe/Berlin",	"Australia/Sydney",
	    "Asia/Kolkata",	   "Asia/Tokyo",	"America/Chicago",
	    "Europe/London",	   "America/Denver",	"Pacific/Auckland",
	    "Africa/Cairo",	   "America/Sao_Paulo", "Europe/Moscow",
	    "Australia/Lord_Howe",
	};
	enum { NZ = sizeof(zones) / sizeof(*zones) };
	int64_t first[NZ], again[NZ];
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < NZ; i++) {
			int64_t *dst = round == 0 ? first : again;
			dst[i] = next_of("30 2 * * *", zones[i], 1710000000000);
			if (round > 0)
				assert_int_equal(again[i], first[i]);
		}
	/* a fresh thread (empty cache) agrees */
	for (int i = 0; i < NZ; i++) {
		pthread_t th;
		struct zone_job j = {zones[i], 0};
		assert_int_equal(pthread_create(&th, NULL, one_zone, &j), 0);
		assert_int_equal(pthread_join(th, NULL), 0);
		assert_int_equal(j.next, first[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cron_syntax_fields),
	    cmocka_unit_test(test_cron_syntax_steps),
	    cmocka_unit_test(test_cron_syntax_names),
	    cmocka_unit_test(test_cron_syntax_seconds_and_flags),
	    cmocka_unit_test(test_cron_syntax_macros),
	    cmocka_unit_test(test_cron_invalid_messages),
	    cmocka_unit_test(test_cron_invalid_err_buffer),
	    cmocka_unit_test(test_cron_bad_args),
	    cmocka_unit_test(test_cron_next_examples),
	    cmocka_unit_test(test_cron_next_range_limits),
	    cmocka_unit_test(test_cron_tz_periods),
	    cmocka_unit_test(test_cron_table),
	    cmocka_unit_test(test_cron_table_threads),
	    cmocka_unit_test(test_cron_zone_cache_eviction),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(cases);
	return rc;
}
