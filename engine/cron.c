/*
 * engine/cron.c - cron expression parser and next-fire-time calculator.
 *
 * Parsing. An expression compiles into an nv_cron: one bitset per field
 * plus flags (engine/cron.h). The parser is a hand-written scanner over the
 * string; every error names the field (as written, 1-based, with its name)
 * and the 1-based character position of the offending token. After the
 * fields parse, a static check refuses expressions that can never fire:
 * when the day must match the day-of-month set (Vixie AND mode, see below),
 * some selected month must have room for some selected day (February counts
 * 29 days). That check is exact: over any 400 Gregorian years every valid
 * (month, day) pair falls on each weekday, so every other expression fires
 * within 400 years, and the search below is bounded by that.
 *
 * Day rule (Vixie cron). When the day-of-month or the day-of-week field
 * starts with '*', a day must match both; when neither does, either one is
 * enough ("0 0 1,15 * MON" = the 1st, the 15th and every Monday).
 *
 * Calendar walk. nv__cron_next never steps minute by minute. It converts
 * the lower bound into a civil date and time (days-from-civil arithmetic on
 * the proleptic Gregorian calendar) and finds the first matching time with
 * bit scans: the next selected month, then a 31-bit mask of the month's
 * matching days (day-of-month set OR/AND the weekday set rotated to the
 * month's first weekday, cut at the month's length), then hour, minute and
 * second, carrying into the next unit whenever a set has nothing left. A
 * month costs a few dozen instructions; the walk gives up after 401 years
 * (or past year 9999) with NV_ENOENT.
 *
 * Time zones. UTC needs no zone data. Elsewhere the walk runs on wall time
 * (local seconds since 1970) and converts with offset periods from
 * engine/tz.c: search the first matching wall time W at or after the wall
 * time of the lower bound t, using t's period [start, end) and offset o.
 * If W - o lies inside the period, that is the answer. Otherwise move t to
 * the transition `end` and search again; the last search result is reused
 * while it is still valid, and when W is far away t jumps to a day before
 * it (nothing in between can fire), so a far-away fire time costs a few
 * period lookups, not one per transition. DST rules on top of that
 * (docs/cron.md):
 *  - a fixed-time job (NV_CRON_FIXED: seconds, minute and hour fields with
 *    no '*' and no '/'): when t is the start of a period that begins with
 *    a spring-forward gap [start + o_prev, start + o), the search begins
 *    at the gap's first wall time, and a match inside the gap fires once,
 *    at `start`, the first instant after the gap; in a period that starts
 *    with a fall-back overlap, wall times below start + o_prev already
 *    happened in the previous period, so the search starts above them
 *    (first occurrence only);
 *  - every other job follows the wall clock: times inside a gap never
 *    happen, times inside an overlap fire in both passes.
 *
 * Threads. nv_cron is immutable after parsing and everything here works on
 * locals, so calls run concurrently; engine/tz.c keeps its cache per thread.
 */
#include "engine/cron.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "engine/tz.h"
#include "nuvom.h"

/* ------------------------------------------------------------ parsing */

struct cron_field {
	const char *name;
	int lo, hi;
	const char *const *names; /* 3-letter names for lo.., or NULL */
	int nnames;
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR",
					  "MAY", "JUN", "JUL", "AUG",
					  "SEP", "OCT", "NOV", "DEC"};
static const char *const dow_names[] = {"SUN", "MON", "TUE", "WED",
					"THU", "FRI", "SAT"};

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MONTH, F_DOW };

static const struct cron_field cron_fields[6] = {
    {"second", 0, 59, NULL, 0},	       {"minute", 0, 59, NULL, 0},
    {"hour", 0, 23, NULL, 0},	       {"day-of-month", 1, 31, NULL, 0},
    {"month", 1, 12, month_names, 12}, {"day-of-week", 0, 7, dow_names, 7},
};

static const struct {
	const char *name, *expr;
} cron_macros[] = {
    {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

struct cron_parser {
	const char *s; /* whole expression, for positions */
	char *err;
	size_t errlen;
	int num; /* field number as written, 1-based */
	const struct cron_field *f;
};

static bool
is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' ||
	       ch == '\v' || ch == '\f';
}

static bool
is_alpha(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static int cron_fail(struct cron_parser *p, const char *at, const char *fmt,
		     ...) __attribute__((format(printf, 3, 4)));

/* Writes "field N (name) at position P: <message>" and returns NV_ECRON. */
static int
cron_fail(struct cron_parser *p, const char *at, const char *fmt, ...)
{
	va_list ap;
	int n;
	if (p->err == NULL || p->errlen == 0)
		return NV_ECRON;
	n = snprintf(p->err, p->errlen,
		     "field %d (%s) at position %zu: ", p->num, p->f->name,
		     (size_t)(at - p->s) + 1);
	if (n >= 0 && (size_t)n < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return NV_ECRON;
}

static int cron_fail_plain(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
cron_fail_plain(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return NV_ECRON;
}

/* Describes the character at *at for messages ("'x'", "end of field"). */
static const char *
cron_char(const char *at, char buf[8])
{
	unsigned char ch = (unsigned char)*at;
	if (ch == '\0' || is_space((char)ch))
		return "end of field";
	if (ch >= 0x21 && ch <= 0x7e)
		snprintf(buf, 8, "'%c'", ch);
	else
		snprintf(buf, 8, "0x%02x", ch);
	return buf;
}

/* Decimal digits at *pp (at least one); huge values saturate. */
static long
cron_digits(const char **pp)
{
	const char *q = *pp;
	long v = 0;
	for (; *q >= '0' && *q <= '9'; q++)
		v = v < 1000000 ? v * 10 + (*q - '0') : v;
	*pp = q;
	return v;
}

/* A number or (month/day-of-week) name at *pp. as_end: SUN reads as 7, so
 * that "MON-SUN" is the range it looks like. */
static int
cron_value(struct cron_parser *p, const char **pp, bool as_end, int *out)
{
	const char *at = *pp, *q = at;
	char buf[8];
	if (*q >= '0' && *q <= '9') {
		long v = cron_digits(&q);
		if (v < p->f->lo || v > p->f->hi)
			return cron_fail(p, at, "value %.*s out of range %d-%d",
					 (int)(q - at > 20 ? 20 : q - at), at,
					 p->f->lo, p->f->hi);
		*pp = q;
		*out = (int)v;
		return 0;
	}
	if (is_alpha(*q)) {
		size_t n = 0;
		while (is_alpha(q[n]))
			n++;
		if (p->f->names == NULL)
			return cron_fail(p, at,
					 "unexpected name '%.*s' (names are "
					 "allowed in month and day-of-week)",
					 (int)(n > 12 ? 12 : n), q);
		for (int i = 0; n == 3 && i < p->f->nnames; i++) {
			const char *name = p->f->names[i];
			if ((q[0] & ~0x20) == name[0] &&
			    (q[1] & ~0x20) == name[1] &&
			    (q[2] & ~0x20) == name[2]) {
				*out = p->f->lo + i;
				if (as_end && p->f == &cron_fields[F_DOW] &&
				    *out == 0)
					*out = 7;
				*pp = q + 3;
				return 0;
			}
		}
		return cron_fail(p, at, "unknown %s name '%.*s'",
				 p->f == &cron_fields[F_DOW] ? "day" : "month",
				 (int)(n > 12 ? 12 : n), q);
	}
	return cron_fail(p, at, "expected a value, found %s",
			 cron_char(at, buf));
}

/* One field (text up to the next blank) into *bits. *star is set when the
 * field starts with '*'; *wild when it holds '*' or '/'. */
static int
cron_field_parse(struct cron_parser *p, const char *s, uint64_t *bits,
		 bool *star, bool *wild)
{
	const struct cron_field *f = p->f;
	const char *q = s;
	char buf[8];
	int rc;

	*bits = 0;
	*star = *q == '*';
	*wild = false;
	for (;;) {
		const char *item = q;
		int lo, hi, step = 1;
		bool range = false;
		if (*q == ',' || *q == '\0' || is_space(*q))
			return cron_fail(p, q, "empty list item");
		if (*q == '*') {
			lo = f->lo;
			hi = f->hi;
			*wild = true;
			q++;
		} else {
			if ((rc = cron_value(p, &q, false, &lo)) != 0)
				return rc;
			hi = lo;
			if (*q == '-') {
				const char *end_at = ++q;
				range = true;
				if ((rc = cron_value(p, &q, true, &hi)) != 0)
					return rc;
				if (lo > hi)
					return cron_fail(
					    p, end_at,
					    "range start %d is greater "
					    "than end %d",
					    lo, hi);
			}
		}
		if (*q == '/') {
			const char *step_at = ++q;
			long v = 0;
			*wild = true;
			if (!(*q >= '0' && *q <= '9'))
				return cron_fail(p, q,
						 "expected a step after '/', "
						 "found %s",
						 cron_char(q, buf));
			v = cron_digits(&q);
			if (v < 1 || v > f->hi - f->lo + 1)
				return cron_fail(
				    p, step_at, "step %.*s out of range 1-%d",
				    (int)(q - step_at > 20 ? 20 : q - step_at),
				    step_at, f->hi - f->lo + 1);
			step = (int)v;
			if (*item != '*' && !range)
				hi = f->hi; /* "a/n" means a-max/n */
		}
		for (int v = lo; v <= hi; v += step)
			*bits |= 1ull << v;
		if (*q == ',') {
			q++;
			continue;
		}
		if (*q == '\0' || is_space(*q))
			return 0;
		return cron_fail(p, q, "unexpected character %s",
				 cron_char(q, buf));
	}
}

static const uint8_t cron_month_days[13] = {0,	31, 29, 31, 30, 31, 30,
					    31, 31, 30, 31, 30, 31};

/* Parses the fields of a 5/6-field expression (already counted). */
static int
cron_parse_fields(nv_cron *c, const char *expr, int nfields, char *err,
		  size_t errlen)
{
	struct cron_parser p = {expr, err, errlen, 0, NULL};
	const char *q = expr, *dom_at = expr;
	uint64_t bits[6] = {1, 0, 0, 0, 0, 0}; /* 5 fields: second 0 */
	bool star[6] = {false}, wild[6] = {false};
	int first = nfields == 6 ? F_SEC : F_MIN;
	nv_cron k;
	int rc;

	for (int i = first; i <= F_DOW; i++) {
		while (is_space(*q))
			q++;
		p.num = i - first + 1;
		p.f = &cron_fields[i];
		if (i == F_DOM)
			dom_at = q;
		rc = cron_field_parse(&p, q, &bits[i], &star[i], &wild[i]);
		if (rc != 0)
			return rc;
		while (*q != '\0' && !is_space(*q))
			q++;
	}
	memset(&k, 0, sizeof(k));
	k.sec = bits[F_SEC];
	k.min = bits[F_MIN];
	k.hour = (uint32_t)bits[F_HOUR];
	k.dom = (uint32_t)bits[F_DOM];
	k.month = (uint16_t)bits[F_MONTH];
	k.dow = (uint8_t)((bits[F_DOW] | bits[F_DOW] >> 7) & 0x7f);
	if (star[F_DOM])
		k.flags |= NV_CRON_DOM_STAR;
	if (star[F_DOW])
		k.flags |= NV_CRON_DOW_STAR;
	if (nfields == 6)
		k.flags |= NV_CRON_SECONDS;
	if (!wild[F_SEC] && !wild[F_MIN] && !wild[F_HOUR])
		k.flags |= NV_CRON_FIXED;

	/* Never fires? Only possible when the day-of-month set must match:
	 * then some selected month needs room for some selected day. */
	if (k.flags & (NV_CRON_DOM_STAR | NV_CRON_DOW_STAR)) {
		bool room = false;
		for (int m = 1; m <= 12; m++)
			if ((k.month >> m & 1) &&
			    (k.dom &
			     (uint32_t)((2ull << cron_month_days[m]) - 2)))
				room = true;
		if (!room) {
			p.num = F_DOM - first + 1;
			p.f = &cron_fields[F_DOM];
			return cron_fail(&p, dom_at,
					 "no selected day exists in the "
					 "selected months, the expression "
					 "would never fire");
		}
	}
	*c = k;
	return 0;
}

int
nv__cron_parse(nv_cron *out, const char *expr, char *err, size_t errlen)
{
	const char *q;
	int n = 0;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (out == NULL || expr == NULL) {
		cron_fail_plain(err, errlen, "no expression");
		return NV_EINVAL;
	}
	q = expr;
	while (is_space(*q))
		q++;
	if (*q == '@') {
		const char *m = q;
		size_t len = 0, shown = 0;
		while (m[len] != '\0' && !is_space(m[len]))
			len++;
		while (shown < len && shown < 16 && m[shown] >= 0x21 &&
		       m[shown] <= 0x7e)
			shown++; /* printable prefix for the message */
		for (size_t i = 0;
		     i < sizeof(cron_macros) / sizeof(*cron_macros); i++) {
			const char *name = cron_macros[i].name;
			if (strlen(name) != len || strncasecmp(name, m, len))
				continue;
			for (q = m + len; is_space(*q); q++)
				;
			if (*q != '\0')
				return cron_fail_plain(
				    err, errlen,
				    "unexpected text at position %zu "
				    "after %s",
				    (size_t)(q - expr) + 1, name);
			return cron_parse_fields(out, cron_macros[i].expr, 5,
						 NULL, 0);
		}
		return cron_fail_plain(
		    err, errlen,
		    "unknown macro '%.*s' at position %zu (known: @yearly "
		    "@annually @monthly @weekly @daily @midnight @hourly)",
		    (int)shown, m, (size_t)(m - expr) + 1);
	}
	for (const char *s = q; *s != '\0';) {
		n++;
		while (*s != '\0' && !is_space(*s))
			s++;
		while (is_space(*s))
			s++;
	}
	if (n == 0)
		return cron_fail_plain(err, errlen, "empty expression");
	if (n != 5 && n != 6)
		return cron_fail_plain(err, errlen,
				       "expected 5 fields (minute hour "
				       "day-of-month month day-of-week) or 6 "
				       "(second first), got %d",
				       n);
	return cron_parse_fields(out, expr, n, err, errlen);
}

/* ------------------------------------------------------- civil dates */

static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t
ceil_div(int64_t a, int64_t b)
{
	return -floor_div(-a, b);
}

/* Days since 1970-01-01 of a proleptic Gregorian date. Years are counted
 * from March so that the leap day ends the year; 400 years are 146097 days
 * and 1970-01-01 is day 719468 of that reckoning. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t yy = m <= 2 ? y - 1 : y;
	int64_t era = floor_div(yy, 400);
	int64_t yoe = yy - era * 400;			      /* 0..399 */
	int64_t doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1; /* 0..365 */
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Inverse of days_from_civil. */
static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;
	z += 719468;
	era = floor_div(z, 146097);
	doe = z - era * 146097; /* 0..146096 */
	yoe =
	    (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);		   /* 0..365 */
	mp = (5 * doy + 2) / 153;				   /* 0..11 */
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = era * 400 + yoe + (*m <= 2);
}

static int
month_length(int64_t y, int m)
{
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 ? (leap ? 29 : 28) : cron_month_days[m];
}

/* Lowest set bit of mask at or above `from`, or -1. */
static int
next_bit(uint64_t mask, int from)
{
	if (from > 63)
		return -1;
	mask &= ~0ull << from;
	return mask ? __builtin_ctzll(mask) : -1;
}

/* Matching days of month m of year y as bits 1..31. */
static uint64_t
cron_day_mask(const nv_cron *c, int64_t y, int m)
{
	uint64_t room = (2ull << month_length(y, m)) - 2;
	int64_t d1 = days_from_civil(y, m, 1);
	int wd1 = (int)((d1 + 4) % 7); /* 1970-01-01 was a Thursday */
	if (wd1 < 0)
		wd1 += 7; /* 0 = Sunday */
	/* bit k of rot: weekday of day k+1 is selected */
	uint64_t rot =
	    ((uint64_t)c->dow >> wd1 | (uint64_t)c->dow << (7 - wd1)) & 0x7f;
	uint64_t wk = (rot | rot << 7 | rot << 14 | rot << 21 | rot << 28) << 1;
	if (c->flags & (NV_CRON_DOM_STAR | NV_CRON_DOW_STAR))
		return (uint64_t)c->dom & wk & room;
	return ((uint64_t)c->dom | wk) & room;
}

/*
 * First matching wall time (seconds since 1970-01-01T00:00 local) at or
 * after w; false when there is none within 401 years or before year 10000.
 */
static bool
civil_next(const nv_cron *c, int64_t w, int64_t *out)
{
	int64_t days = floor_div(w, 86400), y, ylimit;
	int sod = (int)(w - days * 86400), m, d, hh, mi, ss, v;

	civil_from_days(days, &y, &m, &d);
	hh = sod / 3600;
	mi = sod / 60 % 60;
	ss = sod % 60;
	ylimit = y + 401 < 9999 ? y + 401 : 9999;
	while (y <= ylimit) {
		if ((v = next_bit(c->month, m)) < 0) {
			y++;
			m = d = 1;
			hh = mi = ss = 0;
			continue;
		}
		if (v != m) {
			m = v;
			d = 1;
			hh = mi = ss = 0;
		}
		if ((v = next_bit(cron_day_mask(c, y, m), d)) < 0) {
			if (++m > 12) {
				y++;
				m = 1;
			}
			d = 1;
			hh = mi = ss = 0;
			continue;
		}
		if (v != d) {
			d = v;
			hh = mi = ss = 0;
		}
		if ((v = next_bit(c->hour, hh)) < 0) {
			d++;
			hh = mi = ss = 0;
			continue;
		}
		if (v != hh) {
			hh = v;
			mi = ss = 0;
		}
		if ((v = next_bit(c->min, mi)) < 0) {
			hh++;
			mi = ss = 0;
			continue;
		}
		if (v != mi) {
			mi = v;
			ss = 0;
		}
		if ((v = next_bit(c->sec, ss)) < 0) {
			mi++;
			ss = 0;
			continue;
		}
		*out =
		    days_from_civil(y, m, d) * 86400 + hh * 3600 + mi * 60 + v;
		return true;
	}
	return false;
}

/* ------------------------------------------------------- next fire time */

/* Enough for 401 years of twice-yearly transitions, with room to spare. */
#define CRON_MAX_PERIODS 4096
#define CRON_DAY_MS 86400000LL
#define CRON_SEARCH_MS (401LL * 146097 / 400 * CRON_DAY_MS) /* 401 years */

static int
cron_next_zone(const nv_cron *c, const char *tz, int64_t t, int64_t *next)
{
	/* civil_next memo: no match in [known_lo, known), known matches */
	int64_t known_lo = INT64_MAX, known = 0;
	bool fixed = (c->flags & NV_CRON_FIXED) != 0;
	/* Zone rules repeat yearly once they settle and the calendar repeats
	 * every 400 years: 401 years without a fire time means never. */
	int64_t limit = t + CRON_SEARCH_MS;
	nv_tz_period p;
	int rc;

	if (limit > NV_CRON_MAX_MS)
		limit = NV_CRON_MAX_MS;
	for (int i = 0; i < CRON_MAX_PERIODS && t <= limit; i++) {
		int64_t w, cand, u;
		if ((rc = nv__tz_period(tz, t, &p)) != 0)
			return rc;
		w = ceil_div(t + p.off_ms, 1000);
		if (fixed && t == p.start_ms && p.prev_off_ms < p.off_ms) {
			/* t ends a spring-forward gap: its wall times
			 * [t + prev_off, t + off) never happened, a fixed-time
			 * job due in there fires now. */
			w = ceil_div(t + p.prev_off_ms, 1000);
		} else if (fixed && p.prev_off_ms > p.off_ms) {
			/* Fall-back overlap: wall times below start + prev_off
			 * already happened before this period began. */
			int64_t seen =
			    ceil_div(p.start_ms + p.prev_off_ms, 1000);
			if (w < seen)
				w = seen;
		}
		if (known_lo <= w && w <= known) {
			cand = known;
		} else {
			if (!civil_next(c, w, &cand))
				return NV_ENOENT;
			known_lo = w;
			known = cand;
		}
		if (cand * 1000 < t + p.off_ms) { /* inside the gap */
			*next = t;
			return 0;
		}
		u = cand * 1000 - p.off_ms;
		if (u < p.end_ms) {
			*next = u;
			return u <= NV_CRON_MAX_MS ? 0 : NV_ENOENT;
		}
		t = p.end_ms;
		/* Jump over the periods in between when nothing there can fire:
		 * walls below known_lo would need instants before
		 * known_lo + 1 day, walls from `known` on (and gaps holding
		 * them) instants after known - 1 day, as no UTC offset is
		 * beyond +-16 h. */
		if (t >= known_lo * 1000 + CRON_DAY_MS &&
		    known * 1000 - CRON_DAY_MS > t)
			t = known * 1000 - CRON_DAY_MS;
	}
	return NV_ENOENT;
}

int
nv__cron_next(const nv_cron *c, const char *tz, int64_t after_ms,
	      int64_t *next_ms)
{
	int64_t t, cand;

	if (c == NULL || next_ms == NULL)
		return NV_EINVAL;
	if (after_ms >= NV_CRON_MAX_MS)
		return NV_ENOENT;
	t = after_ms < NV_CRON_MIN_MS ? NV_CRON_MIN_MS : after_ms + 1;
	if (!nv__tz_is_utc(tz))
		return cron_next_zone(c, tz, t, next_ms);
	if (!civil_next(c, ceil_div(t, 1000), &cand))
		return NV_ENOENT;
	*next_ms = cand * 1000;
	return 0;
}

int
nv_cron_next(const char *cron, const char *timezone, int64_t after_ms,
	     int64_t *next_ms)
{
	nv_cron c;
	int rc;

	if (cron == NULL || next_ms == NULL)
		return NV_EINVAL;
	if ((rc = nv__cron_parse(&c, cron, NULL, 0)) != 0)
		return rc;
	if ((rc = nv__tz_check(timezone)) != 0)
		return rc;
	return nv__cron_next(&c, timezone, after_ms, next_ms);
}
